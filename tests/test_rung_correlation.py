"""benchmarks/rung_correlation.py on synthetic Tune results with known rankings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rung_correlation", REPO / "benchmarks" / "rung_correlation.py")
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)


def test_spearman_known_values():
    assert rc.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rc.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks with a tie: [1.5, 1.5, 3, 4] against [1, 2, 3, 4] -> Pearson of the ranks
    assert list(rc.ranks([5.0, 5.0, 7.0, 9.0])) == [1.5, 1.5, 3.0, 4.0]
    assert rc.spearman([5, 5, 7, 9], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)  # 3 / sqrt(10)
    assert rc.spearman([1, 2], [1, 2]) != rc.spearman([1, 2], [1, 2])  # fewer than 3: nan


def _trial(root: Path, name: str, params: dict, reports: list[dict]) -> None:
    d = root / name
    d.mkdir(parents=True)
    cfg = {"p": {k.replace(".", "__"): v for k, v in params.items()}}
    (d / "result.json").write_text("\n".join(json.dumps({**r, "config": cfg}) for r in reports) + "\n")


def test_rungs_rank_against_the_final_score(tmp_path):
    """Four trials, reports at 1 M and 2 M env steps. At 1 M every score is 0 (tied) and the rollout
    distance orders them exactly opposite to the end; at 2 M both metrics order them as the end."""
    final = {"a": 0.9, "b": 0.6, "c": 0.3, "d": 0.1}
    early_nn = {"a": 90.0, "b": 80.0, "c": 70.0, "d": 60.0}  # lower is better: the best looks worst
    for i, (name, s) in enumerate(final.items()):
        params = {"sigma": ["fixed", "learned"][i % 2], "train.params.config.horizon_length": 16, "seed": 42 + i // 2}
        _trial(
            tmp_path,
            name,
            params,
            [
                {
                    "timesteps_total": 1_000_000,
                    "eval/score": 0.0,
                    "rollout/motion_nn_dist": early_nn[name],
                    "eval/motion_nn_dist": 20.0,
                    "eval/fall_rate": 1.0,
                },
                {
                    "timesteps_total": 2_000_000,
                    "eval/score": s,
                    "rollout/motion_nn_dist": 50 - 10 * s,
                    "eval/motion_nn_dist": 15 - s,
                    "eval/fall_rate": 1 - s,
                    "trial_done": 1.0,
                },
            ],
        )
    _trial(
        tmp_path,
        "failed",
        {"sigma": "fixed", "train.params.config.horizon_length": 16, "seed": 50},
        [{"timesteps_total": 1_000_000, "eval/score": 5.0}, {"trial_failed": 1.0, "failure_reason": "nan"}],
    )
    res = rc.study(rc.load_trials([tmp_path]))
    r1, r2 = res["rungs"]
    assert r1["env_steps"] == 1_000_000 and r1["trials"] == 4  # the failed trial is never ranked
    assert r1["eval/score tied"] and "tied" in rc.table(res).splitlines()[2]
    assert r1["rollout/motion_nn_dist vs final eval/score"] == pytest.approx(-1.0)
    assert r2["rollout/motion_nn_dist vs final eval/score"] == pytest.approx(1.0)
    assert r2["eval/score vs final eval/score"] == pytest.approx(1.0)
    assert r2["standing"] == 2  # eval fall rates 0.1, 0.4, 0.7, 0.9: two below 0.5
    effects = {(e["dimension"], e["value"]): e for e in res["effects"]}
    assert effects[("sigma", "learned")]["diff"] == pytest.approx((0.6 + 0.1) / 2 - (0.9 + 0.3) / 2)


def test_fewer_than_three_finished_trials_is_an_error(tmp_path):
    _trial(tmp_path, "a", {"sigma": "fixed", "seed": 1}, [{"timesteps_total": 1, "eval/score": 1.0}])
    with pytest.raises(SystemExit, match="at least 3"):
        rc.study(rc.load_trials([tmp_path]))
