"""Where early stopping can decide: how well the ranking of a sweep's trials at each would-be rung
predicts their final ranking, for the rollout metric the old sweeps used and for ``eval/score``.

    python benchmarks/rung_correlation.py SWEEP_DIR [SWEEP_DIR ...] [--json OUT.json]

SWEEP_DIR: a finished sweep's Ray folder (``sweeps_out/<name>``), run with ``scheduler: fifo`` so
every trial reached its budget; several folders (e.g. one per seed) are pooled. Each trial's
``result.json`` holds one line per Tune report (one per evaluation, every ``report_every_steps``
env steps). A rung at R env steps reads each trial's first report at or past R.

Printed and written: for each rung and each metric, Spearman's rank correlation between the trials'
ranking there and their final ``eval/score`` ranking (trials, and configurations = mean over
seeds), and the metric's correlation with its own final ranking; then the sweep's per-configuration
table and what each dimension did (``sweeps.analysis``) on the final ``eval/score``.

Metrics and their sense: ``eval/score`` (higher better), ``rollout/motion_nn_dist`` (the old sweep
metric, from the training rollout of that epoch; lower better), ``eval/motion_nn_dist`` (lower),
``eval/fall_rate`` (lower).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweeps import analysis  # noqa: E402
from sweeps.space import config_key, trial_label  # noqa: E402
from sweeps.trial import trial_params  # noqa: E402

#: metric -> +1 if higher is better, -1 if lower is better
METRICS = {"eval/score": 1, "rollout/motion_nn_dist": -1, "eval/motion_nn_dist": -1, "eval/fall_rate": -1}
FINAL = "eval/score"


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x`` (ascending), ties sharing their mean rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def spearman(a, b) -> float:
    """Spearman's rho: Pearson's correlation of the ranks (nan for fewer than 3 points or a constant)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def load_trials(sweep_dirs: list[Path]) -> list[dict]:
    """One entry per trial: params (seed included), its reports in order, failed or not."""
    trials = []
    for d in sweep_dirs:
        for f in sorted(Path(d).glob("*/result.json")):
            reports = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
            if not reports:
                continue
            params = trial_params(reports[0].get("config") or {})
            failed = any(r.get("trial_failed") for r in reports)
            trials.append(
                {
                    "trial": f.parent.name,
                    "label": trial_label(params),
                    "params": params,
                    "reports": [r for r in reports if not r.get("trial_failed")],
                    "failed": failed,
                }
            )
    return trials


def at_rung(reports: list[dict], steps: float) -> dict | None:
    return next((r for r in reports if r.get("timesteps_total", 0) >= steps), None)


def study(trials: list[dict]) -> dict:
    ok = [t for t in trials if not t["failed"] and t["reports"] and FINAL in t["reports"][-1]]
    if len(ok) < 3:
        raise SystemExit(f"rung_correlation: {len(ok)} finished trial(s); a rank correlation needs at least 3")
    finals = {m: np.array([t["reports"][-1].get(m, np.nan) * s for t in ok]) for m, s in METRICS.items()}
    end = min(t["reports"][-1]["timesteps_total"] for t in ok)
    # the rungs: the multiples of the report interval (the first report) that every trial crossed
    step = float(np.median([t["reports"][0]["timesteps_total"] for t in ok]))
    rungs = [k * step for k in range(1, int(end // step) + 1)] if step > 0 else []
    configs = sorted({config_key(t["params"]) for t in ok})
    rows = []
    for R in rungs:
        row: dict = {"env_steps": R, "trials": len(ok)}
        falls = [(at_rung(t["reports"], R) or {}).get("eval/fall_rate", np.nan) for t in ok]
        row["standing"] = int(sum(f < 0.5 for f in falls))  # trials whose evaluation mostly stays up
        for m, s in METRICS.items():
            vals = []
            for t in ok:
                r = at_rung(t["reports"], R)
                vals.append(np.nan if r is None or m not in r else float(r[m]) * s)
            v = np.array(vals)
            if not np.isfinite(v).all():
                continue
            row[f"{m} tied"] = bool(np.all(v == v[0]))  # every trial the same value: no ranking at all
            row[f"{m} vs final {FINAL}"] = spearman(v, finals[FINAL])
            row[f"{m} vs its own final"] = spearman(v, finals[m])
            # configurations: the mean over seeds at the rung against the final mean
            cv = [np.mean([v[i] for i, t in enumerate(ok) if config_key(t["params"]) == c]) for c in configs]
            cf = [
                np.mean([finals[FINAL][i] for i, t in enumerate(ok) if config_key(t["params"]) == c]) for c in configs
            ]
            row[f"{m} vs final {FINAL} (configurations)"] = spearman(cv, cf)
        rows.append(row)
    final_rows = [
        {
            "trial": t["trial"],
            "params": t["params"],
            "metric": float(t["reports"][-1][FINAL]),
            "status": "OK",
            "env_steps": t["reports"][-1]["timesteps_total"],
        }
        for t in ok
    ]
    dims = [k for k in dict.fromkeys(k for t in ok for k in t["params"]) if k != "seed"]
    return {
        "trials": [
            {
                "label": t["label"],
                "failed": t["failed"],
                "final": {m: t["reports"][-1].get(m) for m in METRICS} if t["reports"] else {},
                "env_steps": t["reports"][-1]["timesteps_total"] if t["reports"] else 0,
                "reports": len(t["reports"]),
            }
            for t in trials
        ],
        "report_interval_env_steps": step,
        "rungs": rows,
        "configurations": analysis.configurations(final_rows, "max"),
        "effects": analysis.dimension_effects(final_rows, dims),
    }


def _fmt(row: dict, key: str) -> str:
    x = row.get(key)
    if row.get(key.split(" vs ")[0] + " tied"):
        return "tied"
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.2f}"


def table(res: dict) -> str:
    cols = [
        ("rollout/motion_nn_dist vs final eval/score", "old metric (rollout nn_dist)"),
        ("eval/score vs final eval/score", "eval/score"),
        ("rollout/motion_nn_dist vs final eval/score (configurations)", "old metric, configurations"),
        ("eval/score vs final eval/score (configurations)", "eval/score, configurations"),
        ("rollout/motion_nn_dist vs its own final", "old metric vs its own final"),
    ]
    head = "| rung (M env steps) | trials standing | " + " | ".join(c[1] for c in cols) + " |"
    lines = [head, "|---" * (len(cols) + 2) + "|"]
    for r in res["rungs"]:
        cells = " | ".join(_fmt(r, c[0]) for c in cols)
        lines.append(f"| {r['env_steps'] / 1e6:.2f} | {r['standing']}/{r['trials']} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dirs", nargs="+", type=Path)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    res = study(load_trials(a.sweep_dirs))
    print(table(res))
    print()
    for t in res["trials"]:
        f = t["final"]
        print(
            f"{t['label']:<24} {'FAILED' if t['failed'] else 'ok':<6} {t['env_steps'] / 1e6:7.2f} M  "
            + "  ".join(f"{m}={f.get(m, float('nan')):.4g}" for m in METRICS)
        )
    print()
    print(analysis.configurations_table(res["configurations"], FINAL))
    print()
    print(analysis.effects_table(res["effects"], FINAL))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
