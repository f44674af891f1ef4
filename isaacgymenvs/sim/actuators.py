"""The model's actuator transmission table: which hinge DoF each actuator drives.

A MuJoCo helper shared by the backends (PD targets in DoF order -> ``ctrl`` in actuator order),
the character preparation (``isaacgymenvs.characters``) and the physics checks. Numpy and mujoco
only, no torch: ``sim2sim`` uses it through ``characters`` and runs without torch.

Imports: mujoco and numpy only (nothing of ``isaacgymenvs``).
"""

from __future__ import annotations

import mujoco
import numpy as np

__all__ = ["actuator_dof_index"]


def actuator_dof_index(model: mujoco.MjModel) -> np.ndarray:
    """For each actuator, the index of its joint among the hinge DoFs (transmission table)."""
    free_dofs = int(sum(6 for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE))
    out = np.empty(model.nu, dtype=np.int64)
    for a in range(model.nu):
        if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
            raise ValueError(f"actuator {model.actuator(a).name!r} does not drive a joint")
        j = model.actuator_trnid[a, 0]
        out[a] = model.jnt_dofadr[j] - free_dofs
    return out
