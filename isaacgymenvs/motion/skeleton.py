"""Kinematic tree of a MuJoCo character and batched forward kinematics in torch.

The skeleton is read from a compiled ``mujoco.MjModel`` (free root + hinge joints). Forward
kinematics here reproduces ``mj_kinematics`` body positions, so a reference frame evaluated
by the MotionLib and the same frame written into a simulator give identical key-body
positions (the agent/demonstration parity the discriminator relies on).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from isaacgymenvs.utils.rotations import quat_from_axis_angle, quat_mul, quat_rotate


@dataclass
class Skeleton:
    """Bodies (world excluded) in model order; DoFs are the hinge joints in qpos order."""

    body_names: list[str]
    #: [B] parent index into ``body_names``; -1 for the root.
    parents: list[int]
    #: [B, 3] body position in the parent frame.
    offsets: torch.Tensor
    #: [B, 4] body rest orientation in the parent frame, wxyz.
    rest_quat_wxyz: torch.Tensor
    dof_names: list[str]
    #: [D] index of the body each DoF moves.
    dof_body: list[int]
    #: [D, 3] hinge axis in the body frame.
    dof_axis: torch.Tensor
    #: [D] lower and upper joint limits (rad).
    dof_limits: torch.Tensor

    @property
    def num_bodies(self) -> int:
        return len(self.body_names)

    @property
    def num_dof(self) -> int:
        return len(self.dof_names)

    def body_index(self, names) -> list[int]:
        missing = [n for n in names if n not in self.body_names]
        if missing:
            raise ValueError(f"bodies {missing} are not in the model (bodies: {self.body_names})")
        return [self.body_names.index(n) for n in names]

    def to(self, device) -> "Skeleton":
        return Skeleton(
            self.body_names,
            self.parents,
            self.offsets.to(device),
            self.rest_quat_wxyz.to(device),
            self.dof_names,
            self.dof_body,
            self.dof_axis.to(device),
            self.dof_limits.to(device),
        )

    def local_rotations(self, dof_pos: torch.Tensor) -> torch.Tensor:
        """Body rotations relative to the parent: ``[..., D] -> [..., B, 4]`` wxyz (root slot: rest)."""
        shape = dof_pos.shape[:-1]
        rots = self.rest_quat_wxyz.to(dof_pos.dtype).expand(*shape, self.num_bodies, 4).clone()
        axes = self.dof_axis.to(dof_pos.dtype)
        for d, b in enumerate(self.dof_body):
            rots[..., b, :] = quat_mul(rots[..., b, :], quat_from_axis_angle(axes[d].expand(*shape, 3), dof_pos[..., d]))
        return rots

    def forward_kinematics(
        self, root_pos: torch.Tensor, root_quat_wxyz: torch.Tensor, dof_pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World body positions ``[..., B, 3]`` and orientations ``[..., B, 4]`` (wxyz)."""
        local = self.local_rotations(dof_pos)
        offsets = self.offsets.to(dof_pos.dtype)
        pos = [None] * self.num_bodies
        rot = [None] * self.num_bodies
        for b, p in enumerate(self.parents):
            if p < 0:
                pos[b] = root_pos
                rot[b] = root_quat_wxyz
            else:
                pos[b] = pos[p] + quat_rotate(rot[p], offsets[b].expand_as(root_pos))
                rot[b] = quat_mul(rot[p], local[..., b, :])
        return torch.stack(pos, dim=-2), torch.stack(rot, dim=-2)


def skeleton_from_model(model: mujoco.MjModel) -> Skeleton:
    """Read the kinematic tree; the model must have one free root and hinge joints only."""
    if model.njnt == 0 or model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError("the model must start with a free root joint")
    names = [model.body(b).name for b in range(1, model.nbody)]
    parents = [int(model.body_parentid[b]) - 1 for b in range(1, model.nbody)]
    dof_names, dof_body, axes, limits = [], [], [], []
    for j in range(1, model.njnt):
        if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
            raise ValueError(f"joint {model.joint(j).name!r}: only hinge joints are supported below the root")
        if np.any(np.abs(model.jnt_pos[j]) > 1e-9):
            raise ValueError(f"joint {model.joint(j).name!r}: hinge anchors off the body origin are not supported")
        dof_names.append(model.joint(j).name)
        dof_body.append(int(model.jnt_bodyid[j]) - 1)
        axes.append(model.jnt_axis[j])
        lo, hi = model.jnt_range[j] if model.jnt_limited[j] else (-np.pi, np.pi)
        limits.append((lo, hi))
    return Skeleton(
        body_names=names,
        parents=parents,
        offsets=torch.tensor(model.body_pos[1:], dtype=torch.float64),
        rest_quat_wxyz=torch.tensor(model.body_quat[1:], dtype=torch.float64),
        dof_names=dof_names,
        dof_body=dof_body,
        dof_axis=torch.tensor(np.array(axes), dtype=torch.float64),
        dof_limits=torch.tensor(np.array(limits), dtype=torch.float64),
    )
