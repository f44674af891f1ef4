"""Which reader a clip file takes: a G1 ``.csv`` (:mod:`~isaacgymenvs.motion.g1`) or a poselib ``.npy``/``.npz``
(:mod:`~isaacgymenvs.motion.poselib`, then :mod:`~isaacgymenvs.motion.clip`), as a :class:`MotionClip`.

A clip that does not fit the character (a G1 CSV for the humanoid, a humanoid clip for the G1) is a
:class:`~isaacgymenvs.motion.poselib.ClipError` that says what to do.

Imports: ``isaacgymenvs.motion`` only (``clip``, ``g1``, ``poselib``; ``skeleton`` for types).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import mujoco

from isaacgymenvs.motion.clip import MotionClip, clip_from_skeleton_motion, smooth_root_velocities
from isaacgymenvs.motion.g1 import G1_JOINT_NAMES, load_g1_csv
from isaacgymenvs.motion.poselib import ClipError, load_skeleton_motion

if TYPE_CHECKING:  # the torch Skeleton, or any description with the same fields (sim2sim runs without torch)
    from isaacgymenvs.motion.skeleton import Skeleton

__all__ = ["load_clip"]


def load_clip(
    f,
    skeleton: "Skeleton",
    model: mujoco.MjModel | None,
    trust: bool = False,
    ground: str = "rolling_min",
    fps: float | None = None,
    root_vel_sigma: float = 0.0,
) -> MotionClip:
    """One clip for ``skeleton`` (the torch Skeleton or sim2sim's numpy one): a G1 ``.csv`` or a
    poselib ``.npy``; a clip of another character is a :class:`ClipError` that says what to do.
    ``root_vel_sigma``: :func:`~isaacgymenvs.motion.clip.smooth_root_velocities`."""
    f = Path(f)
    is_g1 = list(skeleton.dof_names) == list(G1_JOINT_NAMES)
    if f.suffix.lower() == ".csv":
        if not is_g1:
            raise ClipError(
                f,
                f"a G1 CSV clip, but this task's character has {skeleton.num_dof} other joints "
                f"({', '.join(skeleton.dof_names[:3])}, ...); G1 clips are for task=G1AMP",
            )
        # the G1 clip tools run on g1.xml (its foot contact spheres give the floor for ground="rolling_min");
        # the task model has the same bodies and joints (the caller checked the joint names)
        return smooth_root_velocities(load_g1_csv(f, fps=fps, ground=ground), root_vel_sigma)
    if is_g1:
        raise ClipError(
            f,
            "task=G1AMP takes G1 CSV clips (unitree_g1/motions/FORMAT.md); turn an AMP humanoid clip into "
            f"one with: python -m isaacgymenvs.motion retarget {f} --robot g1 --out {f.stem}_g1.csv",
        )
    sm = load_skeleton_motion(f, trust=trust)
    return smooth_root_velocities(clip_from_skeleton_motion(sm, skeleton, model, ground=ground), root_vel_sigma)
