"""The rollout as minibatches for PPO, and as a stream of rows for the discriminator.

* ``AMPDataset`` is rl_games' ``PPODataset`` with a fresh random permutation of the rollout
  before every pass over it (every mini-epoch), as IsaacGymEnvs' ``AMPDataset``: rl_games slices
  its minibatches in storage order (env-major), so without it every minibatch of every
  mini-epoch holds the same envs. An LSTM policy's rollout is permuted by whole sequences (with
  their initial recurrent states), so each sequence stays contiguous.
* ``DiscRows`` hands the discriminator ``amp_minibatch_size`` agent rows per gradient step from
  one shuffled pass over the valid rows of the rollout (transitions into a blown-up simulator
  state are left out), then the next pass: within an epoch every valid row reaches the
  discriminator once before any row reaches it twice, and all of them do when
  ``gradient steps * amp_minibatch_size >= rows``.
"""

from __future__ import annotations

import torch
from rl_games.common.datasets import PPODataset


class AMPDataset(PPODataset):
    def __getitem__(self, idx):
        if idx == 0:  # rl_games asks for minibatches 0..len-1 once per mini-epoch
            self._permute()
        return super().__getitem__(idx)

    def _permute(self) -> None:
        vd = self.values_dict
        if self.is_rnn:
            L = self.seq_length
            seqs = torch.randperm(self.batch_size // L, device=self.device)
            rows = (seqs.unsqueeze(1) * L + torch.arange(L, device=self.device)).reshape(-1)
            vd["rnn_states"] = [s[:, seqs] for s in vd["rnn_states"]]
        else:
            rows = torch.randperm(self.batch_size, device=self.device)
        for key, value in vd.items():
            if key in self.special_names or value is None:
                continue
            vd[key] = {k: v[rows] for k, v in value.items()} if isinstance(value, dict) else value[rows]


class DiscRows:
    """Rows ``[m, D]`` for each discriminator step: agent rows from shuffled passes over ``agent``
    (the valid rollout rows), replay and demonstration rows in step with them (each drawn at
    random once per epoch). ``m`` fixed: the index arithmetic stays on the device."""

    def __init__(self, agent: torch.Tensor, replay: torch.Tensor, demo: torch.Tensor, m: int):
        self.agent, self.replay, self.demo = agent, replay, demo
        self.m = m
        self.step = 0
        self._offsets = torch.arange(m, device=agent.device)

    def __len__(self) -> int:
        return self.agent.shape[0]

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """``(agent, replay, demo)`` for the next gradient step; None when no agent row is valid."""
        n = self.agent.shape[0]
        if n == 0:
            return None
        k = self.step * self.m
        self.step += 1
        i = self._offsets + k
        return self.agent[i % n], self.replay[i % self.replay.shape[0]], self.demo[i % self.demo.shape[0]]


def shuffled_valid_rows(x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The rows of ``x [n, D]`` where ``valid [n]`` is true, in random order (reads their count on
    the host once)."""
    key = torch.rand(valid.shape[0], device=valid.device, generator=generator) + (~valid).to(torch.float32) * 2.0
    order = torch.argsort(key)
    return x[order[: int(valid.sum())]]
