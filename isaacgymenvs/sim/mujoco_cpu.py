"""MuJoCo C library backend: N ``MjData`` on the CPU, stepped by a small thread pool.

The reference implementation of :class:`SimBackend` (tests, CI, evaluation, sim2sim).
``mj_step`` releases the GIL, so threads step disjoint chunks of environments in parallel.
State is copied once per control step into contiguous numpy buffers that torch tensors
share (``torch.from_numpy``), so reading it costs nothing more.

Imports: mujoco, numpy, torch and ``isaacgymenvs.sim`` only.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from isaacgymenvs.sim.actuators import actuator_dof_index
from isaacgymenvs.sim.base import SimBackend, substeps_for

#: MuJoCo's warnings of a state it could not integrate (it then resets that MjData to the rest pose).
_BAD_STATE = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQPOS)


def _quiet_unstable_warnings() -> None:
    """Route MuJoCo's "the simulation is unstable" warnings to nothing: the backend counts them per
    env (``unstable``) and the trainer reports them as ``sim/unstable_envs``. Others still print."""
    if getattr(_quiet_unstable_warnings, "done", False):
        return
    previous = mujoco.get_mju_user_warning()

    def warn(msg: str) -> None:
        if "simulation is unstable" in msg:
            return
        if previous is not None:
            previous(msg)
        else:
            print(f"WARNING: {msg}", file=sys.stderr)

    mujoco.set_mju_user_warning(warn)
    _quiet_unstable_warnings.done = True


def _quat_rotate_np(q_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    w = q_wxyz[..., :1]
    u = q_wxyz[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


class MujocoCpuBackend(SimBackend):
    def __init__(
        self, model: mujoco.MjModel, num_envs: int, control_dt: float, device="cpu", num_threads: int | None = None
    ):
        if torch.device(device).type != "cpu":
            raise ValueError(
                f"the mujoco CPU backend returns CPU tensors; got device {device!r} (use sim=mujoco_warp on a GPU)"
            )
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.model = model
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        self.substeps = substeps_for(control_dt, model.opt.timestep)
        self.control_dt = self.substeps * model.opt.timestep
        self.dof_names = [model.joint(j).name for j in range(1, model.njnt)]
        self.body_names = [model.body(b).name for b in range(1, model.nbody)]
        self._act_dof = actuator_dof_index(model)
        self._datas = [mujoco.MjData(model) for _ in range(num_envs)]
        for d in self._datas:
            mujoco.mj_forward(model, d)
        n_threads = num_threads or min(os.cpu_count() or 1, 8)
        n_threads = max(1, min(n_threads, num_envs))
        bounds = np.linspace(0, num_envs, n_threads + 1).astype(int)
        self._chunks = [range(bounds[i], bounds[i + 1]) for i in range(n_threads)]
        self._pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
        B = model.nbody - 1
        self._qpos = np.zeros((num_envs, model.nq))
        self._qvel = np.zeros((num_envs, model.nv))
        self._xpos = np.zeros((num_envs, B, 3))
        self._cfrc = np.zeros((num_envs, B, 3))
        self._ang_w = np.zeros((num_envs, 3))
        self._ctrl = np.zeros((num_envs, model.nu))
        self._bad_physics = np.zeros(num_envs, dtype=bool)  # MuJoCo flagged the env in the last step
        _quiet_unstable_warnings()
        t = torch.from_numpy
        self._t_qpos, self._t_qvel = t(self._qpos), t(self._qvel)
        self._t_xpos, self._t_cfrc, self._t_ang = t(self._xpos), t(self._cfrc), t(self._ang_w)
        self._read(range(num_envs))

    # --- state ---
    @property
    def root_pos_w(self):
        return self._t_qpos[:, 0:3]

    @property
    def root_quat_w(self):
        return self._t_qpos[:, 3:7]

    @property
    def root_lin_vel_w(self):
        return self._t_qvel[:, 0:3]

    @property
    def root_ang_vel_w(self):
        return self._t_ang

    @property
    def dof_pos(self):
        return self._t_qpos[:, 7:]

    @property
    def dof_vel(self):
        return self._t_qvel[:, 6:]

    @property
    def body_pos_w(self):
        return self._t_xpos

    @property
    def contact_forces_w(self):
        return self._t_cfrc

    # --- commands ---
    def _read(self, env_ids) -> None:
        for i in env_ids:
            d = self._datas[i]
            self._qpos[i] = d.qpos
            self._qvel[i] = d.qvel
            self._xpos[i] = d.xpos[1:]
            # cfrc_ext is (torque, force) about each body's subtree COM; the force part is the
            # net external (contact) force on the body, in world orientation.
            self._cfrc[i] = d.cfrc_ext[1:, 3:6]
        # The free joint's angular velocity is in the body frame; expose it in the world frame.
        ids = np.fromiter(env_ids, dtype=np.int64)
        self._ang_w[ids] = _quat_rotate_np(self._qpos[ids, 3:7], self._qvel[ids, 3:6])

    def write_state(
        self, env_ids, root_pos_w, root_quat_w, root_lin_vel_w, root_ang_vel_w, dof_pos, dof_vel, mask=None
    ):
        cpu = lambda x: torch.as_tensor(x).detach().cpu().double().numpy()  # noqa: E731
        if env_ids is None:
            ids = np.arange(self.num_envs) if mask is None else np.flatnonzero(torch.as_tensor(mask).cpu().numpy())
            rows = ids  # the tensors hold every env
        else:
            ids = torch.as_tensor(env_ids).long().cpu().numpy()
            rows = np.arange(ids.size)
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_envs):
                raise IndexError(f"env ids must lie in [0, {self.num_envs}), got {ids.min()}..{ids.max()}")
        rp, rq, rv, rw, dp, dv = (
            cpu(x)[rows] for x in (root_pos_w, root_quat_w, root_lin_vel_w, root_ang_vel_w, dof_pos, dof_vel)
        )
        rq = rq / np.linalg.norm(rq, axis=-1, keepdims=True)
        conj = rq * np.array([1.0, -1.0, -1.0, -1.0])
        rw_body = _quat_rotate_np(conj, rw)
        for k, i in enumerate(ids):
            d = self._datas[i]
            mujoco.mj_resetData(self.model, d)
            d.qpos[0:3], d.qpos[3:7], d.qpos[7:] = rp[k], rq[k], dp[k]
            d.qvel[0:3], d.qvel[3:6], d.qvel[6:] = rv[k], rw_body[k], dv[k]
            d.ctrl[:] = self._ctrl[i]
            mujoco.mj_forward(self.model, d)
            mujoco.mj_rnePostConstraint(self.model, d)
        self._bad_physics[ids] = False
        self._read(ids.tolist())

    def set_pd_targets(self, targets):
        t = torch.as_tensor(targets).detach().cpu().double().numpy()
        if t.shape != (self.num_envs, self.num_dof):
            raise ValueError(f"PD targets must be [{self.num_envs}, {self.num_dof}], got {tuple(t.shape)}")
        self._ctrl[:] = t[:, self._act_dof]

    def _step_chunk(self, chunk: range) -> None:
        m = self.model
        for i in chunk:
            d = self._datas[i]
            d.ctrl[:] = self._ctrl[i]
            before = sum(d.warning[w].number for w in _BAD_STATE)
            mujoco.mj_step(m, d, nstep=self.substeps)
            self._bad_physics[i] = sum(d.warning[w].number for w in _BAD_STATE) > before
            mujoco.mj_rnePostConstraint(m, d)  # contact forces of the last substep
            mujoco.mj_kinematics(m, d)  # body positions of the new state (mj_step leaves the previous ones)
        self._read(chunk)

    def step(self):
        if self._pool is None:
            self._step_chunk(range(self.num_envs))
        else:
            list(self._pool.map(self._step_chunk, self._chunks))

    def unstable(self, max_speed: float) -> torch.Tensor:
        return super().unstable(max_speed) | torch.from_numpy(self._bad_physics)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
