"""Quaternion helpers for numpy arrays and torch tensors alike (see ``array_namespace``).

What the observation terms (``isaacgymenvs.tasks.terms``) need, written once for the trainer (torch,
on the GPU, inside captured steps) and for sim2sim (numpy, without torch). Quaternions are **wxyz**;
leading dimensions broadcast: ``q`` is ``[..., 4]``, ``v`` is ``[..., 3]``. Only elementwise
arithmetic, ``stack``/``concat`` and trigonometry: no constants copied from the host.
"""

from __future__ import annotations

from isaacgymenvs.utils.array_namespace import namespace


def _cross(a, b):
    xp = namespace(a)
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return xp.stack((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx), axis=-1)


def quat_mul(a, b):
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    xp = namespace(a)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        axis=-1,
    )


def quat_conj(q):
    """Conjugate (the inverse of a unit quaternion)."""
    xp = namespace(q)
    return xp.concat((q[..., :1], -q[..., 1:]), axis=-1)


def quat_rotate(q, v):
    """Rotate vectors ``v`` by unit quaternions ``q`` (``q v q*``)."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * _cross(u, v)
    return v + w * t + _cross(u, t)


def quat_from_axis_angle(axis, angle):
    """Quaternion of a rotation by ``angle [...]`` about unit ``axis [..., 3]``."""
    xp = namespace(angle)
    half = 0.5 * angle[..., None]
    return xp.concat((xp.cos(half), axis * xp.sin(half)), axis=-1)


def quat_to_tan_norm(q):
    """6-D rotation feature: the rotated x axis (tangent) then the rotated z axis (normal)."""
    xp = namespace(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return xp.stack(
        (
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y + w * z),
            2.0 * (x * z - w * y),
            2.0 * (x * z + w * y),
            2.0 * (y * z - w * x),
            1.0 - 2.0 * (x * x + y * y),
        ),
        axis=-1,
    )


def heading_angle(q):
    """Yaw of the rotated x axis about world z (rad)."""
    xp = namespace(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return xp.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def heading_quat_inv(q):
    """The yaw-only rotation that takes world vectors into the heading frame of ``q``."""
    xp = namespace(q)
    half = -0.5 * heading_angle(q)
    zero = half * 0.0
    return xp.stack((xp.cos(half), zero, zero, xp.sin(half)), axis=-1)
