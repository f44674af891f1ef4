"""A running mean/std normalizer of observations, updated from batches (Chan et al.'s parallel rule).

The same numbers and state-dict keys (``running_mean``, ``running_var``, ``count``, float64) as
rl_games' ``RunningMeanStd``, so checkpoints move between the two: ``y = clamp((x - mean) /
sqrt(var + eps), -5, 5)``, the statistics start at mean 0, var 1, count 1 and are updated in
training mode only. Pure torch, no host synchronization (it runs inside captured CUDA graphs).
"""

from __future__ import annotations

import torch
from torch import nn

CLIP = 5.0  # normalized values beyond +-5 std are clipped (rl_games, IsaacGymEnvs)


class RunningMeanStd(nn.Module):
    """Normalizes ``[B, D]`` inputs by running statistics over everything seen in training mode."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, epsilon: float = 1e-5):
        super().__init__()
        self.epsilon = float(epsilon)
        self.register_buffer("running_mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones(size, dtype=torch.float64))
        self.register_buffer("count", torch.ones((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``[B, D]`` into the statistics (population variance of the batch)."""
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = batch_mean - self.running_mean
        total = self.count + n
        m2 = self.running_var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.running_mean.copy_(self.running_mean + delta * n / total)
        self.running_var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.update(x)
        y = (x - self.running_mean.float()) / torch.sqrt(self.running_var.float() + self.epsilon)
        return y.clamp(-CLIP, CLIP)
