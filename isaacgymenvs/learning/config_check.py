"""Checking a resolved train config before anything starts: every problem in one error."""

from __future__ import annotations

import difflib
from numbers import Real

NUM = (int, float)

#: params.config keys this trainer reads, with their types.
TRAIN_KEYS: dict[str, type | tuple] = {
    "name": str, "full_experiment_name": str, "env_name": str, "ppo": bool, "multi_gpu": bool,
    "mixed_precision": bool, "normalize_input": bool, "normalize_value": bool, "value_bootstrap": bool,
    "num_actors": int, "reward_shaper": dict, "normalize_advantage": bool, "gamma": NUM, "tau": NUM,
    "learning_rate": NUM, "lr_schedule": str, "kl_threshold": NUM, "score_to_win": NUM, "max_epochs": int,
    "save_best_after": int, "save_frequency": int, "print_stats": bool, "grad_norm": NUM, "entropy_coef": NUM,
    "truncate_grads": bool, "e_clip": NUM, "horizon_length": int, "minibatch_size": int, "mini_epochs": int,
    "critic_coef": NUM, "clip_value": bool, "seq_len": int, "seq_length": int, "bounds_loss_coef": NUM,
    "sigma_scheme": str, "amp_obs_demo_buffer_size": int, "amp_replay_buffer_size": int,
    "amp_replay_keep_prob": NUM, "amp_batch_size": int, "amp_minibatch_size": int, "disc_coef": NUM,
    "disc_logit_reg": NUM, "disc_grad_penalty": NUM, "disc_reward_scale": NUM, "disc_weight_decay": NUM,
    "disc_reward_type": str, "normalize_amp_input": bool, "task_reward_w": NUM, "disc_reward_w": NUM,
    "eval_ref_size": int, "eval_agent_size": int, "player": dict, "weight_decay": NUM, "max_time_s": NUM,
    "max_unstable_share": NUM, "eval_every": int, "eval_every_steps": int, "eval_envs": int, "eval_seed": int,
    "max_env_steps": int,
}

CHOICES = {"lr_schedule": ("constant", "adaptive", "linear"), "sigma_scheme": ("fixed", "learned"),
           "disc_reward_type": ("bce", "lsgan")}


class ConfigError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        # one problem: one line; several: one line each, all at once
        super().__init__(f"invalid config: {problems[0]}" if len(problems) == 1 else
                         "invalid config:\n  - " + "\n  - ".join(problems))


def _type_ok(v, t) -> bool:
    if t is bool:
        return isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if t == NUM:
        return isinstance(v, Real) and not isinstance(v, bool)
    return isinstance(v, t)


def check_train_config(cfg: dict, num_envs: int, has_rnn: bool, prefix: str = "train.params.config") -> list[str]:
    """Return every problem found (empty when the config is usable)."""
    problems = []
    for k, v in cfg.items():
        if k not in TRAIN_KEYS:
            close = difflib.get_close_matches(k, TRAIN_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{prefix}.{k}: unknown key{hint}")
            continue
        t = TRAIN_KEYS[k]
        if not _type_ok(v, t):
            tname = "number" if t == NUM else t.__name__
            problems.append(f"{prefix}.{k}: expected a {tname}, got {v!r}")
        elif k in CHOICES and v not in CHOICES[k]:
            problems.append(f"{prefix}.{k}: must be one of {CHOICES[k]}, got {v!r}")
    if problems:
        return problems

    def need(k, ok, what):
        if k in cfg and not ok(cfg[k]):
            problems.append(f"{prefix}.{k}: {what}, got {cfg[k]!r}")

    need("gamma", lambda x: 0 < x <= 1, "must lie in (0, 1]")
    need("tau", lambda x: 0 <= x <= 1, "must lie in [0, 1]")
    need("learning_rate", lambda x: x > 0, "must be positive")
    need("e_clip", lambda x: x > 0, "must be positive")
    need("amp_replay_keep_prob", lambda x: 0 <= x <= 1, "must lie in [0, 1]")
    need("max_unstable_share", lambda x: 0 <= x <= 1, "must lie in [0, 1]")
    for k in ("eval_every", "eval_every_steps", "eval_envs", "max_env_steps", "save_frequency"):
        need(k, lambda x: x >= 0, "must not be negative (0 = off)")
    for k in ("horizon_length", "minibatch_size", "mini_epochs", "max_epochs", "amp_obs_demo_buffer_size",
              "amp_replay_buffer_size", "amp_batch_size", "amp_minibatch_size", "seq_len", "eval_ref_size", "eval_agent_size"):
        need(k, lambda x: x >= 1, "must be at least 1")
    for k in ("bounds_loss_coef", "disc_coef", "disc_logit_reg", "disc_grad_penalty", "disc_weight_decay", "critic_coef"):
        need(k, lambda x: x >= 0, "must not be negative")
    if problems:
        return problems
    horizon = cfg.get("horizon_length", 16)
    mb = cfg.get("minibatch_size", 1)
    batch = num_envs * horizon
    if batch % mb:
        problems.append(
            f"{prefix}.minibatch_size ({mb}) must divide num_envs x horizon_length ({num_envs} x {horizon} = {batch})"
        )
    seq = cfg.get("seq_len", cfg.get("seq_length", 4))
    if has_rnn and horizon % seq:
        problems.append(f"{prefix}.seq_len ({seq}) must divide horizon_length ({horizon}) with an LSTM policy")
    if has_rnn and mb % seq:
        problems.append(f"{prefix}.seq_len ({seq}) must divide minibatch_size ({mb}) with an LSTM policy")
    return problems
