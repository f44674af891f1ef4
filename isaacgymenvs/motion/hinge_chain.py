"""Rotations of a body moved by hinges on coordinate axes, and back: one hinge, or three (a 3-DoF joint).

A 3-DoF joint of the MJCF is three hinges in one body about distinct coordinate axes, applied in
the model's order: ``H = A1(t1) A2(t2) A3(t3)`` with ``A_m`` a rotation about ``sign_m * e_{index_m}``.
Its angles are a Tait-Bryan (Euler) decomposition of ``H``, which has two branches for every
rotation, ``(p1, p2, p3)`` and ``(p1 + pi, pi - p2, p3 + pi)`` in axis-signed angles ``p = sign * t``,
each up to 2 pi shifts of every angle; where ``cos p2 = 0`` (gimbal lock) the first and third hinge
turn about the same line and only a combination of them is fixed.

Every function works on numpy arrays and on torch tensors alike (the namespace comes from the
input), so the clip loader (numpy; sim2sim runs without torch) and the MotionLib (torch, on the
GPU) decompose the same way. Quaternions are **wxyz**; matrices rotate child-frame vectors into
the parent frame; leading dimensions broadcast.

Imports: numpy and ``isaacgymenvs.utils`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from isaacgymenvs.utils.array_namespace import namespace


@dataclass(frozen=True)
class ChainAxes:
    """The hinges of one body: the coordinate axis (0, 1, 2 = x, y, z) and sign of each, in order."""

    index: tuple[int, ...]
    sign: tuple[float, ...]

    @classmethod
    def from_vectors(cls, axes) -> "ChainAxes":
        """From hinge axis vectors ``[n, 3]``; each must be a signed coordinate axis."""
        index, sign = [], []
        for a in np.asarray(axes, dtype=np.float64).reshape(-1, 3):
            k = int(np.argmax(np.abs(a)))
            if abs(abs(a[k]) - 1.0) > 1e-6 or np.sum(np.abs(a)) - abs(a[k]) > 1e-6:
                raise ValueError(f"hinge axis {a.tolist()} is not a coordinate axis")
            index.append(k)
            sign.append(float(np.sign(a[k])))
        if len(index) == 3 and len(set(index)) != 3:
            raise ValueError(f"three hinges of one body need three distinct axes, got {index}")
        return cls(tuple(index), tuple(sign))

    @property
    def parity(self) -> float:
        """+1 for a cyclic order (xyz, yzx, zxy), -1 otherwise."""
        i, j = self.index[0], self.index[1]
        return 1.0 if (j - i) % 3 == 1 else -1.0


def _stack(xp, parts, axis):
    return xp.stack(parts, axis) if xp is np else xp.stack(parts, dim=axis)


def quat_mul(a, b):
    """Hamilton product ``a * b`` of wxyz quaternions ``[..., 4]``."""
    xp = namespace(a)
    aw, ax, ay, az = (a[..., k] for k in range(4))
    bw, bx, by, bz = (b[..., k] for k in range(4))
    return _stack(
        xp,
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        -1,
    )


def quat_to_matrix(q):
    """Rotation matrices ``[..., 3, 3]`` of unit wxyz quaternions ``[..., 4]``."""
    xp = namespace(q)
    w, x, y, z = (q[..., k] for k in range(4))
    rows = (
        _stack(xp, (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)), -1),
        _stack(xp, (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)), -1),
        _stack(xp, (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)), -1),
    )
    return _stack(xp, rows, -2)


def hinge_quat(angle, index: int, sign: float):
    """wxyz quaternion ``[..., 4]`` of a rotation by ``angle [...]`` about ``sign * e_index``."""
    xp = namespace(angle)
    h = 0.5 * sign * angle
    zero = h * 0
    parts = [xp.cos(h), zero, zero, zero]
    parts[1 + index] = xp.sin(h)
    return _stack(xp, parts, -1)


def chain_quat(angles, axes: ChainAxes):
    """wxyz quaternion ``[..., 4]`` of the hinge chain at ``angles [..., n]``."""
    q = hinge_quat(angles[..., 0], axes.index[0], axes.sign[0])
    for m in range(1, len(axes.index)):
        q = quat_mul(q, hinge_quat(angles[..., m], axes.index[m], axes.sign[m]))
    return q


def decompose(R, axes: ChainAxes):
    """Both branches of hinge angles ``([..., 3], [..., 3])`` of rotation matrices ``R [..., 3, 3]``
    for a 3-hinge chain: the principal one (middle angle within [-pi/2, pi/2] in axis-signed terms)
    and the other, ``(p1 + pi, pi - p2, p3 + pi)``; all angles wrapped into [-pi, pi]."""
    xp = namespace(R)
    i, j, k = axes.index
    e = axes.parity
    # the middle angle from atan2 (not asin): accurate near +-pi/2, where asin is not
    p2 = xp.atan2(e * R[..., i, k], xp.sqrt(R[..., i, i] ** 2 + R[..., i, j] ** 2))
    p1 = xp.atan2(-e * R[..., j, k], R[..., k, k])
    # the third from what is left once the first two are undone: exact whatever p1 is, so near
    # gimbal lock (where p1 is a ratio of two tiny numbers) the pair still gives R exactly
    A12 = quat_to_matrix(quat_mul(hinge_quat(p1, i, 1.0), hinge_quat(p2, j, 1.0)))
    M = A12.swapaxes(-1, -2) @ R
    u, v = (k + 1) % 3, (k + 2) % 3
    p3 = xp.atan2(M[..., v, u] - M[..., u, v], M[..., u, u] + M[..., v, v])
    s = axes.sign
    first = _stack(xp, (s[0] * p1, s[1] * p2, s[2] * p3), -1)
    other = _stack(xp, (s[0] * wrap(p1 + math.pi), s[1] * wrap(math.pi - p2), s[2] * wrap(p3 + math.pi)), -1)
    return first, other


def wrap(a):
    """Angles into [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def shift_toward(a, ref):
    """``a`` moved by whole turns (2 pi) to lie within pi of ``ref``."""
    xp = namespace(a)
    return a + 2 * math.pi * xp.round((ref - a) / (2 * math.pi))


def nearest_branch(R, axes: ChainAxes, ref):
    """Hinge angles ``[..., 3]`` of ``R`` on the branch, and the 2 pi shifts, nearest ``ref [..., 3]``
    (sum of absolute differences): how an interpolated rotation is read back onto the hinges."""
    xp = namespace(R)
    first, other = decompose(R, axes)
    first, other = shift_toward(first, ref), shift_toward(other, ref)
    d1 = abs(first - ref).sum(-1)
    d2 = abs(other - ref).sum(-1)
    return xp.where((d2 < d1)[..., None], other, first)


def rate_jacobian(angles, axes: ChainAxes) -> np.ndarray:
    """``J [..., 3, n]`` (numpy): the child-frame angular velocity of the chain is ``J @ hinge_rates``.

    Column m is hinge m's axis seen from the child frame: ``(A_{m+1} ... A_n)^T s_m e_m``."""
    angles = np.asarray(angles, dtype=np.float64)
    n = len(axes.index)
    mats = [quat_to_matrix(hinge_quat(angles[..., m], axes.index[m], axes.sign[m])) for m in range(n)]
    cols = [None] * n
    after = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3))
    for m in range(n - 1, -1, -1):
        e = np.zeros(3)
        e[axes.index[m]] = axes.sign[m]
        cols[m] = np.einsum("...ji,j->...i", after, e)  # after^T e
        after = mats[m] @ after
    return np.stack(cols, -1)


def slerp(q0, q1, t):
    """Spherical interpolation of wxyz quaternions ``[..., 4]`` at ``t [...]`` in [0, 1], short way round."""
    xp = namespace(q0)
    t = t[..., None]
    dot = (q0 * q1).sum(-1)[..., None]
    q1 = xp.where(dot < 0, -q1, q1)
    dot = xp.clip(abs(dot), 0.0, 1.0)
    theta = xp.acos(dot)
    sin_theta = xp.sin(theta)
    small = sin_theta < 1e-6
    safe = xp.where(small, sin_theta * 0 + 1.0, sin_theta)
    w0 = xp.where(small, 1.0 - t, xp.sin((1.0 - t) * theta) / safe)
    w1 = xp.where(small, t, xp.sin(t * theta) / safe)
    q = w0 * q0 + w1 * q1
    return q / xp.sqrt((q * q).sum(-1))[..., None]


def interpolate_chain(a0, a1, blend, axes: ChainAxes):
    """Hinge angles ``[..., 3]`` between two readings ``a0, a1 [..., 3]`` of a 3-hinge chain at
    ``blend [...]``: the rotations are slerped, and the result read back on the branch nearest the
    linear blend of the two readings (so it meets ``a0`` and ``a1`` at the frames)."""
    q = slerp(chain_quat(a0, axes), chain_quat(a1, axes), blend)
    return nearest_branch(quat_to_matrix(q), axes, a0 + blend[..., None] * (a1 - a0))


def chains_by_axes(skeleton) -> list[tuple[ChainAxes, np.ndarray]]:
    """The 3-hinge bodies of a skeleton, grouped by their axes so each group is one batch:
    ``[(axes, dof indices [3 G] body after body), ...]``."""
    bodies: dict[int, list[int]] = {}
    for d, b in enumerate(skeleton.dof_body):
        bodies.setdefault(b, []).append(d)
    axes_all = np.asarray(skeleton.dof_axis, dtype=np.float64)
    out: dict[ChainAxes, list[list[int]]] = {}
    for dofs in bodies.values():
        if len(dofs) == 3:
            out.setdefault(ChainAxes.from_vectors(axes_all[dofs]), []).append(list(dofs))
    return [(axes, np.asarray(groups, dtype=np.int64).reshape(-1)) for axes, groups in out.items()]


def interpolate_hinges(dof0, dof1, blend, chains):
    """All hinge angles ``[N, D]`` between frames ``dof0, dof1 [N, D]`` at ``blend [N]``: single
    hinges linearly, 3-hinge chains through their rotations. ``chains``: ``chains_by_axes``, with
    the index arrays of the inputs' kind (device tensors for torch: no host copy per call)."""
    out = dof0 + blend[..., None] * (dof1 - dof0)
    for axes, idx in chains:
        shape = dof0.shape[:-1] + (idx.shape[0] // 3, 3)
        a0, a1 = dof0[..., idx].reshape(shape), dof1[..., idx].reshape(shape)
        out[..., idx] = interpolate_chain(a0, a1, blend[..., None], axes).reshape(dof0.shape[:-1] + (-1,))
    return out
