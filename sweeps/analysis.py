"""What a finished sweep says: per configuration (mean and spread over its seeds), what each swept
dimension did (difference of means, with a bootstrap confidence interval), Optuna's parameter
importances, and the plots of both. Pure functions of the trial rows; no Ray, no MLflow.

A trial row is ``{"trial", "params" (the seed included), "metric", "status", ...}``; only trials
whose status is ``OK`` or ``STOPPED`` (stopped early by the scheduler) and whose metric is finite
count. A configuration is a point of the search space without its seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sweeps.space import config_key

#: Bootstrap resamples and the interval's level.
BOOTSTRAP = 2000
LEVEL = 0.95
RANKED = ("OK", "STOPPED")


def _ranked(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] in RANKED and math.isfinite(r["metric"])]


def configurations(rows: list[dict], mode: str) -> list[dict]:
    """One entry per configuration, best mean first: params, seeds, mean, std (over seeds; 0 for
    one), n, and the trial of its best seed."""
    groups: dict[tuple, list[dict]] = {}
    for r in _ranked(rows):
        groups.setdefault(config_key(r["params"]), []).append(r)
    out = []
    for key, rs in groups.items():
        vals = np.array([r["metric"] for r in rs])
        best = (max if mode == "max" else min)(rs, key=lambda r: r["metric"])
        out.append(
            {
                "params": {k: v for k, v in rs[0]["params"].items() if k != "seed"},
                "seeds": [r["params"].get("seed") for r in rs],
                "n": len(rs),
                "mean": float(vals.mean()),
                "std": float(vals.std(ddof=1)) if len(rs) > 1 else 0.0,
                "values": vals.tolist(),
                "best_trial": best["trial"],
                "best_value": float(best["metric"]),
                "best_mlflow_run_id": best.get("mlflow_run_id", ""),
                "key": key,
            }
        )
    out.sort(key=lambda c: c["mean"], reverse=(mode == "max"))
    return out


def _bootstrap_diff(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of mean(b) - mean(a), resampling each group with replacement."""
    ia = rng.integers(0, len(a), (BOOTSTRAP, len(a)))
    ib = rng.integers(0, len(b), (BOOTSTRAP, len(b)))
    d = b[ib].mean(1) - a[ia].mean(1)
    lo, hi = np.quantile(d, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(lo), float(hi)


def dimension_effects(rows: list[dict], dims: list[str], seed: int = 0) -> list[dict]:
    """For every swept dimension and each of its values: the mean of the metric over every ranked
    trial with that value (all configurations and seeds) and its difference from the dimension's
    first value, with a bootstrap interval. One entry per (dimension, value)."""
    rng = np.random.default_rng(seed)
    ranked = _ranked(rows)
    out = []
    for dim in dims:
        values = []
        for r in ranked:
            v = r["params"].get(dim)
            if v is not None and str(v) not in [str(x) for x in values]:
                values.append(v)
        if len(values) < 2:
            continue
        groups = {
            str(v): np.array([r["metric"] for r in ranked if str(r["params"].get(dim)) == str(v)]) for v in values
        }
        base = str(values[0])
        for v in values:
            g = groups[str(v)]
            e = {"dimension": dim, "value": v, "baseline": values[0], "n": int(len(g)), "mean": float(g.mean())}
            if str(v) != base:
                e["diff"] = float(g.mean() - groups[base].mean())
                e["ci_low"], e["ci_high"] = _bootstrap_diff(groups[base], g, rng)
            out.append(e)
    return out


def effects_table(effects: list[dict], metric: str) -> str:
    lines = [f"{'dimension':<34} {'value':>10} {'n':>3} {'mean ' + metric:>24} {'vs first value (95% CI)':>36}"]
    for e in effects:
        d = f"{e['diff']:+.4g} [{e['ci_low']:+.4g}, {e['ci_high']:+.4g}]" if "diff" in e else "(baseline)"
        lines.append(f"{e['dimension']:<34} {str(e['value']):>10} {e['n']:>3} {e['mean']:>24.4g} {d:>36}")
    return "\n".join(lines)


def configurations_table(configs: list[dict], metric: str) -> str:
    lines = [f"{'rank':>4} {'mean ' + metric:>22} {'spread (std)':>12} {'seeds':>5}  {'best seed trial':<16} params"]
    for i, c in enumerate(configs, 1):
        params = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in c["params"].items())
        lines.append(f"{i:>4} {c['mean']:>22.4f} {c['std']:>12.4f} {c['n']:>5}  {c['best_trial']:<16} {params}")
    return "\n".join(lines)


def optuna_importances(rows: list[dict], space: dict, mode: str) -> dict[str, float] | None:
    """Optuna's parameter importances (fANOVA) of the ranked trials over the sweep's space."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    dists = {}
    for k, d in space.items():
        kind, v = next(iter(d.items()))
        dists[k] = (
            FloatDistribution(float(v[0]), float(v[1]), log=(kind == "loguniform"))
            if kind in ("uniform", "loguniform")
            else CategoricalDistribution([str(x) for x in v])
        )
    trials = []
    for r in _ranked(rows):
        params = {
            k: (float(r["params"][k]) if isinstance(dists[k], FloatDistribution) else str(r["params"][k]))
            for k in dists
            if k in r["params"]
        }
        if len(params) == len(dists):
            trials.append(optuna.trial.create_trial(params=params, distributions=dists, value=float(r["metric"])))
    if len(trials) < 2:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    study.add_trials(trials)
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # e.g. every trial the same value
        return None


def plot_effects(rows: list[dict], effects: list[dict], metric: str, path: Path) -> Path | None:
    """One panel per dimension: each trial's metric at its value, the group means and their intervals."""
    dims = list(dict.fromkeys(e["dimension"] for e in effects))
    if not dims:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = _ranked(rows)
    fig, axes = plt.subplots(1, len(dims), figsize=(3.6 * len(dims), 3.4), squeeze=False)
    for ax, dim in zip(axes[0], dims):
        es = [e for e in effects if e["dimension"] == dim]
        labels = [str(e["value"]) for e in es]
        for i, e in enumerate(es):
            ys = [r["metric"] for r in ranked if str(r["params"].get(dim)) == labels[i]]
            ax.scatter([i] * len(ys), ys, color="C0", alpha=0.6, s=18)
            ax.plot([i - 0.25, i + 0.25], [e["mean"]] * 2, color="C3", lw=2)
            if "diff" in e:  # the interval of the difference, drawn around this value's mean
                ax.errorbar(
                    [i + 0.3],
                    [e["mean"]],
                    yerr=[[e["diff"] - e["ci_low"]], [e["ci_high"] - e["diff"]]],
                    fmt="none",
                    ecolor="C3",
                    capsize=3,
                )
                ax.annotate(f"{e['diff']:+.3g}", (i, e["mean"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_title(dim.rsplit(".", 1)[-1], fontsize=10)
        ax.set_ylabel(metric if ax is axes[0][0] else "")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"what each dimension did ({metric}; bars: {LEVEL:.0%} bootstrap interval of the difference)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_parallel(configs: list[dict], metric: str, path: Path) -> Path | None:
    """Parallel coordinates: one line per configuration over its values, coloured by its mean;
    every axis labelled with its values (categories by name)."""
    if not configs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    keys = sorted({k for c in configs for k in c["params"]})
    ticks, cols = [], []
    for k in keys:
        vals = [c["params"].get(k) for c in configs]
        try:
            nums = [float(v) for v in vals]
            lo, hi = min(nums), max(nums)
            cols.append([(x - lo) / (hi - lo) if hi > lo else 0.5 for x in nums])
            uniq = sorted(set(nums))
            ticks.append([((u - lo) / (hi - lo) if hi > lo else 0.5, f"{u:g}") for u in uniq])
        except (TypeError, ValueError):
            cats = sorted({str(v) for v in vals})
            pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
            cols.append([pos[str(v)] for v in vals])
            ticks.append([(pos[c], c) for c in cats])
    means = [c["mean"] for c in configs]
    norm = colors.Normalize(min(means), max(means) if max(means) > min(means) else min(means) + 1e-9)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(2.5 + 2.0 * len(keys), 4.2))
    for i, c in enumerate(configs):
        ax.plot(range(len(keys)), [col[i] for col in cols], marker="o", color=cmap(norm(c["mean"])), lw=2)
    for j, tk in enumerate(ticks):
        ax.axvline(j, color="0.7", lw=0.8, zorder=0)
        for y, label in tk:
            ax.annotate(label, (j, y), textcoords="offset points", xytext=(4, 0), fontsize=8, va="center")
    ax.set_xticks(range(len(keys)), [k.rsplit(".", 1)[-1] for k in keys])
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(keys) - 0.5)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"mean {metric} over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
