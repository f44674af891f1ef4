"""Aggregate env steps per second of a sweep's trials, read back from MLflow.

    python benchmarks/sweep_throughput.py EXPERIMENT [--uri URI] [--skip-epochs 2]

For each child run of the newest parent run in EXPERIMENT: the mean of ``perf/env_steps_per_s``
over its epochs (the first ``--skip-epochs`` dropped: demo-buffer fill, compile), and the wall
time between its first and last epoch. Trials that ran side by side add up: the aggregate is the
sum of the per-trial rates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("experiment")
    p.add_argument("--uri", default="")
    p.add_argument("--skip-epochs", type=int, default=2)
    a = p.parse_args()
    from mlflow.tracking import MlflowClient

    from tracking.store import resolve_uri

    c = MlflowClient(resolve_uri(a.uri))
    exp = c.get_experiment_by_name(a.experiment)
    runs = c.search_runs([exp.experiment_id], max_results=500)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    parent = max(parents, key=lambda r: r.info.start_time)
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    rows = []
    for r in kids:
        h = sorted(c.get_metric_history(r.info.run_id, "perf/env_steps_per_s"), key=lambda m: m.step)[a.skip_epochs :]
        if not h:
            continue
        rows.append(
            {
                "run": r.info.run_name,
                "epochs": len(h) + a.skip_epochs,
                "mean_env_steps_per_s": sum(m.value for m in h) / len(h),
                "wall_s": (h[-1].timestamp - h[0].timestamp) / 1000,
            }
        )
    out = {
        "experiment": a.experiment,
        "parent": parent.info.run_id,
        "trials": rows,
        "aggregate_env_steps_per_s": sum(r["mean_env_steps_per_s"] for r in rows),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
