"""Quaternion helpers that exist for torch tensors only: normalize and slerp (the MotionLib's root).

The products, rotations, axis-angle, tan-norm and heading helpers are written once for numpy and
torch in :mod:`isaacgymenvs.utils.quaternions`. Every quaternion here is **wxyz** (scalar first,
MuJoCo's order); clips stored as xyzw are reordered when they are loaded
(``isaacgymenvs.motion.poselib``). Leading dimensions broadcast: ``q`` is ``[..., 4]``.
"""

from __future__ import annotations

import torch


def quat_normalize(q_wxyz: torch.Tensor) -> torch.Tensor:
    return q_wxyz / torch.linalg.norm(q_wxyz, dim=-1, keepdim=True).clamp_min(1e-9)


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
