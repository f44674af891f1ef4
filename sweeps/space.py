"""Sweep definitions (cfg/sweep/<name>.yaml): loading, expanding, and checking before any trial starts."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from isaacgymenvs.learning.config_check import ConfigError, check_config, check_train_config
from isaacgymenvs.learning.learner import HYPERPARAMETERS

REPO = Path(__file__).resolve().parent.parent
SWEEP_DIR = REPO / "cfg" / "sweep"
TOP_KEYS = {
    "name",
    "experiment",
    "metric",
    "mode",
    "num_samples",
    "max_concurrent_trials",
    "time_budget_s",
    "report_every",
    "max_failures",
    "search",
    "scheduler",
    "asha",
    "pbt",
    "pbt_mutations",
    "resources",
    "overrides",
    "space",
    "points",
    "fail",
    "tracking_uri",
    "storage_path",
    "optuna",
    "seeds",
    "budget",
    "report_every_steps",
    "sanity",
}
DIST_KINDS = ("grid", "choice", "uniform", "loguniform")
#: Keys that fix the shape of the rollout, the network or the policy: they cannot change in a running
#: trial, so PBT may not mutate them (the learner cannot take them: ``learner.HYPERPARAMETERS``).
STRUCTURAL = ("horizon_length", "seq_len", "seq_length", "sigma", "num_envs", "minibatch_size", "network")
#: What PBT may mutate, mapped to the learner's name of it (``Learner.set_hyperparameter``).
MUTABLE = {f"train.params.config.{name}": name for name in HYPERPARAMETERS}
#: ``asha.time_attr`` / ``pbt.time_attr``: what rungs, grace periods and perturbation intervals count.
TIME_ATTRS = {"env_steps": "timesteps_total", "wall_s": "time_total_s", "reports": "training_iteration"}
#: A trial whose latest value of one of these is beyond the bound (in absolute value) has diverged.
SANITY = {"loss/critic": 1e6, "loss/actor": 1e6, "disc/loss": 1e6, "eval/motion_nn_dist": 1e3}
DEFAULT_SEED = 42
DEFAULTS = {
    "metric": "eval/score",
    "mode": "max",
    "num_samples": 1,
    "max_concurrent_trials": 2,
    "time_budget_s": 0,
    "report_every": 1,
    "max_failures": 1,
    "search": "grid",
    "scheduler": "asha",
    "asha": {},
    "pbt": {},
    "pbt_mutations": {},
    "resources": {"cpu": 1},
    "overrides": [],
    "space": {},
    "points": [],
    "fail": [],
    "seeds": None,
    "budget": {},
    "report_every_steps": 0,
    "sanity": {},
}


def seeds_of(spec: dict) -> list[int]:
    """The seeds every configuration runs with: ``seeds: N`` (42, 43, ...) or an explicit list."""
    s = spec.get("seeds")
    if s is None:
        return [DEFAULT_SEED]
    if isinstance(s, int) and not isinstance(s, bool):
        return [DEFAULT_SEED + i for i in range(s)]
    return [int(x) for x in s]


#: Short names of the dimensions in a trial's name (``h32-blc10-learned-s2``); other keys: the
#: initials of their last part (``disc_reward_scale`` -> ``drs``). ``sigma`` is named by its value.
LABEL_NAMES = {
    "horizon_length": "h",
    "bounds_loss_coef": "blc",
    "seq_len": "sl",
    "learning_rate": "lr",
    "entropy_coef": "ent",
    "e_clip": "clip",
    "disc_grad_penalty": "gp",
    "minibatch_size": "mb",
    "num_envs": "n",
    "seed": "s",
}


def trial_label(params: dict) -> str:
    """A trial's name from its values, in the space's order, the seed last: ``h32-blc10-learned-s2``."""
    parts = []
    for k, v in sorted(params.items(), key=lambda kv: kv[0] == "seed"):
        last = k.rsplit(".", 1)[-1]
        value = f"{v:g}" if isinstance(v, float) else "x".join(map(str, v)) if isinstance(v, list) else str(v)
        name = "" if last == "sigma" else LABEL_NAMES.get(last) or "".join(w[0] for w in last.split("_") if w)
        parts.append(name + value)
    return "-".join(parts)


def config_key(params: dict) -> tuple:
    """A configuration: a trial's point in the search space without its seed."""
    return tuple(sorted((k, str(v)) for k, v in params.items() if k != "seed"))


def budget_overrides(spec: dict) -> list[str]:
    """The overrides that make every trial stop at the sweep's budget and evaluate on its schedule."""
    out = []
    b = spec.get("budget") or {}
    if b.get("env_steps"):
        out += [f"train.params.config.max_env_steps={int(b['env_steps'])}", "max_iterations=100000000"]
    if b.get("wall_s"):
        out.append(f"max_time_s={float(b['wall_s'])}")
    if spec.get("report_every_steps"):
        out.append(f"train.params.config.eval_every_steps={int(spec['report_every_steps'])}")
    elif str(spec.get("metric", "")).startswith("eval/"):
        out.append(f"train.params.config.eval_every={max(1, int(spec.get('report_every', 1)))}")
    return out


def load(name_or_path: str) -> dict:
    p = Path(name_or_path)
    if not p.suffix:
        p = SWEEP_DIR / f"{name_or_path}.yaml"
    if not p.exists():
        known = sorted(x.stem for x in SWEEP_DIR.glob("*.yaml"))
        raise ConfigError([f"sweep {name_or_path!r}: no file {p} (known: {', '.join(known)})"])
    try:
        spec = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:  # one line: where and what (PyYAML's message spans several)
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(
            [f"{p}:{where} is not valid YAML ({getattr(e, 'problem', None) or type(e).__name__})"]
        ) from None
    except OSError as e:
        raise ConfigError([f"{p}: cannot be read ({e.strerror})"]) from None
    if not isinstance(spec, dict):
        raise ConfigError(
            [f"{p}: a sweep file is a mapping of keys (name, space, overrides, ...), got a {type(spec).__name__}"]
        )
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
    """The Hydra config for these train.py overrides (unresolved ``DictConfig``)."""
    from isaacgymenvs import train as train_mod  # noqa: F401 (registers the config's resolvers)
    from isaacgymenvs.utils.hydra_config import compose as compose_config

    return compose_config(overrides)


def _key_exists(cfg, key: str) -> bool:
    from omegaconf import OmegaConf

    node, parts = cfg, key.split(".")
    for p in parts[:-1]:
        node = OmegaConf.select(node, p) if node is not None else None
        if node is None or not OmegaConf.is_dict(node):
            return False
    return node is not None and parts[-1] in node


def _whole(v, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _check_counts(spec: dict) -> list[str]:
    """Types and ranges of the counting keys, the seeds, the budget and the schedulers' time_attr."""
    problems = []
    for k in ("num_samples", "max_concurrent_trials", "report_every"):
        if not _whole(spec.get(k), 1):
            problems.append(f"{k}: must be a whole number >= 1, got {spec.get(k)!r}")
    for k in ("max_failures", "report_every_steps"):
        if not _whole(spec.get(k), 0):
            problems.append(f"{k}: must be a whole number >= 0, got {spec.get(k)!r}")
    tb = spec.get("time_budget_s")
    if not isinstance(tb, (int, float)) or isinstance(tb, bool) or tb < 0:
        problems.append(f"time_budget_s: must be a number >= 0 (0: none), got {tb!r}")
    s = spec.get("seeds")
    if s is not None and not (
        _whole(s, 1) or (isinstance(s, list) and s and all(_whole(x, 0) for x in s) and len(set(s)) == len(s))
    ):
        problems.append(f"seeds: must be a count >= 1 or a list of distinct whole numbers >= 0, got {s!r}")
    elif len(seeds_of(spec)) > 1 and spec["search"] == "optuna":
        problems.append(
            "seeds: several seeds per configuration need search: grid (Optuna would treat the seed as a hyperparameter)"
        )
    random_dims = [
        k for k, d in (spec.get("space") or {}).items() if isinstance(d, dict) and d and next(iter(d)) != "grid"
    ]
    if (
        spec["search"] == "grid"
        and _whole(spec.get("num_samples"), 2)
        and not random_dims
        and not spec.get("pbt_mutations")
    ):
        problems.append(
            f"num_samples: {spec['num_samples']} repeats of the same points and grid would be the same runs "
            f"(one seed); use seeds: {spec['num_samples']}"
        )
    b = spec.get("budget") or {}
    if not isinstance(b, dict) or set(b) - {"env_steps", "wall_s"}:
        problems.append(f"budget: must be {{env_steps: N}} and/or {{wall_s: S}}, got {b!r}")
    else:
        for k, v in b.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                problems.append(f"budget.{k}: must be a positive number, got {v!r}")
    for sched in ("asha", "pbt"):
        ta = (spec.get(sched) or {}).get("time_attr", "reports")
        if ta not in TIME_ATTRS:
            problems.append(f"{sched}.time_attr: must be one of {sorted(TIME_ATTRS)}, got {ta!r}")
    for k, v in (spec.get("sanity") or {}).items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            problems.append(f"sanity.{k}: must be a positive bound, got {v!r}")
    return problems


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
            problems.append(
                f"space.{k}: {kind} needs {'[low, high]' if kind in ('uniform', 'loguniform') else 'a non-empty list'}, got {v!r}"
            )
        elif kind == "loguniform" and min(v) <= 0:
            problems.append(f"space.{k}: loguniform bounds must be positive, got {v!r}")
        if spec["search"] == "grid" and kind in ("uniform", "loguniform") and spec["num_samples"] < 1:
            problems.append(f"space.{k}: {kind} needs num_samples >= 1")
    if spec["search"] == "optuna" and any(
        next(iter(d)) == "grid" for d in (spec.get("space") or {}).values() if isinstance(d, dict) and d
    ):
        problems.append("search=optuna: use choice instead of grid in the space")
    for k in spec.get("pbt_mutations") or {}:
        if spec["scheduler"] != "pbt":
            problems.append("pbt_mutations: only with scheduler: pbt")
            break
        if k not in MUTABLE:
            why = (
                " (structural: it fixes the rollout/network shape; make it a grid dimension)"
                if any(s in k for s in STRUCTURAL)
                else ""
            )
            problems.append(f"pbt_mutations.{k}: PBT can only mutate {sorted(MUTABLE)}{why}")
    for k, v in (spec.get("resources") or {}).items():
        if not isinstance(v, (int, float)) or v < 0:
            problems.append(f"resources.{k}: must be a non-negative number, got {v!r}")
    problems += _check_counts(spec)
    if problems:
        raise ConfigError(problems)

    combos = combinations(spec)
    try:
        base = compose(spec["overrides"] + budget_overrides(spec))
    except Exception as e:
        raise ConfigError([f"overrides: {type(e).__name__}: {e}"]) from None
    unknown = sorted({k for c in combos for k in c if not _key_exists(base, k)})
    problems += [
        f"space.{k}: unknown config key (not in cfg/; a Hydra override path such as "
        f"train.params.config.bounds_loss_coef)"
        for k in unknown
    ]
    if problems:
        raise ConfigError(problems)
    for i, combo in enumerate(combos):
        label = f"combination {i} {combo}"
        try:
            cfg = compose(spec["overrides"] + budget_overrides(spec) + overrides_for(combo))
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
        if num_envs < 1:  # the batch checks that follow would only repeat it
            problems.append(f"{label}: num_envs: must be at least 1, got {num_envs}")
            continue
        for p in check_config(c)[0] + check_train_config(train_cfg, num_envs, has_rnn):
            problems.append(f"{label}: {p}")
    if problems:
        raise ConfigError(problems)
    return combos
