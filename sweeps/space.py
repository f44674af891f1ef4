"""Sweep definitions (cfg/sweep/<name>.yaml): loading, expanding, and checking before any trial starts."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from isaacgymenvs.learning.config_check import ConfigError, check_train_config

REPO = Path(__file__).resolve().parent.parent
SWEEP_DIR = REPO / "cfg" / "sweep"
TOP_KEYS = {"name", "experiment", "metric", "mode", "num_samples", "max_concurrent_trials", "time_budget_s",
            "report_every", "max_failures", "search", "scheduler", "asha", "pbt", "pbt_mutations", "resources",
            "overrides", "space", "points", "fail", "tracking_uri", "storage_path", "optuna"}
DIST_KINDS = ("grid", "choice", "uniform", "loguniform")
#: Keys that fix the shape of the rollout, the network or the policy: they cannot change in a running
#: trial, so PBT may not mutate them (rl_games set_param cannot either).
STRUCTURAL = ("horizon_length", "seq_len", "seq_length", "sigma", "num_envs", "minibatch_size", "network")
#: What PBT may mutate, mapped to the AMPAgent attribute that takes the new value.
MUTABLE = {"train.params.config.bounds_loss_coef": "bounds_loss_coef", "train.params.config.learning_rate": "learning_rate",
           "train.params.config.entropy_coef": "entropy_coef", "train.params.config.e_clip": "e_clip"}
DEFAULTS = {"metric": "eval/motion_nn_dist", "mode": "min", "num_samples": 1, "max_concurrent_trials": 2,
            "time_budget_s": 0, "report_every": 1, "max_failures": 1, "search": "grid", "scheduler": "asha",
            "asha": {}, "pbt": {}, "pbt_mutations": {}, "resources": {"cpu": 1}, "overrides": [], "space": {},
            "points": [], "fail": []}


def load(name_or_path: str) -> dict:
    p = Path(name_or_path)
    if not p.suffix:
        p = SWEEP_DIR / f"{name_or_path}.yaml"
    if not p.exists():
        known = sorted(x.stem for x in SWEEP_DIR.glob("*.yaml"))
        raise ConfigError([f"sweep {name_or_path!r}: no file {p} (known: {', '.join(known)})"])
    spec = yaml.safe_load(p.read_text()) or {}
    spec.setdefault("name", p.stem)
    return normalize(spec)


def normalize(spec: dict) -> dict:
    out = {k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in DEFAULTS.items()}
    out.update(spec)
    out.setdefault("experiment", f"amp_sweep_{out['name']}")
    return out


def _fmt(v) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (list, dict)):
        return yaml.safe_dump(v, default_flow_style=True).strip()
    return str(v)


def overrides_for(point: dict) -> list[str]:
    return [f"{k}={_fmt(v)}" for k, v in point.items()]


def combinations(spec: dict) -> list[dict]:
    """Every combination the sweep can run that must be checked: the points, the full grid (with
    choice values enumerated, and uniform/loguniform bounds as their two ends)."""
    space = spec.get("space") or {}
    keys, values = [], []
    for k, d in space.items():
        if not isinstance(d, dict) or len(d) != 1 or next(iter(d)) not in DIST_KINDS:
            continue  # reported by check_spec
        kind, v = next(iter(d.items()))
        keys.append(k)
        values.append(list(v))
    grid = [dict(zip(keys, vs)) for vs in itertools.product(*values)] if keys else []
    points = [dict(p) for p in spec.get("points") or []]
    if points and grid:
        return [{**p, **g} for p in points for g in grid]
    return points or grid or [{}]


def compose(overrides: list[str]):
    """The resolved Hydra config for these train.py overrides."""
    from hydra import compose as _compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from isaacgymenvs import train as train_mod

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        return _compose("config", overrides=list(overrides))


def _key_exists(cfg, key: str) -> bool:
    from omegaconf import OmegaConf

    node, parts = cfg, key.split(".")
    for p in parts[:-1]:
        node = OmegaConf.select(node, p) if node is not None else None
        if node is None or not OmegaConf.is_dict(node):
            return False
    return node is not None and parts[-1] in node


def check_spec(spec: dict) -> list[dict]:
    """Check the sweep before any trial starts. Returns the combinations; raises ConfigError listing
    every problem (every bad combination) at once."""
    from omegaconf import OmegaConf

    problems = [f"{k}: unknown sweep key" for k in spec if k not in TOP_KEYS]
    if spec["mode"] not in ("min", "max"):
        problems.append(f"mode: must be min or max, got {spec['mode']!r}")
    if spec["search"] not in ("grid", "optuna"):
        problems.append(f"search: must be grid or optuna, got {spec['search']!r}")
    if spec["scheduler"] not in ("asha", "pbt", "fifo"):
        problems.append(f"scheduler: must be asha, pbt or fifo, got {spec['scheduler']!r}")
    for k, d in (spec.get("space") or {}).items():
        if not isinstance(d, dict) or len(d) != 1 or next(iter(d)) not in DIST_KINDS:
            problems.append(f"space.{k}: must be one of {{grid|choice|uniform|loguniform: [...]}}, got {d!r}")
            continue
        kind, v = next(iter(d.items()))
        if not isinstance(v, list) or not v or (kind in ("uniform", "loguniform") and len(v) != 2):
            problems.append(f"space.{k}: {kind} needs {'[low, high]' if kind in ('uniform', 'loguniform') else 'a non-empty list'}, got {v!r}")
        elif kind == "loguniform" and min(v) <= 0:
            problems.append(f"space.{k}: loguniform bounds must be positive, got {v!r}")
        if spec["search"] == "grid" and kind in ("uniform", "loguniform") and spec["num_samples"] < 1:
            problems.append(f"space.{k}: {kind} needs num_samples >= 1")
    if spec["search"] == "optuna" and any(next(iter(d)) == "grid" for d in (spec.get("space") or {}).values() if isinstance(d, dict) and d):
        problems.append("search=optuna: use choice instead of grid in the space")
    for k in spec.get("pbt_mutations") or {}:
        if spec["scheduler"] != "pbt":
            problems.append("pbt_mutations: only with scheduler: pbt")
            break
        if k not in MUTABLE:
            why = " (structural: it fixes the rollout/network shape; make it a grid dimension)" if any(s in k for s in STRUCTURAL) else ""
            problems.append(f"pbt_mutations.{k}: PBT can only mutate {sorted(MUTABLE)}{why}")
    for k, v in (spec.get("resources") or {}).items():
        if not isinstance(v, (int, float)) or v < 0:
            problems.append(f"resources.{k}: must be a non-negative number, got {v!r}")
    if problems:
        raise ConfigError(problems)

    combos = combinations(spec)
    try:
        base = compose(spec["overrides"])
    except Exception as e:
        raise ConfigError([f"overrides: {type(e).__name__}: {e}"]) from None
    unknown = sorted({k for c in combos for k in c if not _key_exists(base, k)})
    problems += [f"space.{k}: unknown config key (not in cfg/; a Hydra override path such as "
                 f"train.params.config.bounds_loss_coef)" for k in unknown]
    if problems:
        raise ConfigError(problems)
    for i, combo in enumerate(combos):
        label = f"combination {i} {combo}"
        try:
            cfg = compose(spec["overrides"] + overrides_for(combo))
            c = OmegaConf.to_container(cfg, resolve=True)
        except Exception as e:
            problems.append(f"{label}: {type(e).__name__}: {str(e).splitlines()[0]}")
            continue
        train_cfg = dict(c["train"]["params"]["config"])
        has_rnn = bool(c["train"]["params"]["network"].get("rnn"))
        num_envs = int(c["task"]["env"]["numEnvs"])
        sigma = c.get("sigma", "")
        if sigma not in ("", None, "fixed", "learned"):
            problems.append(f"{label}: sigma must be fixed or learned in a sweep, got {sigma!r}")
        for p in check_train_config(train_cfg, num_envs, has_rnn):
            problems.append(f"{label}: {p}")
    if problems:
        raise ConfigError(problems)
    return combos

