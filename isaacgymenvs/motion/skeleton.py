"""Kinematic tree of a MuJoCo character and batched forward kinematics in torch.

The skeleton is read from a compiled ``mujoco.MjModel`` (free root + hinge joints). Forward
kinematics here reproduces ``mj_kinematics`` body positions, so a reference frame evaluated
by the MotionLib and the same frame written into a simulator give identical key-body
positions (the agent/demonstration parity the discriminator relies on).

Imports: mujoco, numpy, torch and ``isaacgymenvs.utils`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from isaacgymenvs.utils.quaternions import quat_from_axis_angle, quat_mul, quat_rotate


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

    def _tables(self, device: torch.device) -> dict:
        """Index tables for batched kinematics (built once per device)."""
        cache = self.__dict__.setdefault("_table_cache", {})
        key = str(device)
        if key not in cache:
            K = max(1, max((self.dof_body.count(b) for b in range(self.num_bodies)), default=1))
            slots = torch.full((self.num_bodies, K), self.num_dof, dtype=torch.long)  # num_dof = identity
            fill = [0] * self.num_bodies
            for d, b in enumerate(self.dof_body):
                slots[b, fill[b]] = d
                fill[b] += 1
            depth = []
            for p in self.parents:
                depth.append(0 if p < 0 else depth[p] + 1)
            levels = []
            for lvl in range(1, max(depth) + 1):
                bodies = [b for b in range(self.num_bodies) if depth[b] == lvl]
                levels.append(
                    (
                        torch.tensor(bodies, device=device),
                        torch.tensor([self.parents[b] for b in bodies], device=device),
                    )
                )
            cache[key] = {"slots": slots.to(device), "levels": levels, "root": self.parents.index(-1)}
        return cache[key]

    def local_rotations(self, dof_pos: torch.Tensor) -> torch.Tensor:
        """Body rotations relative to the parent: ``[..., D] -> [..., B, 4]`` wxyz (root slot: rest)."""
        tab = self._tables(dof_pos.device)
        shape = dof_pos.shape[:-1]
        hinge = quat_from_axis_angle(self.dof_axis.to(dof_pos).expand(*shape, self.num_dof, 3), dof_pos)
        ident = torch.zeros(*shape, 1, 4, dtype=dof_pos.dtype, device=dof_pos.device)
        ident[..., 0] = 1.0
        hinge = torch.cat((hinge, ident), dim=-2)  # [..., D + 1, 4]
        rots = self.rest_quat_wxyz.to(dof_pos).expand(*shape, self.num_bodies, 4)
        for k in range(tab["slots"].shape[1]):  # at most 3 hinges per body: 3 batched products
            rots = quat_mul(rots, hinge[..., tab["slots"][:, k], :])
        return rots

    def forward_kinematics(
        self, root_pos: torch.Tensor, root_quat_wxyz: torch.Tensor, dof_pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World body positions ``[..., B, 3]`` and orientations ``[..., B, 4]`` (wxyz).

        Bodies are processed one tree depth at a time, all bodies of a depth in one batch."""
        tab = self._tables(dof_pos.device)
        local = self.local_rotations(dof_pos)
        shape = dof_pos.shape[:-1]
        offsets = self.offsets.to(dof_pos)
        pos = torch.empty(*shape, self.num_bodies, 3, dtype=dof_pos.dtype, device=dof_pos.device)
        rot = torch.empty(*shape, self.num_bodies, 4, dtype=dof_pos.dtype, device=dof_pos.device)
        pos[..., tab["root"], :] = root_pos
        rot[..., tab["root"], :] = root_quat_wxyz
        for bodies, parents in tab["levels"]:
            prot = rot[..., parents, :]
            pos[..., bodies, :] = pos[..., parents, :] + quat_rotate(
                prot, offsets[bodies].expand(*shape, len(bodies), 3)
            )
            rot[..., bodies, :] = quat_mul(prot, local[..., bodies, :])
        return pos, rot


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
