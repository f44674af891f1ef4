"""Observation, action and termination terms as pure tensor functions (shared by every robot).

Shapes: ``N`` environments, ``D`` hinge DoFs, ``K`` key bodies, ``B`` bodies. Quaternions wxyz.
The humanoid observation is IsaacGymEnvs' 105 numbers, in its order:

=====================  ====  ==============================================================
root height              1   root z
root rotation            6   tangent/normal of the root orientation (world, or heading frame)
root linear velocity     3   in the heading frame
root angular velocity    3   in the heading frame
joint rotations         52   3-DoF joints as tangent/normal (8 x 6), hinges as angles (4)
joint velocities        28
key bodies              12   hands and feet relative to the root, in the heading frame
=====================  ====  ==============================================================
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from isaacgymenvs.utils.rotations import (
    heading_quat_inv,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    quat_to_tan_norm,
)


@dataclass(frozen=True)
class JointGroup:
    """The hinges of one body: ``dofs`` (indices into DoF order) and their axes ``[len, 3]``."""

    body: str
    dofs: tuple[int, ...]
    axes: tuple[tuple[float, float, float], ...]


def joint_groups(skeleton) -> list[JointGroup]:
    """Group the hinge DoFs by the body they move, in DoF order."""
    groups: dict[int, list[int]] = {}
    for d, b in enumerate(skeleton.dof_body):
        groups.setdefault(b, []).append(d)
    axes = skeleton.dof_axis.tolist()
    out = [JointGroup(skeleton.body_names[b], tuple(ds), tuple(tuple(axes[d]) for d in ds)) for b, ds in groups.items()]
    return sorted(out, key=lambda g: g.dofs[0])


def dof_obs_size(groups: list[JointGroup]) -> int:
    return sum(6 if len(g.dofs) == 3 else len(g.dofs) for g in groups)


@functools.lru_cache(maxsize=64)
def _dof_obs_tables(groups: tuple, device: str):
    """Batched form of the groups: 3-hinge joints [G, 3] with their axes, single hinges, and the
    order that puts the pieces back in group order."""
    tri = [g for g in groups if len(g.dofs) == 3]
    tri_idx = torch.tensor([g.dofs for g in tri], dtype=torch.long).reshape(-1, 3)
    tri_axes = torch.tensor([g.axes for g in tri], dtype=torch.float32).reshape(-1, 3, 3)
    single = [d for g in groups if len(g.dofs) != 3 for d in g.dofs]
    order, t, n_tri = [], 0, 6 * len(tri)
    s = 0
    for g in groups:
        if len(g.dofs) == 3:
            order += list(range(6 * t, 6 * t + 6))
            t += 1
        else:
            order += list(range(n_tri + s, n_tri + s + len(g.dofs)))
            s += len(g.dofs)
    dev = torch.device(device)
    return tri_idx.to(dev), tri_axes.to(dev), torch.tensor(single, dtype=torch.long, device=dev), torch.tensor(order, device=dev)


def dof_to_obs(dof_pos: torch.Tensor, groups: list[JointGroup]) -> torch.Tensor:
    """``[N, D] -> [N, dof_obs_size]``: a 3-hinge joint becomes the tangent/normal of its rotation."""
    tri_idx, tri_axes, single, order = _dof_obs_tables(tuple(groups), str(dof_pos.device))
    N = dof_pos.shape[0]
    parts = []
    if tri_idx.numel():
        q = quat_from_axis_angle(tri_axes.to(dof_pos.dtype).expand(N, -1, -1, -1), dof_pos[:, tri_idx])  # [N, G, 3, 4]
        joint = quat_mul(quat_mul(q[:, :, 0], q[:, :, 1]), q[:, :, 2])
        parts.append(quat_to_tan_norm(joint).reshape(N, -1))
    if single.numel():
        parts.append(dof_pos[:, single])
    return torch.cat(parts, dim=-1)[:, order]


def character_obs(
    root_pos_w: torch.Tensor,
    root_quat_w: torch.Tensor,
    root_lin_vel_w: torch.Tensor,
    root_ang_vel_w: torch.Tensor,
    dof_pos: torch.Tensor,
    dof_vel: torch.Tensor,
    key_body_pos_w: torch.Tensor,
    groups: list[JointGroup],
    local_root_obs: bool = False,
) -> torch.Tensor:
    """The per-step observation (see the module table); also the AMP observation of one step."""
    heading_inv = heading_quat_inv(root_quat_w)
    root_rot = quat_mul(heading_inv, root_quat_w) if local_root_obs else root_quat_w
    local_vel_b = quat_rotate(heading_inv, root_lin_vel_w)
    local_ang_b = quat_rotate(heading_inv, root_ang_vel_w)
    rel = key_body_pos_w - root_pos_w.unsqueeze(-2)
    K = rel.shape[-2]
    local_key_b = quat_rotate(heading_inv.unsqueeze(-2).expand(-1, K, 4), rel).reshape(rel.shape[0], 3 * K)
    return torch.cat(
        (
            root_pos_w[:, 2:3],
            quat_to_tan_norm(root_rot),
            local_vel_b,
            local_ang_b,
            dof_to_obs(dof_pos, groups),
            dof_vel,
            local_key_b,
        ),
        dim=-1,
    )


def obs_layout(groups: list[JointGroup], num_dof: int, num_key_bodies: int) -> list[tuple[str, int]]:
    """Names and sizes of the observation blocks, in order."""
    return [
        ("root_height", 1),
        ("root_rot_tan_norm", 6),
        ("root_lin_vel_heading", 3),
        ("root_ang_vel_heading", 3),
        ("dof_pos_obs", dof_obs_size(groups)),
        ("dof_vel", num_dof),
        ("key_body_pos_heading", 3 * num_key_bodies),
    ]


def pd_action_offset_scale(groups: list[JointGroup], limits: torch.Tensor, hinge_scale: float = 0.7):
    """IsaacGymEnvs' PD action mapping ``target = offset + scale * action``.

    3-DoF joints span [-pi, pi]; a single hinge spans ``mid +- hinge_scale * (high - low)``
    (1.4x its range, so the policy can push against the limit). ``limits`` is ``[D, 2]``.
    """
    D = limits.shape[0]
    low = torch.empty(D, dtype=limits.dtype)
    high = torch.empty(D, dtype=limits.dtype)
    for g in groups:
        for d in g.dofs:
            if len(g.dofs) == 3:
                low[d], high[d] = -math.pi, math.pi
            else:
                lo, hi = limits[d]
                mid, half = 0.5 * (hi + lo), hinge_scale * (hi - lo)
                low[d], high[d] = mid - half, mid + half
    return 0.5 * (high + low), 0.5 * (high - low)


def default_pose_offset_scale(default_dof_pos: torch.Tensor, limits: torch.Tensor, action_scale: float = 1.0):
    """A robot's PD action mapping ``target = offset + scale * action`` around a standing pose:
    ``offset`` is the pose, ``scale`` is ``action_scale`` times half of each joint's range (the
    caller clamps targets to the range). ``limits`` is ``[D, 2]``."""
    half = 0.5 * (limits[:, 1] - limits[:, 0])
    return default_dof_pos.to(limits.dtype).clone(), action_scale * half


def fall_termination(
    contact_forces_w: torch.Tensor,
    body_pos_w: torch.Tensor,
    allowed_contact: torch.Tensor,
    termination_height: float,
    progress: torch.Tensor,
    force_threshold: float = 0.1,
) -> torch.Tensor:
    """IsaacGymEnvs' fall test ``[N]`` bool: some body that may not touch the ground has a contact
    force component above ``force_threshold`` **and** some such body is below
    ``termination_height``; never in the first two steps of an episode.
    ``allowed_contact`` is a ``[B]`` bool mask (feet)."""
    forbidden = ~allowed_contact  # masks, not boolean indexing: no host synchronization
    touching = ((contact_forces_w.abs() > force_threshold).any(dim=-1) & forbidden).any(dim=-1)
    low = ((body_pos_w[..., 2] < termination_height) & forbidden).any(dim=-1)
    return touching & low & (progress > 1)
