"""The simulator seam: one small interface, enforced, with one contract suite for all backends.

A backend simulates ``num_envs`` copies of one character. State is exposed as batch-first
torch tensors on ``device`` (``_w`` = world frame; quaternions wxyz). It knows nothing of
motions, observations or rewards.

Control is PD as Isaac Gym applies it: ``set_pd_targets`` takes joint targets in DoF order
(the model's hinge order), the backend maps them to actuators through the model's
transmission table and the PD servo runs at every physics substep of a control step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class SimBackend(ABC):
    #: Number of environments.
    num_envs: int
    #: Device of every tensor the backend returns or takes.
    device: torch.device
    #: Hinge joint names in DoF order.
    dof_names: list[str]
    #: Body names (world excluded) in model order; ``body_pos_w`` follows it.
    body_names: list[str]
    #: Physics steps per control step, and the resulting control period (s).
    substeps: int
    control_dt: float

    @property
    def num_dof(self) -> int:
        return len(self.dof_names)

    @property
    def num_bodies(self) -> int:
        return len(self.body_names)

    # --- state (refreshed by step() and write_state(); treat as read-only) ---
    @property
    @abstractmethod
    def root_pos_w(self) -> torch.Tensor:
        """[N, 3] root body origin."""

    @property
    @abstractmethod
    def root_quat_w(self) -> torch.Tensor:
        """[N, 4] root orientation, wxyz."""

    @property
    @abstractmethod
    def root_lin_vel_w(self) -> torch.Tensor:
        """[N, 3] linear velocity of the root body origin."""

    @property
    @abstractmethod
    def root_ang_vel_w(self) -> torch.Tensor:
        """[N, 3] angular velocity of the root, world frame."""

    @property
    @abstractmethod
    def dof_pos(self) -> torch.Tensor:
        """[N, D] hinge angles (rad)."""

    @property
    @abstractmethod
    def dof_vel(self) -> torch.Tensor:
        """[N, D] hinge velocities (rad/s)."""

    @property
    @abstractmethod
    def body_pos_w(self) -> torch.Tensor:
        """[N, B, 3] body origins."""

    @property
    @abstractmethod
    def contact_forces_w(self) -> torch.Tensor:
        """[N, B, 3] net contact force on each body after the last physics substep."""

    # --- commands ---
    @abstractmethod
    def write_state(
        self,
        env_ids: torch.Tensor | None,
        root_pos_w: torch.Tensor,
        root_quat_w: torch.Tensor,
        root_lin_vel_w: torch.Tensor,
        root_ang_vel_w: torch.Tensor,
        dof_pos: torch.Tensor,
        dof_vel: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> None:
        """Set the full state of ``env_ids`` [M]; every other tensor is [M, ...]. Others are untouched.

        ``env_ids=None`` takes tensors [N, ...] for every environment without looking at ids on
        the host, which keeps a GPU backend free of synchronizations: all environments are
        written, or with ``mask`` [N] bool only those where it is true (the others keep their
        state bit for bit, solver warm start included)."""

    @abstractmethod
    def set_pd_targets(self, targets: torch.Tensor) -> None:
        """[N, D] joint position targets (rad), DoF order, held for the next control step."""

    @abstractmethod
    def step(self) -> None:
        """Advance every environment by one control step (``substeps`` physics steps). Afterwards
        the body positions are those of the new state (as after ``write_state``) and the contact
        forces those of the last substep."""

    def unstable(self, max_speed: float) -> torch.Tensor:
        """``[N]`` bool: environments whose state after the last ``step()`` cannot be trusted: a
        non-finite position, velocity or contact force, or a speed (any joint or root velocity
        component, rad/s or m/s) beyond ``max_speed``. A backend adds what its physics reports
        (the CPU backend: MuJoCo's bad-QACC/QVEL/QPOS warnings, after which MuJoCo has already
        reset the env to its rest pose). Device tensors only: no host synchronization."""
        state = torch.cat((self.root_pos_w, self.root_quat_w, self.dof_pos), dim=-1)
        vel = torch.cat((self.root_lin_vel_w, self.root_ang_vel_w, self.dof_vel), dim=-1)
        bad = ~torch.isfinite(state).all(-1) | ~torch.isfinite(vel).all(-1)
        bad |= ~torch.isfinite(self.contact_forces_w).flatten(1).all(-1)
        # NaN compares false: a non-finite speed is caught above, not here
        return bad | (vel.abs() > max_speed).any(-1)

    def graphed(self, fn, generators=()):
        """A callable doing what ``fn(*tensors)`` does. A GPU backend may capture ``fn`` once
        (its torch and simulator kernels as one CUDA graph, replayed per call, returning the same
        output tensors each time); ``fn`` must then update its state in place, synchronize nothing
        with the host, and draw random numbers only from the default generator and ``generators``.
        The default runs ``fn`` as it is."""
        return fn

    def close(self) -> None:  # noqa: B027 (optional: a backend without resources to free keeps this)
        """Free what the backend holds (GPU memory, threads); the default holds nothing."""


def substeps_for(control_dt: float, physics_dt: float) -> int:
    """Physics steps per control step; the control period must be a whole number of them (±5%)."""
    n = max(1, round(control_dt / physics_dt))
    if abs(n * physics_dt - control_dt) > 0.05 * control_dt:
        raise ValueError(
            f"control period {control_dt:.5f}s is not a whole number of physics steps of {physics_dt:.5f}s"
        )
    return n
