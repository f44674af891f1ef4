"""rl_games 1.6.5 behind one door: the only package that imports rl_games.

Everything the rest of the trainer needs from rl_games is here, behind names of our own:

* :func:`build_learner` — the AMP learner (:class:`.agent.AMPAgent`, a subclass of rl_games' PPO
  agent, implementing :class:`isaacgymenvs.learning.learner.Learner`) from our config, network
  description and vectorized task;
* :func:`build_policy_model` — the actor-critic network a checkpoint was trained with, rebuilt from
  its saved network description (export checks its own graph against it);
* :func:`actor_layers`, :func:`actor_rnn` and :func:`obs_normalizer` — the actor's linear layers,
  its recurrent layer and the observation normalizer read out of a checkpoint's model state
  (rl_games' state-dict key names stay here).

Imports: rl_games, torch, and ``isaacgymenvs.learning`` (never tasks, sim or motion).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import Any

import torch


def _import_rl_games_without_compiling_its_test_network() -> None:
    """rl_games 1.6.5 imports its example networks (``rl_games.envs.test_network``) on the way to its
    PPO agent, and one of them is decorated with ``@torch.compile`` at class definition, which
    imports ``torch._dynamo`` and ``torch._inductor``: 5 s of CPU in every process that trains
    (8.3 s -> 3.4 s to import the agent, measured on the 2-core VM), for a network nothing here
    builds. That one import runs with ``torch.compile`` as the identity; nothing else changes."""
    import sys

    if "rl_games.envs" in sys.modules:
        return
    compile_ = torch.compile

    def identity(fn=None, *args, **kwargs):
        return fn if fn is not None else (lambda f: f)

    torch.compile = identity  # type: ignore[assignment]
    try:
        import rl_games.envs  # noqa: F401
    finally:
        torch.compile = compile_


_import_rl_games_without_compiling_its_test_network()

#: rl_games' observation normalizer inside the model, and its epsilon (``RunningMeanStd``).
_OBS_NORM = "running_mean_std"
OBS_NORM_EPS = 1e-5


def network_params(network: dict) -> dict:
    """Our network description (``train.params.network`` without the discriminator) as rl_games'."""
    out = {k: v for k, v in network.items() if k not in ("disc", "name") and v is not None}
    out["name"] = "actor_critic"
    # a state-independent log std (the sigma scheme decides whether it trains)
    space = dict(out.get("space") or {})
    space["continuous"] = dict(space.get("continuous") or {}, fixed_sigma=True)
    out["space"] = space
    return out


def build_learner(
    config: dict,
    network: dict,
    *,
    seed: int,
    run_name: str,
    runs_dir: str,
    device: str,
    vec_env: Any,
    observers: list[Callable] | None = None,
    verbose: bool = False,
):
    """The AMP learner for ``vec_env`` (an :class:`isaacgymenvs.learning.vecenv.AMPVecEnv`).

    ``config`` is ``train.params.config`` (our keys: ``seq_len`` is rl_games' ``seq_length``);
    the run's checkpoints go to ``runs_dir/run_name/nn``. ``verbose``: let rl_games print its set-up."""
    from rl_games.common.algo_observer import DefaultAlgoObserver
    from rl_games.common.tr_helpers import DefaultRewardsShaper

    from isaacgymenvs.learning.rl_games_adapter.agent import AMPAgent

    cfg = dict(config)
    seq = cfg.pop("seq_len", None)
    if seq is not None:
        cfg["seq_length"] = seq  # rl_games >= 1.6.1 reads seq_length
    cfg.pop("player", None)
    cfg["reward_shaper"] = DefaultRewardsShaper(**cfg.get("reward_shaper", {}))
    # env_name: rl_games requires one; unused, since the vec_env is handed to it
    cfg.update(
        env_name="rlgpu",
        full_experiment_name=run_name,
        train_dir=runs_dir,
        device=device,
        env_info=vec_env.get_env_info(),
        vec_env=vec_env,
        features={"observer": DefaultAlgoObserver()},
    )
    params = {
        "seed": seed,
        "algo": {"name": "a2c_continuous"},
        "model": {"name": "continuous_a2c_logstd"},
        "network": network_params(network),
        "config": cfg,
    }
    # rl_games prints its set-up (experiment name, devices, "build mlp", "RunningMeanStd"): verbose only
    with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
        learner = AMPAgent("run", params)
    learner.observers = observers if observers is not None else []
    return learner


def build_policy_model(
    network: dict, num_obs: int, num_actions: int, normalize_input: bool = True, normalize_value: bool = True
) -> torch.nn.Module:
    """The actor-critic network of a checkpoint (no weights loaded), in eval mode."""
    from rl_games.algos_torch.model_builder import ModelBuilder

    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # rl_games prints while building
        builder = ModelBuilder().load({"model": {"name": "continuous_a2c_logstd"}, "network": network_params(network)})
        net = builder.build(
            {
                "actions_num": num_actions,
                "input_shape": (num_obs,),
                "num_seqs": 1,
                "value_size": 1,
                "normalize_value": normalize_value,
                "normalize_input": normalize_input,
            }
        )
    return net.eval()


def actor_layers(
    state: dict, num_hidden: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor] | None], tuple[torch.Tensor, torch.Tensor]]:
    """The actor MLP's ``(weight, bias)`` per hidden layer (None where the state lacks it) and the
    mean head's, from a checkpoint's model state."""
    hidden = []
    for i in range(num_hidden):  # rl_games' Sequential interleaves Linear and activation modules
        w, b = state.get(f"a2c_network.actor_mlp.{2 * i}.weight"), state.get(f"a2c_network.actor_mlp.{2 * i}.bias")
        hidden.append(None if w is None or b is None else (w, b))
    return hidden, (state["a2c_network.mu.weight"], state["a2c_network.mu.bias"])


def actor_rnn(state: dict, network: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None] | None:
    """The actor's recurrent layer of a checkpoint's model state, or None for an MLP policy:
    ``(rnn, layer_norm)``, each a state dict under torch's own names (``torch.nn.LSTM``'s
    ``weight_ih_l0`` ..., ``torch.nn.LayerNorm``'s ``weight``/``bias``; ``layer_norm`` None without
    ``network.rnn.layer_norm``). A ``separate`` network keeps the actor's as ``a_rnn`` (the critic
    has its own, ``c_rnn``), a shared one as ``rnn``."""
    if not network.get("rnn"):
        return None
    prefix = "a2c_network.a_" if network.get("separate", False) else "a2c_network."
    rnn = {k.removeprefix(f"{prefix}rnn.rnn."): v for k, v in state.items() if k.startswith(f"{prefix}rnn.rnn.")}
    norm = {k.removeprefix(f"{prefix}layer_norm."): v for k, v in state.items() if k.startswith(f"{prefix}layer_norm.")}
    return rnn, (norm or None)


def obs_normalizer(state: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` float32 of the observation normalizer in a checkpoint's model state
    (std = sqrt(var + eps), as the network applies it), or None when trained without one."""
    if f"{_OBS_NORM}.running_mean" not in state:
        return None
    mean = state[f"{_OBS_NORM}.running_mean"].float()
    return mean, torch.sqrt(state[f"{_OBS_NORM}.running_var"].float() + OBS_NORM_EPS)
