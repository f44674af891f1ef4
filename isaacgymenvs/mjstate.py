"""A character's state in one ``MjData``, numpy and mujoco only: write it, step it, read it.

sim2sim runs the policy on one ``MjData`` with these functions; they do what the MuJoCo CPU
backend (``isaacgymenvs.sim.mujoco_cpu``) does per env, so the state sim2sim observes is the one
the trainer observes (``tests/test_sim2sim.py`` checks it over every registered task):

* a write resets the data, sets the free root (quaternion normalised, its world angular velocity
  turned into MuJoCo's body-frame ``qvel``) and the hinges, then ``mj_forward`` and
  ``mj_rnePostConstraint`` (contact forces of the written state);
* a control step sets ``ctrl`` (the PD targets in actuator order), runs ``mj_step`` ``substeps``
  times, then ``mj_rnePostConstraint`` (the contact forces of the last substep) and
  ``mj_kinematics`` (body positions of the new state: ``mj_step`` leaves the previous ones);
* a read gives the root angular velocity in the world frame, body positions and contact forces
  (the force part of ``cfrc_ext``) without the world body.
"""

from __future__ import annotations

import mujoco
import numpy as np

from isaacgymenvs.utils.quaternions import quat_conj, quat_rotate


def write(
    m: mujoco.MjModel,
    d: mujoco.MjData,
    root_pos_w,
    root_quat_w,
    root_lin_vel_w,
    root_ang_vel_w,
    dof_pos,
    dof_vel,
    ctrl=None,
) -> None:
    """Put the state (world frame, quaternion wxyz, angular velocity in the world frame) into ``d``."""
    q = np.asarray(root_quat_w, dtype=np.float64)
    q = q / np.linalg.norm(q)
    mujoco.mj_resetData(m, d)
    d.qpos[0:3], d.qpos[3:7], d.qpos[7:] = root_pos_w, q, dof_pos
    d.qvel[0:3], d.qvel[3:6], d.qvel[6:] = (
        root_lin_vel_w,
        quat_rotate(quat_conj(q), np.asarray(root_ang_vel_w, np.float64)),
        dof_vel,
    )
    if ctrl is not None:
        d.ctrl[:] = ctrl
    mujoco.mj_forward(m, d)
    mujoco.mj_rnePostConstraint(m, d)


def step(m: mujoco.MjModel, d: mujoco.MjData, ctrl, substeps: int) -> None:
    """One control step with ``ctrl [nu]`` held."""
    d.ctrl[:] = ctrl
    mujoco.mj_step(m, d, nstep=substeps)
    mujoco.mj_rnePostConstraint(m, d)  # contact forces of the last substep
    mujoco.mj_kinematics(m, d)  # body positions of the new state


def read(d: mujoco.MjData) -> dict:
    """The state of ``d`` as float64 arrays with a batch dimension of 1 (``terms``' shapes):
    ``root_pos_w [1, 3]``, ``root_quat_w [1, 4]`` wxyz, ``root_lin_vel_w``, ``root_ang_vel_w``
    (world frame) ``[1, 3]``, ``dof_pos``, ``dof_vel [1, D]``, ``body_pos_w``,
    ``contact_forces_w [1, B, 3]`` (bodies without the world body)."""
    qpos, qvel = np.array(d.qpos), np.array(d.qvel)
    return {
        "root_pos_w": qpos[None, 0:3],
        "root_quat_w": qpos[None, 3:7],
        "root_lin_vel_w": qvel[None, 0:3],
        "root_ang_vel_w": quat_rotate(qpos[None, 3:7], qvel[None, 3:6]),
        "dof_pos": qpos[None, 7:],
        "dof_vel": qvel[None, 6:],
        "body_pos_w": np.array(d.xpos[None, 1:]),
        "contact_forces_w": np.array(d.cfrc_ext[None, 1:, 3:6]),
    }
