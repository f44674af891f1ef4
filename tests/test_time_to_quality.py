"""benchmarks/time_to_quality.py on synthetic Tune results with known crossing times."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
_spec = importlib.util.spec_from_file_location("time_to_quality", REPO / "benchmarks" / "time_to_quality.py")
ttq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ttq)


def _trial(root: Path, name: str, params: dict, curve: list[tuple]) -> None:
    """curve: (train s, eval s so far, env steps, eval fall rate, eval nn dist) per report."""
    d = root / name
    d.mkdir(parents=True)
    cfg = {"p": {k.replace(".", "__"): v for k, v in params.items()}}
    lines = [
        {
            "perf/train_time_s": t,
            "perf/eval_time_s": e,
            "timesteps_total": s,
            "eval/fall_rate": f,
            "eval/motion_nn_dist": n,
            "config": cfg,
        }
        for t, e, s, f, n in curve
    ]
    (d / "result.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_first_crossing_per_trial_and_the_mean_per_configuration(tmp_path):
    fast = {"task.sim.mujoco_timestep": 0.0083333}
    slow = {"task.sim.mujoco_timestep": 0.0055556}
    # reports written out of order: the crossing is the first in env-step order
    _trial(
        tmp_path,
        "a",
        {**fast, "seed": 1},
        [(60.0, 4.0, 8e6, 0.05, 1.2), (30.0, 2.0, 4e6, 0.4, 1.5), (90, 6, 12e6, 0.02, 1.1)],
    )
    _trial(tmp_path, "b", {**fast, "seed": 2}, [(30.0, 2.0, 4e6, 0.09, 1.4), (60.0, 4.0, 8e6, 0.01, 1.0)])
    _trial(
        tmp_path, "c", {**slow, "seed": 1}, [(30.0, 2.0, 3e6, 0.5, 1.6), (60.0, 4.0, 6e6, 0.1, 1.3)]
    )  # 0.1 is not < 0.1
    res = ttq.study(ttq.load_trials([tmp_path]), 0.1)
    by = {r["trial"]: r for r in res["trials"]}
    assert by["a"]["time_s"] == 60.0 and by["a"]["time_without_eval_s"] == 56.0 and by["a"]["env_steps"] == 8e6
    assert by["a"]["nn_dist_at"] == 1.2 and by["a"]["final_fall_rate"] == 0.02
    assert by["a"]["env_steps_per_s"] == 12e6 / 90
    assert by["b"]["time_s"] == 30.0 and by["b"]["nn_dist_at"] == 1.4
    assert not by["c"]["reached"] and math.isnan(by["c"]["time_s"])
    first, second = res["configurations"]
    assert first["trials"] == 2 and first["reached"] == 2 and first["mean_time_s"] == 45.0
    assert abs(first["mean_nn_dist_at"] - 1.3) < 1e-12 and "0.0083333" in first["configuration"]
    assert second["reached"] == 0 and math.isnan(second["mean_time_s"])
    text = ttq.table(res)
    assert "fall rate < 0.1 after 60.0 s (56.0 s without the evaluations)" in text
    assert "fall rate never < 0.1 in 60.0 s" in text
