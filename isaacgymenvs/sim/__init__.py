"""Simulator backends behind :class:`isaacgymenvs.sim.base.SimBackend`, chosen by name."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import mujoco

if TYPE_CHECKING:  # sim.base imports torch; sim.actuators is used without torch (characters, sim2sim)
    from isaacgymenvs.sim.base import SimBackend

BACKENDS = ("mujoco", "mujoco_warp")


class BackendUnavailableError(RuntimeError):
    pass


def check_backend(name: str, device: str = "cpu") -> None:
    """Raise :class:`BackendUnavailableError` (naming the fix) if backend ``name`` cannot run here."""
    if name == "mujoco":
        return
    if name != "mujoco_warp":
        raise ValueError(f"unknown sim {name!r}; choose one of {BACKENDS}")
    if importlib.util.find_spec("mujoco_warp") is None:
        raise BackendUnavailableError(
            "sim=mujoco_warp needs the mujoco-warp package: `pip install 'mujoco-warp==4.0.0'` "
            "(or `make install-gpu`) on a machine with an NVIDIA GPU; use sim=mujoco for the CPU"
        )
    import torch

    # Warp also runs on the CPU (slowly; for development): only with an explicit sim_device=cpu.
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "sim=mujoco_warp needs a CUDA GPU and a CUDA build of torch, and none is available here; use sim=mujoco"
        )


def make_backend(
    name: str, model: mujoco.MjModel, num_envs: int, control_dt: float, device: str = "cpu", **kw
) -> SimBackend:
    """Build backend ``name`` (``sim=...`` on the command line) for ``num_envs`` copies of ``model``."""
    if name == "mujoco":
        from isaacgymenvs.sim.mujoco_cpu import MujocoCpuBackend

        return MujocoCpuBackend(model, num_envs, control_dt, device=device, **kw)
    if name == "mujoco_warp":
        check_backend(name, device)
        from isaacgymenvs.sim.mujoco_warp import MujocoWarpBackend

        return MujocoWarpBackend(model, num_envs, control_dt, device=device, **kw)
    raise ValueError(f"unknown sim {name!r}; choose one of {BACKENDS}")
