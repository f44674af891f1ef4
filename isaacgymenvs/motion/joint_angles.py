"""Hinge angles and hinge rates of a clip from its local joint rotations (numpy, at load time).

**Angles.** Each body's local rotation (relative to its parent, rest orientation removed) is
turned into its hinges' angles (:mod:`hinge_chain`). A rotation has several equivalent hinge
readings: both Euler branches of a 3-hinge joint, and 2 pi shifts of every angle. A dynamic
programme over the frames picks, for the whole clip, the sequence of readings that stays inside
the joint limits and moves least from frame to frame::

    cost = sum_t [ limit_weight * (radians past the limits at t) + |angles_t - angles_{t-1}|_1 ]

so a hip flexed past 90 degrees or an arm overhead keeps the branch inside the MJCF ranges, and
no blind unwrap turns a branch flip into a permanent 2 pi offset. At an exact gimbal lock, where
the first and third hinge share a line, the free combination is set from the neighbouring frames.

**Rates.** Hinge velocities come from the local angular velocity (central differences of the
local rotations, ``log(q_{t-1}^-1 q_t)`` and ``log(q_t^-1 q_{t+1})`` averaged), mapped onto the
hinges through the chain's rate Jacobian ``J`` (``omega = J dq``) by damped least squares: each
singular direction with ``sigma < sigma0`` is damped by ``lambda^2 = lambda0^2 (1 - (sigma/sigma0)^2)``,
so away from gimbal lock the inverse is exact and near it the gain stays below ~1/(2 lambda0).
The rates are then clipped to ``max_rate``.

Imports: numpy and ``isaacgymenvs.motion.hinge_chain`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from isaacgymenvs.motion.hinge_chain import ChainAxes, decompose, quat_mul, quat_to_matrix, rate_jacobian

#: Cost of one radian past a joint limit, per frame, against one radian of motion between frames.
LIMIT_WEIGHT = 10.0
#: A tiny pull toward small angles, so that equivalent readings of an unlimited joint are not a tie.
SMALL_ANGLE_WEIGHT = 1e-3
#: Whole turns tried for every angle, around its principal value.
TURNS = (-1, 0, 1)
#: Damped least squares: damping starts below this singular value of the rate Jacobian
#: (sqrt(1 - |sin(middle angle)|) for a 3-hinge chain: within ~8 degrees of gimbal lock) ...
SIGMA0 = 0.1
#: ... and reaches lambda0 at the singularity (the largest gain is then ~1 / (2 lambda0) ~ 11).
LAMBDA0 = 0.05
#: Hinge rates are clipped to this (rad/s).
MAX_RATE = 40.0


@dataclass(frozen=True)
class BodyHinges:
    """The hinges of one body: DoF indices, axes, limits ``[n, 2]`` and the body's rest rotation (wxyz)."""

    body: str
    dofs: tuple[int, ...]
    axes: ChainAxes
    limits: np.ndarray
    rest_wxyz: np.ndarray


def body_hinges(skeleton) -> list[BodyHinges]:
    """The hinge groups of a skeleton (torch ``Skeleton`` or sim2sim's numpy one), in DoF order."""
    groups: dict[int, list[int]] = {}
    for d, b in enumerate(skeleton.dof_body):
        groups.setdefault(b, []).append(d)
    axes = np.asarray(skeleton.dof_axis, dtype=np.float64)
    limits = np.asarray(skeleton.dof_limits, dtype=np.float64)
    rest = np.asarray(skeleton.rest_quat_wxyz, dtype=np.float64)
    out = []
    for b, dofs in groups.items():
        if len(dofs) not in (1, 3):
            raise ValueError(f"body {skeleton.body_names[b]!r} has {len(dofs)} hinges; only 1 or 3 are supported")
        out.append(
            BodyHinges(skeleton.body_names[b], tuple(dofs), ChainAxes.from_vectors(axes[dofs]), limits[dofs], rest[b])
        )
    return sorted(out, key=lambda g: g.dofs[0])


def limit_excess(angles: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Radians past the limits ``[..., n]`` (0 inside)."""
    return np.maximum(limits[..., 0] - angles, 0.0) + np.maximum(angles - limits[..., 1], 0.0)


def _quat_log(q: np.ndarray) -> np.ndarray:
    """Rotation vector ``[..., 3]`` of wxyz quaternions (short way round)."""
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    return v * np.where(s > 1e-12, angle / np.maximum(s, 1e-300), 2.0)


def _conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def local_angular_velocity(q_wxyz: np.ndarray, fps: float) -> np.ndarray:
    """Child-frame angular velocity ``[T, 3]`` of local rotations ``[T, 4]`` (wxyz) sampled at ``fps``:
    the mean of the backward and forward rotation steps (one-sided at the ends)."""
    T = q_wxyz.shape[0]
    if T < 2:
        return np.zeros((T, 3))
    step = _quat_log(quat_mul(_conj(q_wxyz[:-1]), q_wxyz[1:])) * fps  # [T-1, 3], in frame t
    out = np.empty((T, 3))
    out[0], out[-1] = step[0], step[-1]
    out[1:-1] = 0.5 * (step[:-1] + step[1:])
    return out


def candidate_readings(hinges: BodyHinges, q_wxyz: np.ndarray) -> np.ndarray:
    """Every reading of the hinge angles ``[T, K, n]`` of local rotations ``q [T, 4]`` (wxyz)."""
    if len(hinges.dofs) == 1:
        k, s = hinges.axes.index[0], hinges.axes.sign[0]
        # the twist about the hinge axis (a hinge's rotation has no other component)
        base = s * 2.0 * np.arctan2(q_wxyz[:, 1 + k], q_wxyz[:, 0])[:, None, None]  # [T, 1, 1]
        turns = 2 * math.pi * np.array(TURNS, dtype=np.float64)[None, :, None]
        return base + turns
    first, other = decompose(quat_to_matrix(q_wxyz), hinges.axes)  # [T, 3] each
    branches = np.stack((first, other), 1)  # [T, 2, 3]
    t = 2 * math.pi * np.array(TURNS, dtype=np.float64)
    shifts = np.stack(np.meshgrid(t, t, t, indexing="ij"), -1).reshape(-1, 3)  # [27, 3]
    return (branches[:, :, None, :] + shifts[None, None]).reshape(q_wxyz.shape[0], -1, 3)


def choose_readings(cands: np.ndarray, limits: np.ndarray, limit_weight: float = LIMIT_WEIGHT) -> np.ndarray:
    """Dynamic programme: one reading per frame ``[T, n]`` out of ``cands [T, K, n]`` minimising
    limit excess (``limit_weight`` per radian) plus the L1 motion between consecutive frames."""
    T, K, _ = cands.shape
    unary = limit_weight * limit_excess(cands, limits).sum(-1) + SMALL_ANGLE_WEIGHT * np.abs(cands).sum(-1)  # [T, K]
    value = unary[0].copy()
    back = np.zeros((T, K), dtype=np.int64)
    for t in range(1, T):
        move = np.abs(cands[t][None, :, :] - cands[t - 1][:, None, :]).sum(-1)  # [K_prev, K]
        total = value[:, None] + move
        back[t] = np.argmin(total, axis=0)
        value = unary[t] + total[back[t], np.arange(K)]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmin(value))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return cands[np.arange(T), path]


def settle_gimbal_locks(angles: np.ndarray, hinges: BodyHinges, tol: float = 1e-6) -> np.ndarray:
    """At frames of exact gimbal lock, slide along the family of equal rotations (the rate
    Jacobian's null direction) to the point nearest the mean of the neighbouring frames."""
    J = rate_jacobian(angles, hinges.axes)  # [T, 3, 3]
    _, sv, vt = np.linalg.svd(J)
    locked = np.flatnonzero(sv[:, -1] < tol)
    out = angles.copy()
    for t in locked:
        nbrs = [out[u] for u in (t - 1, t + 1) if 0 <= u < len(out) and u not in locked]
        if not nbrs:
            continue
        n = vt[t, -1]
        out[t] = out[t] + n * (n @ (np.mean(nbrs, 0) - out[t])) / (n @ n)
    return out


def hinge_rates(
    angles: np.ndarray,
    omega_child: np.ndarray,
    axes: ChainAxes,
    sigma0: float = SIGMA0,
    lambda0: float = LAMBDA0,
    max_rate: float = MAX_RATE,
) -> np.ndarray:
    """Hinge rates ``[T, n]`` from the child-frame angular velocity ``[T, 3]`` by damped least squares."""
    J = rate_jacobian(angles, axes)  # [T, 3, n]
    U, sv, Vt = np.linalg.svd(J, full_matrices=False)  # [T, 3, n], [T, n], [T, n, n]
    lam2 = np.where(sv < sigma0, lambda0**2 * (1.0 - (sv / sigma0) ** 2), 0.0)
    gain = sv / np.maximum(sv**2 + lam2, 1e-300)  # [T, n]
    proj = np.einsum("tij,ti->tj", U, omega_child)  # u_k . omega
    rates = np.einsum("tkn,tk->tn", Vt, gain * proj)
    return np.clip(rates, -max_rate, max_rate)


@dataclass
class HingeMotion:
    """Hinge angles ``[T, D]``, rates ``[T, D]`` (rad/s) and, per DoF, the largest excess past its limits."""

    dof_pos: np.ndarray
    dof_vel: np.ndarray
    max_limit_excess: np.ndarray  # [D] radians


def hinge_motion(local_wxyz: dict[str, np.ndarray], skeleton, fps: float) -> HingeMotion:
    """Angles and rates of every hinge from the local rotations ``{body: [T, 4] wxyz}`` of the
    bodies that carry hinges (relative to their parents, rest orientation included)."""
    groups = body_hinges(skeleton)
    T = next(iter(local_wxyz.values())).shape[0]
    D = skeleton.num_dof if hasattr(skeleton, "num_dof") else len(skeleton.dof_names)
    pos, vel = np.zeros((T, D)), np.zeros((T, D))
    for g in groups:
        q = quat_mul(_conj(np.broadcast_to(g.rest_wxyz, (T, 4))), local_wxyz[g.body])  # hinge part only
        q = q / np.linalg.norm(q, axis=-1, keepdims=True)
        # sign-consistent in time: q and -q are the same rotation, but the differences need neighbours
        dots = np.sum(q[1:] * q[:-1], -1)
        q = q * np.concatenate(([1.0], np.cumprod(np.where(dots < 0, -1.0, 1.0))))[:, None]
        ang = choose_readings(candidate_readings(g, q), g.limits)
        if len(g.dofs) == 3:
            ang = settle_gimbal_locks(ang, g)
        idx = list(g.dofs)
        pos[:, idx] = ang
        vel[:, idx] = hinge_rates(ang, local_angular_velocity(q, fps), g.axes)
    limits = np.asarray(skeleton.dof_limits, dtype=np.float64)
    return HingeMotion(pos, vel, limit_excess(pos, limits).max(0) if T else np.zeros(D))
