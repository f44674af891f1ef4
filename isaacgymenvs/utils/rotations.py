"""Quaternion and rotation helpers on torch tensors.

Every quaternion in this module is **wxyz** (scalar first, MuJoCo's order). Clips stored
as xyzw are reordered when they are loaded (see ``isaacgymenvs.motion.poselib``).
All functions broadcast over leading dimensions: ``q`` is ``[..., 4]``, ``v`` is ``[..., 3]``.
"""

from __future__ import annotations

import torch


def quat_mul(a_wxyz: torch.Tensor, b_wxyz: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    aw, ax, ay, az = a_wxyz.unbind(-1)
    bw, bx, by, bz = b_wxyz.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_conj(q_wxyz: torch.Tensor) -> torch.Tensor:
    """Conjugate (the inverse of a unit quaternion)."""
    return torch.cat((q_wxyz[..., :1], -q_wxyz[..., 1:]), dim=-1)


def quat_rotate(q_wxyz: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v`` by unit quaternions ``q`` (``q v q*``)."""
    w = q_wxyz[..., :1]
    u = q_wxyz[..., 1:]
    t = 2.0 * torch.linalg.cross(u, v, dim=-1)
    return v + w * t + torch.linalg.cross(u, t, dim=-1)


def quat_from_axis_angle(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Quaternion of a rotation by ``angle`` [...] about unit ``axis`` [..., 3]."""
    half = 0.5 * angle.unsqueeze(-1)
    return torch.cat((torch.cos(half), axis * torch.sin(half)), dim=-1)


def quat_normalize(q_wxyz: torch.Tensor) -> torch.Tensor:
    return q_wxyz / torch.linalg.norm(q_wxyz, dim=-1, keepdim=True).clamp_min(1e-9)


def quat_to_tan_norm(q_wxyz: torch.Tensor) -> torch.Tensor:
    """6-D rotation feature: the rotated x axis (tangent) then the rotated z axis (normal)."""
    x = torch.zeros_like(q_wxyz[..., 1:])
    x[..., 0] = 1.0
    z = torch.zeros_like(q_wxyz[..., 1:])
    z[..., 2] = 1.0
    return torch.cat((quat_rotate(q_wxyz, x), quat_rotate(q_wxyz, z)), dim=-1)


def heading_angle(q_wxyz: torch.Tensor) -> torch.Tensor:
    """Yaw of the rotated x axis about world z, in radians."""
    x = torch.zeros_like(q_wxyz[..., 1:])
    x[..., 0] = 1.0
    d = quat_rotate(q_wxyz, x)
    return torch.atan2(d[..., 1], d[..., 0])


def heading_quat_inv(q_wxyz: torch.Tensor) -> torch.Tensor:
    """Rotation that takes world vectors into the heading (yaw-only) frame of ``q``."""
    z = torch.zeros_like(q_wxyz[..., 1:])
    z[..., 2] = 1.0
    return quat_from_axis_angle(z, -heading_angle(q_wxyz))


def quat_slerp(q0_wxyz: torch.Tensor, q1_wxyz: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation; ``t`` is ``[...]`` in [0, 1]. Takes the short path."""
    t = t.unsqueeze(-1)
    dot = (q0_wxyz * q1_wxyz).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1_wxyz, q1_wxyz)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    small = sin_theta < 1e-6
    safe = torch.where(small, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(small, 1.0 - t, torch.sin((1.0 - t) * theta) / safe)
    w1 = torch.where(small, t, torch.sin(t * theta) / safe)
    return quat_normalize(w0 * q0_wxyz + w1 * q1)


def quat_to_rotvec(q_wxyz: torch.Tensor) -> torch.Tensor:
    """Axis * angle (the exponential-map coordinates), angle in [0, pi]."""
    q = torch.where(q_wxyz[..., :1] < 0, -q_wxyz, q_wxyz)
    v = q[..., 1:]
    s = torch.linalg.norm(v, dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    scale = torch.where(s > 1e-9, angle / s.clamp_min(1e-12), torch.full_like(s, 2.0))
    return v * scale
