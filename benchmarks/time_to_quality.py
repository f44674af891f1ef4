"""Time to quality: when each trial of a sweep first reached ``eval/fall_rate`` below a threshold,
in training wall time, and at what ``eval/motion_nn_dist``.

    python benchmarks/time_to_quality.py SWEEP_DIR [SWEEP_DIR ...] [--fall-rate 0.1] [--json OUT.json]

SWEEP_DIR: a finished sweep's Ray folder (``sweeps_out/<name>``) whose trials ran one at a time on
the GPU (``max_concurrent_trials: 1``: each wall clock is the trial's own) and reported at every
evaluation (``report_every_steps``). Each report carries ``perf/train_time_s`` (wall time since the
training loop started, the kernels compiled before) and ``perf/eval_time_s`` (the evaluations' part
of it). Printed per trial: the learning curve (train time, env steps, eval fall rate, eval nn dist),
the first report under the threshold, and the same time without the evaluations (what a run without
them would take, within one evaluation interval); then per configuration (over seeds) the mean time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from rung_correlation import load_trials  # noqa: E402

from sweeps.space import config_key, trial_label  # noqa: E402

CURVE = ("perf/train_time_s", "timesteps_total", "eval/fall_rate", "eval/motion_nn_dist")


def first_below(reports: list[dict], fall_rate: float) -> dict | None:
    """The first report (in env-step order) whose ``eval/fall_rate`` is below ``fall_rate``."""
    ordered = sorted(reports, key=lambda r: r.get("timesteps_total", 0))
    return next((r for r in ordered if r.get("eval/fall_rate", math.inf) < fall_rate), None)


def study(trials: list[dict], fall_rate: float) -> dict:
    rows = []
    for t in trials:
        reports = sorted((r for r in t["reports"] if "eval/fall_rate" in r), key=lambda r: r["timesteps_total"])
        hit = first_below(reports, fall_rate)
        last = reports[-1] if reports else {}
        rows.append(
            {
                "trial": t["trial"],
                "label": t["label"],
                "params": t["params"],
                "failed": t["failed"],
                "curve": [[r.get(k, math.nan) for k in CURVE] for r in reports],
                "reached": hit is not None,
                "time_s": hit["perf/train_time_s"] if hit else math.nan,
                "time_without_eval_s": hit["perf/train_time_s"] - hit.get("perf/eval_time_s", 0.0) if hit else math.nan,
                "env_steps": hit["timesteps_total"] if hit else math.nan,
                "nn_dist_at": hit.get("eval/motion_nn_dist", math.nan) if hit else math.nan,
                "final_fall_rate": last.get("eval/fall_rate", math.nan),
                "final_nn_dist": last.get("eval/motion_nn_dist", math.nan),
                "final_time_s": last.get("perf/train_time_s", math.nan),
                "final_env_steps": last.get("timesteps_total", math.nan),
                "env_steps_per_s": (
                    last["timesteps_total"] / last["perf/train_time_s"] if last.get("perf/train_time_s") else math.nan
                ),
            }
        )
    configs: dict[tuple, list[dict]] = {}
    for r in rows:
        configs.setdefault(config_key(r["params"]), []).append(r)
    summary = []
    for rs in configs.values():
        label = trial_label({k: v for k, v in rs[0]["params"].items() if k != "seed"})
        times = np.array([r["time_s"] for r in rs])
        summary.append(
            {
                "configuration": label,
                "trials": len(rs),
                "reached": int(np.isfinite(times).sum()),
                "mean_time_s": float(np.mean(times)) if np.isfinite(times).all() else math.nan,
                "times_s": times.tolist(),
                "mean_nn_dist_at": float(np.mean([r["nn_dist_at"] for r in rs])),
            }
        )
    summary.sort(key=lambda c: (c["reached"] < c["trials"], c["mean_time_s"]))
    return {"fall_rate": fall_rate, "trials": rows, "configurations": summary}


def table(res: dict) -> str:
    out = []
    for r in res["trials"]:
        out.append(f"{r['label']}{'  FAILED' if r['failed'] else ''}  ({r['env_steps_per_s']:,.0f} env steps/s)")
        out.append("  train s   env steps   eval fall   eval nn")
        out += [f"  {t:7.1f}  {s / 1e6:8.2f} M  {f:9.3f}  {d:8.3f}" for t, s, f, d in r["curve"]]
        if r["reached"]:
            out.append(
                f"  fall rate < {res['fall_rate']:g} after {r['time_s']:.1f} s ({r['time_without_eval_s']:.1f} s "
                f"without the evaluations), {r['env_steps'] / 1e6:.2f} M env steps, eval nn dist {r['nn_dist_at']:.3f}"
            )
        else:
            out.append(f"  fall rate never < {res['fall_rate']:g} in {r['final_time_s']:.1f} s")
    out.append("")
    out.append(f"{'configuration':<60} {'reached':>8} {'mean s':>8}")
    for c in res["configurations"]:
        out.append(f"{c['configuration']:<60} {c['reached']:>3} of {c['trials']:<2} {c['mean_time_s']:8.1f}")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dirs", nargs="+", type=Path)
    p.add_argument("--fall-rate", type=float, default=0.1)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    res = study(load_trials(a.sweep_dirs), a.fall_rate)
    print(table(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
