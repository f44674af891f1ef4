"""What the rest of the trainer knows of a learner: its interface, its errors and its checkpoint file.

The learner (PPO + the AMP discriminator) is built on rl_games behind one adapter
(:mod:`isaacgymenvs.learning.rl_games_adapter`, the only package that imports rl_games). Everything
else — the entry point, the sweeps, export and promotion — talks to it through :class:`Learner`
and reads checkpoints through :func:`load_checkpoint_file`, so replacing rl_games means writing
one adapter. Imports: torch only, and that when a checkpoint is read (a sweep's driver, which
ranks trials and checks configs with this module, never loads torch).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

#: Hyperparameters a running learner takes a new value of (PBT's mutations), by their config key
#: under ``train.params.config``. Everything else fixes the shape of the rollout or the network.
HYPERPARAMETERS = ("learning_rate", "bounds_loss_coef", "entropy_coef", "e_clip")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or not one of this trainer for this task/network."""


class SimulationUnstableError(RuntimeError):
    """Too many envs blew up; the message names the share, the clip and where the last one started."""


#: An observer of the training: called as ``fn(epoch, env_steps, metrics)`` after every epoch.
EpochObserver = Callable[[int, int, dict], None]
#: Called as ``fn(path, kind, epoch)`` after a checkpoint is written; kind ``'epoch'`` or ``'best'``.
CheckpointObserver = Callable[[Path, str, int], None]


class Learner(Protocol):
    """A PPO + discriminator learner on a vectorized AMP task.

    ``train`` runs epochs until ``max_epochs``, ``max_time_s`` or ``max_env_steps``; after each it
    calls the checkpoint observers for the checkpoints it wrote, then the epoch observers with the
    epoch's metrics (``disc/*``, ``reward/*``, ``loss/*``, ``rollout/*``, ``eval/*`` at evaluations).
    """

    observers: list[EpochObserver]
    checkpoint_observers: list[CheckpointObserver]
    epoch_num: int
    frame: int  # env steps so far
    is_final_epoch: bool

    def train(self) -> Path | None:
        """Train; the path of the last checkpoint written."""
        ...

    def save_checkpoint(self, path: Path | str) -> Path: ...

    def restore_checkpoint(self, path: Path | str, sigma_override: float | None = None) -> dict:
        """Load weights, normalizers, optimizer and epoch; :class:`CheckpointError` when it does not fit."""
        ...

    def set_hyperparameter(self, name: str, value: float) -> None:
        """A new value of one of :data:`HYPERPARAMETERS`, applied from the next minibatch on."""
        ...

    def write_summary(self, epoch: int, metrics: dict) -> None:
        """The epoch's metrics into the run folder's TensorBoard summary."""
        ...

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Mean actions ``[N, A]`` in [-1, 1] for raw observations ``[N, O]`` (no sampling, no
        normalizer update; an LSTM policy starts from a zero state)."""
        ...

    def deterministic_policy(self, n: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """A callable ``obs [n, O] -> mean actions [n, A]`` that carries its own recurrent state."""
        ...

    def request_stop(self, exc: BaseException) -> None:
        """Stop after the epoch in progress (its checkpoint is written), then raise ``exc``."""
        ...


def load_checkpoint_file(path: Path | str) -> dict[str, Any]:
    """A checkpoint's contents (on the CPU), or :class:`CheckpointError` naming what is wrong."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged or foreign files
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "amp" not in ckpt:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not an AMP checkpoint of this trainer (no 'model'/'amp' entries)"
        )
    return ckpt
