"""The AMP discriminator: an MLP on normalized AMP observations with a linear logit head."""

from __future__ import annotations

import torch
from torch import nn

from isaacgymenvs.learning.normalizer import RunningMeanStd


class Discriminator(nn.Module):
    """``D(s_t, s_{t-1}, ...)``: logits ``[B, 1]`` from AMP observations ``[B, amp_obs]``.

    Inputs are normalized by a running mean/std (updated only when ``update_stats`` is true, on
    raw observations, never on already-normalized ones). Hidden layers use ReLU; the logit layer
    starts as U(-1, 1) weights and zero bias, as in IsaacGymEnvs.
    """

    def __init__(self, num_amp_obs: int, units=(1024, 512)):
        super().__init__()
        self.amp_norm = RunningMeanStd(num_amp_obs)
        layers, d = [], num_amp_obs
        for u in units:
            lin = nn.Linear(d, u)
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.ReLU()]
            d = u
        self.trunk = nn.Sequential(*layers)
        self.logit = nn.Linear(d, 1)
        nn.init.uniform_(self.logit.weight, -1.0, 1.0)
        nn.init.zeros_(self.logit.bias)

    def normalize(self, amp_obs: torch.Tensor, update_stats: bool = False) -> torch.Tensor:
        self.amp_norm.train(update_stats)
        return self.amp_norm(amp_obs)

    def logits_of_normalized(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.trunk(x))

    def forward(self, amp_obs: torch.Tensor) -> torch.Tensor:
        return self.logits_of_normalized(self.normalize(amp_obs))

    def hidden_weights(self) -> list[torch.Tensor]:
        return [m.weight for m in self.trunk if isinstance(m, nn.Linear)]

    def all_weights(self) -> list[torch.Tensor]:
        return self.hidden_weights() + [self.logit.weight]
