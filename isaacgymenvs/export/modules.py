"""The exported torch modules: the MLP policy and the LSTM policy, each on normalized observations
(``policy.pt``) and with the observation normalizer in front (``policy.onnx``).

rl_games' actor-critic network (``A2CBuilder.Network.forward``, rl_games 1.6.5) runs its actor on
normalized observations ``x`` as ``mu(mlp(x))``; with ``network.rnn`` set, as:

1. ``y = mlp(x)`` (``before_mlp`` false, the default), then ``y = cat(y, x)`` if ``concat_input``;
   with ``before_mlp`` true, ``y = x``;
2. ``y, (h, c) = lstm(y, (h, c))``, one time step;
3. ``y = layer_norm(y)`` if ``layer_norm``; ``y = cat(y, x)`` if ``concat_output``;
4. ``y = mlp(y)`` if ``before_mlp``;
5. actions (the policy mean) ``= mu(y)``.

The LSTM state starts at zeros and is set back to zeros when an episode ends (rl_games'
``zero_rnn_on_done``; the evaluation starts every episode from zeros): an exported policy is run
the same way. A ``separate`` critic has an LSTM of its own, which acting never needs.
"""

# no `from __future__ import annotations`: TorchScript reads the annotations (Final) as types, not strings
from typing import Final

import torch
from torch import nn

#: normalized observations are clipped to +-OBS_CLIP (rl_games' RunningMeanStd)
OBS_CLIP = 5.0


class ExportError(ValueError):
    pass


ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "selu": nn.SELU,
    "None": nn.Identity,
    "none": nn.Identity,
}


class Actor(nn.Module):
    """The policy mean on normalized observations: the actor MLP and its linear mean head."""

    def __init__(self, layers: list[nn.Linear], mu: nn.Linear, activation: str):
        super().__init__()
        act = ACTIVATIONS.get(str(activation))
        if act is None:
            raise ExportError(f"activation {activation!r} is not supported (known: {sorted(ACTIVATIONS)})")
        mods: list[nn.Module] = []
        for lin in layers:
            mods += [lin, act()]
        self.mlp = nn.Sequential(*mods)
        self.mu = mu

    def forward(self, obs_norm: torch.Tensor) -> torch.Tensor:
        return self.mu(self.mlp(obs_norm))


class NormalizedActor(nn.Module):
    """Raw observations in: ``clip((obs - mean) / std, -5, 5)`` then the actor."""

    def __init__(self, actor: Actor, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.actor = actor
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(torch.clamp((obs - self.mean) / self.std, -OBS_CLIP, OBS_CLIP))


class RecurrentActor(nn.Module):
    """The policy mean on **normalized** observations, one step, state explicit:
    ``forward(obs_norm [B, O], h [L, B, H], c [L, B, H]) -> (actions [B, A], h [L, B, H], c [L, B, H])``
    (``L`` LSTM layers, ``H`` units). Called from TorchScript or Python, a wrong shape is a
    ``ValueError`` naming the expected one."""

    num_obs: Final[int]
    num_layers: Final[int]
    hidden_size: Final[int]
    before_mlp: Final[bool]
    concat_input: Final[bool]
    concat_output: Final[bool]

    def __init__(
        self,
        actor: Actor,
        lstm: nn.LSTM,
        layer_norm: nn.Module,
        num_obs: int,
        before_mlp: bool,
        concat_input: bool,
        concat_output: bool,
    ):
        super().__init__()
        self.mlp, self.mu = actor.mlp, actor.mu
        self.lstm, self.layer_norm = lstm, layer_norm
        self.num_obs, self.num_layers, self.hidden_size = int(num_obs), lstm.num_layers, lstm.hidden_size
        self.before_mlp, self.concat_input, self.concat_output = (
            bool(before_mlp),
            bool(concat_input),
            bool(concat_output),
        )

    def forward(
        self, obs_norm: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not torch.jit.is_tracing():  # the ONNX graph gets onnxruntime's own shape checks instead
            self.check_shapes(obs_norm, h, c)
        y = obs_norm
        if not self.before_mlp:
            y = self.mlp(y)
            if self.concat_input:
                y = torch.cat([y, obs_norm], dim=1)
        out, (h1, c1) = self.lstm(y.unsqueeze(0), (h, c))  # a sequence of one step
        y = self.layer_norm(out.squeeze(0))
        if self.concat_output:
            y = torch.cat([y, obs_norm], dim=1)
        if self.before_mlp:
            y = self.mlp(y)
        return self.mu(y), h1, c1

    def check_shapes(self, obs: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> None:
        if obs.dim() != 2 or obs.size(1) != self.num_obs:
            raise ValueError(f"obs must be [batch, {self.num_obs}], got {list(obs.shape)}")
        want = [self.num_layers, obs.size(0), self.hidden_size]
        if list(h.shape) != want or list(c.shape) != want:
            raise ValueError(
                f"h and c must be [layers, batch, units] = {want} (zeros at an episode's start), "
                f"got h {list(h.shape)} and c {list(c.shape)}"
            )


class NormalizedRecurrentActor(nn.Module):
    """Raw observations in: ``clip((obs - mean) / std, -5, 5)`` then the recurrent actor;
    ``forward(obs [B, O], h0 [L, B, H], c0 [L, B, H]) -> (actions [B, A], h1, c1)``."""

    def __init__(self, actor: RecurrentActor, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.actor = actor
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(
        self, obs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.actor(torch.clamp((obs - self.mean) / self.std, -OBS_CLIP, OBS_CLIP), h0, c0)
