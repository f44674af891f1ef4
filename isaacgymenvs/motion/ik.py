"""Damped least-squares (Levenberg-Marquardt) inverse kinematics on a MuJoCo model, frame by frame.

Generic: bodies are ids and weights are numbers; nothing here knows the G1, a clip or a CSV
(:mod:`isaacgymenvs.motion.retarget` sets it up for the G1). The model has a free root joint
(``qpos[:7]``, ``qvel[:6]``) followed by hinges.

Weighted residuals: body positions (per metre) and rotations (per rad, the rotation vector of
``q_cur * conj(q_target)``), plus a temporal prior pulling the hinges toward the previous frame's
solution (``prev_weight`` per rad), a weak prior toward a nominal pose (``nominal_weight``), and
one-sided distance residuals keeping collision geoms at least ``min_distance_m`` apart (contacts
from ``mj_collision`` on a model whose geoms have a margin, Jacobians from ``mj_jac`` at the contact
point). Each iteration takes body Jacobians from ``mj_jacBody`` and solves the damped normal
equations; joint limits are kept by clamping, and a joint at a limit that the step pushes outward
is frozen for that step (a projected, active-set Gauss-Newton step). :func:`solve_frames` runs a
sequence: the first frame from a given start (``first_iters``), each later frame warm-started from
the previous solution (up to ``iters``, stopping when the step is below ``tol``).

Imports: mujoco and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass
class IKSolverOptions:
    """The solver's weights and iteration limits."""

    prev_weight: float = 0.1  # pull toward the previous frame's joint angles (per rad)
    nominal_weight: float = 0.02  # pull toward the nominal pose (per rad)
    damping: float = 1e-4  # Levenberg-Marquardt damping on every DoF
    first_iters: int = 60
    iters: int = 20
    tol: float = 1e-6  # stop when the largest step component is below this
    min_distance_m: float = 0.01  # keep collision geoms this far apart; 0: off
    collision_weight: float = 5.0  # per metre of distance below min_distance_m


def quat_error_rotvec(q_cur: np.ndarray, q_tgt: np.ndarray) -> np.ndarray:
    """Rotation vectors of ``q_cur * conj(q_tgt)`` (world frame), rows of wxyz quaternions."""
    w1, v1 = q_cur[:, 0], q_cur[:, 1:]
    w2, v2 = q_tgt[:, 0], -q_tgt[:, 1:]
    w = w1 * w2 - np.sum(v1 * v2, axis=1)
    v = w1[:, None] * v2 + w2[:, None] * v1 + np.cross(v1, v2)
    s = np.where(w < 0, -1.0, 1.0)
    w, v = w * s, v * s[:, None]
    n = np.linalg.norm(v, axis=1)
    angle = 2.0 * np.arctan2(n, w)
    scale = np.where(n > 1e-12, angle / np.maximum(n, 1e-12), 2.0)
    return v * scale[:, None]


class KeypointIK:
    """Damped least-squares IK for position and orientation targets of bodies of ``model`` (free root + hinges)."""

    def __init__(
        self,
        model: mujoco.MjModel,
        pos_body_ids,
        pos_weights,
        ori_body_ids,
        ori_weights,
        lower: np.ndarray,
        upper: np.ndarray,
        nominal: np.ndarray,
        opts: IKSolverOptions,
    ):
        """Targets: the positions of bodies ``pos_body_ids`` (weights ``pos_weights``, per metre) and
        the rotations of bodies ``ori_body_ids`` (``ori_weights``, per rad). ``lower``/``upper``
        ``[nq - 7]``: the hinge ranges the solution is clamped to; ``nominal`` ``[nq - 7]``: the pose
        of the weak prior (``opts.nominal_weight``)."""
        self.m = model
        self.d = mujoco.MjData(model)
        self.opts = opts
        self.pos_ids = np.asarray(pos_body_ids)
        self.ori_ids = np.asarray(ori_body_ids)
        self.pos_w = np.array(pos_weights, dtype=np.float64)
        self.ori_w = np.array(ori_weights, dtype=np.float64)
        self.lo = np.asarray(lower, dtype=np.float64)
        self.hi = np.asarray(upper, dtype=np.float64)
        self.nominal = np.asarray(nominal, dtype=np.float64)
        nv = model.nv
        self.n_res = 3 * (len(self.pos_ids) + len(self.ori_ids))
        self.J = np.zeros((self.n_res, nv))
        self.r = np.zeros(self.n_res)
        self._jp = np.zeros((3, nv))
        self._jr = np.zeros((3, nv))
        self._j1 = np.zeros((3, nv))
        self._j2 = np.zeros((3, nv))
        # self-collision avoidance: needs collision geoms with a margin (e.g. g1_model.collision_model())
        self.collide = opts.min_distance_m > 0 and bool(np.any(model.geom_margin > 0))
        self.Jc = np.zeros((0, nv))
        self.rc = np.zeros(0)

    def _collision_rows(self) -> None:
        """One-sided distance residuals ``w (dist - d_min)`` for geom pairs closer than d_min."""
        m, d, o = self.m, self.d, self.opts
        mujoco.mj_collision(m, d)
        rows, res = [], []
        for c in d.contact[: d.ncon]:
            if c.dist >= o.min_distance_m:
                continue
            b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            mujoco.mj_jac(m, d, self._j1, None, c.pos, b1)
            mujoco.mj_jac(m, d, self._j2, None, c.pos, b2)
            n = c.frame[:3]  # contact normal, from geom1 to geom2
            rows.append(o.collision_weight * (n @ (self._j2 - self._j1)))
            res.append(o.collision_weight * (c.dist - o.min_distance_m))
        self.Jc = np.array(rows).reshape(-1, m.nv)
        self.rc = np.array(res)

    def _linearize(self, q: np.ndarray, tpos: np.ndarray, tquat: np.ndarray) -> None:
        m, d = self.m, self.d
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        row = 0
        for k, b in enumerate(self.pos_ids):
            mujoco.mj_jacBody(m, d, self._jp, None, b)
            w = self.pos_w[k]
            self.J[row : row + 3] = w * self._jp
            self.r[row : row + 3] = w * (d.xpos[b] - tpos[k])
            row += 3
        err = quat_error_rotvec(d.xquat[self.ori_ids], tquat)
        for k, b in enumerate(self.ori_ids):
            mujoco.mj_jacBody(m, d, None, self._jr, b)
            w = self.ori_w[k]
            self.J[row : row + 3] = w * self._jr
            self.r[row : row + 3] = w * err[k]
            row += 3
        if self.collide:
            self._collision_rows()

    def solve(
        self, q0: np.ndarray, tpos: np.ndarray, tquat: np.ndarray, q_prev: np.ndarray | None, iters: int
    ) -> np.ndarray:
        m, o = self.m, self.opts
        q = q0.copy()
        q[7:] = np.clip(q[7:], self.lo, self.hi)
        nv = m.nv
        wp = o.prev_weight**2 if q_prev is not None else 0.0
        wn = o.nominal_weight**2
        reg = np.full(nv, o.damping)
        reg[6:] += wp + wn
        for _ in range(iters):
            self._linearize(q, tpos, tquat)
            H = self.J.T @ self.J + np.diag(reg)
            g = self.J.T @ self.r
            if len(self.rc):
                H += self.Jc.T @ self.Jc
                g += self.Jc.T @ self.rc
            dj = q[7:]
            g[6:] += wn * (dj - self.nominal)
            if q_prev is not None:
                g[6:] += wp * (dj - q_prev[7:])
            free = np.ones(nv, dtype=bool)
            for _pass in range(4):
                dv = np.zeros(nv)
                dv[free] = np.linalg.solve(H[np.ix_(free, free)], -g[free])
                new = dj + dv[6:]
                out = ((new < self.lo) & (dj <= self.lo + 1e-12)) | ((new > self.hi) & (dj >= self.hi - 1e-12))
                if not out.any():
                    break
                free[6:][out] = False
            mujoco.mj_integratePos(m, q, dv, 1.0)
            q[7:] = np.clip(q[7:], self.lo, self.hi)
            n = np.linalg.norm(q[3:7])
            q[3:7] /= n
            if np.max(np.abs(dv)) < o.tol:
                break
        return q


def solve_frames(
    ik: KeypointIK, q0: np.ndarray, pos: np.ndarray, quat_wxyz: np.ndarray, first_iters: int, iters: int
) -> np.ndarray:
    """Frame-by-frame IK, warm-started: targets ``pos [T, K, 3]`` and ``quat_wxyz [T, M, 4]`` (world),
    frame 0 from ``q0`` (``first_iters`` iterations), each later frame from the previous solution
    (``iters``); returns qpos ``[T, nq]``."""
    T = pos.shape[0]
    out = np.empty((T, ik.m.nq))
    q = q0
    prev = None
    for t in range(T):
        q = ik.solve(q, pos[t], quat_wxyz[t], prev, first_iters if t == 0 else iters)
        out[t] = q
        prev = q
    return out
