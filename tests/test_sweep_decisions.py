"""Sweep answers that hold up, against a real ``mlflow server`` and a real local Ray: rungs in env steps, failed and diverged trials as results (retried from a
checkpoint only where a retry can help; MLP policy, so the finished one can be promoted), the checks
that stop a sweep file before Ray starts, and what each dimension did, by hand (seeds and the
per-configuration table on a real sweep: test_sweeps.py)."""

from __future__ import annotations

import json

import pytest
import torch

from isaacgymenvs.learning.config_check import ConfigError
from sweeps import analysis, space
from tests.helpers.mlflow_server import module_server
from tests.helpers.sweeping import P, children, run_sweep, steps, tiny_spec

server = module_server("sweep_decisions_mlflow")  # this module's own `mlflow server`
H16 = {
    "train.params.config.bounds_loss_coef": 10,
    "train.params.config.horizon_length": 16,
    "sigma": "fixed",
    "train.params.config.seq_len": 4,
}
H32 = {**H16, "train.params.config.horizon_length": 32}


@pytest.mark.slow
def test_rungs_in_env_steps_compare_horizons_at_equal_samples(tmp_path, server):
    """Horizon 16 and 32 under one env-step budget of 2,048: both are evaluated (and reported to ASHA)
    at the same env-step counts, every 512 (2 epochs against 1), and ASHA's rung at 1,024 compares
    them there."""
    spec = tiny_spec(
        "equal",
        epochs=100,
        points=[H16, H32],
        scheduler="asha",
        budget={"env_steps": 2048},
        report_every_steps=512,
        asha={"time_attr": "env_steps", "grace_period": 1024, "reduction_factor": 2},
    )
    from sweeps.runner import _scheduler

    sched = _scheduler(space.normalize(spec), 100)
    assert sched._time_attr == "timesteps_total" and [m for m, _ in sched._brackets[0]._rungs] == [2048.0, 1024.0]
    r = run_sweep(tmp_path, spec, server)
    assert r.returncode == 0, r.stdout[-4000:]
    _, kids = children(server, spec)
    per_epoch = {"16": 16 * 16, "32": 16 * 32}  # num_envs x horizon
    evaluated = {}
    for k in kids:
        h = k["params"]["train.params.config.horizon_length"]
        evaluated[h] = [e * per_epoch[h] for e in steps(server, k, "eval/score")]
    schedule = [512, 1024, 1536, 2048]
    for at in evaluated.values():  # the same env-step counts for both horizons, as far as each got
        assert at == schedule[: len(at)], evaluated
    assert max(len(at) for at in evaluated.values()) == 4
    # a trial ASHA stopped was stopped at its rung (1,024 env steps), compared with the other at equal experience
    assert all(len(at) in (2, 4) for at in evaluated.values()), evaluated
    res = json.loads((tmp_path / "out" / "equal" / "results.json").read_text())
    assert {r["env_steps"] for r in res["rows"]} <= {1024, 2048}
    # every trial's run says why it stopped and at how much experience
    for k in kids:
        at = evaluated[k["params"]["train.params.config.horizon_length"]]
        assert k["tags"]["env_steps"] == str(at[-1])
        assert "curves.png" in server.artifacts(k["info"]["run_id"])  # also when the scheduler ended it
        if len(at) == 2:
            assert k["tags"]["stop_reason"].startswith("stopped early by the scheduler at 1024 env steps"), k["tags"]
        else:
            assert k["tags"]["stop_reason"].startswith("finished: its whole budget (2048 env steps"), k["tags"]


@pytest.mark.slow
def test_failed_and_diverged_trials_end_with_their_reasons_and_only_a_retry_that_can_help_is_made(tmp_path, server):
    """One sweep, five trials: one that errors once at epoch 2 is restarted from its epoch-1
    checkpoint and finishes in the same run; one that errors at every attempt ends FAILED after its
    retry; one whose critic loss turns NaN and one with an absurd learning rate end FAILED with their
    real reasons and are not retried (a retry cannot help); one finishes. The sweep exits 0 and lists
    the failed trials, and `make promote` takes the best finished one."""
    mlp = {**P[0], "train.params.config.bounds_loss_coef": 5}
    once = {**mlp, "train.params.config.bounds_loss_coef": 10}
    always = {**mlp, "train.params.config.bounds_loss_coef": 1}
    nan = {**mlp, "train.params.config.bounds_loss_coef": 2}
    absurd = {**mlp, "train.params.config.bounds_loss_coef": 3, "train.params.config.learning_rate": 1000.0}
    spec = tiny_spec(
        "faults",
        epochs=3,
        points=[mlp, once, always, nan, absurd],
        max_failures=1,
        fail=[
            {"match": {"train.params.config.bounds_loss_coef": 10}, "at_epoch": 2, "attempts": "once"},
            {"match": {"train.params.config.bounds_loss_coef": 1}, "at_epoch": 2, "attempts": "always"},
            {"match": {"train.params.config.bounds_loss_coef": 2}, "at_epoch": 2, "kind": "nan", "attempts": "always"},
        ],
    )
    spec["overrides"] = [
        o for o in spec["overrides"] if not o.startswith("train.params.network.rnn")
    ]  # MLP: exportable
    r = run_sweep(tmp_path, spec, server)
    assert r.returncode == 0, r.stdout[-4000:]  # three trials failed for good; two finished: a result
    assert "restarted from its checkpoint at epoch 1" in r.stdout
    assert "3 trial(s) failed (never ranked)" in r.stdout and "injected failure at epoch 2 (every attempt)" in r.stdout
    parents, kids = children(server, spec)
    assert len(parents) == 1 and parents[0]["info"]["status"] == "FINISHED"
    assert parents[0]["tags"]["failed_trials"] == "3"
    assert len(kids) == 5, [k["tags"].get("ray_trial_id") for k in kids]  # a retry continues its run
    by = {k["params"]["train.params.config.bounds_loss_coef"]: k for k in kids}
    assert by["10"]["info"]["status"] == "FINISHED" and by["10"]["tags"]["restored_from_epoch"] == "1"
    assert steps(server, by["10"]) == [1, 2, 3]  # epoch 2 logged once although it ran twice
    assert by["1"]["info"]["status"] == "FAILED"
    assert "InjectedFailure: injected failure at epoch 2" in by["1"]["tags"]["error"]  # the real reason stays
    assert by["1"]["tags"]["ray_error"].startswith("errored after 2 attempt(s)")
    assert steps(server, by["1"]) == [1, 2]
    assert by["5"]["info"]["status"] == "FINISHED" and steps(server, by["5"]) == [1, 2, 3]
    assert (
        by["2"]["info"]["status"] == "FAILED" and "diverged at epoch 2: loss/critic is nan" in by["2"]["tags"]["error"]
    )
    assert by["3"]["info"]["status"] == "FAILED" and "updates had non-finite gradients" in by["3"]["tags"]["error"]
    for blc in ("5", "2", "3"):  # finished without a fault, or diverged: never restarted
        assert "restored_from_epoch" not in by[blc]["tags"], blc
    res = json.loads((tmp_path / "out" / "faults" / "results.json").read_text())
    status = {r["params"]["train.params.config.bounds_loss_coef"]: (r["status"], r["reason"]) for r in res["rows"]}
    assert status[5][0] == status[10][0] == "OK" and status[2][0] == status[3][0] == "FAILED"  # diverged
    assert status[1][0] == "ERROR" and "loss/critic is nan" in status[2][1]  # errored: its retries ran out
    ranked = [c["params"]["train.params.config.bounds_loss_coef"] for c in res["configurations"]]
    assert sorted(ranked) == [5, 10]

    from sweeps.promote import promote

    out = promote("faults", storage=tmp_path / "out", video=False)
    assert out["source_run_id"] == by[str(ranked[0])]["info"]["run_id"]  # the best finished configuration


@pytest.mark.slow
def test_a_checkpoint_with_nonfinite_weights_is_not_continued_from(tmp_path):
    from sweeps.trial import restore_refusal
    from tests.helpers.training import trainer

    path = trainer(tmp_path, "max_iterations=1", "train.params.config.eval_envs=0").train()
    assert restore_refusal(path) is None
    ck = torch.load(path, weights_only=True)
    ck["finite"] = False
    torch.save(ck, tmp_path / "nan.pth")
    assert "non-finite weights" in restore_refusal(tmp_path / "nan.pth")


@pytest.mark.parametrize(
    "change,match",
    [
        ({"num_samples": 2}, "num_samples: 2 repeats of the same points and grid would be the same runs.*use seeds: 2"),
        ({"num_samples": "two"}, "num_samples: must be a whole number >= 1, got 'two'"),
        ({"seeds": [1, 1]}, "seeds: must be a count >= 1 or a list of distinct"),
        (
            {"search": "optuna", "seeds": 2, "points": [], "space": {"sigma": {"choice": ["fixed", "learned"]}}},
            "several seeds per configuration need search: grid",
        ),
        ({"budget": {"epochs": 3}}, r"budget: must be \{env_steps: N\}"),
        ({"asha": {"time_attr": "epochs"}}, "asha.time_attr: must be one of"),
        ({"overrides": ["task=HumanoidAMP", "num_envs=-8"]}, "num_envs: must be at least 1, got -8"),
    ],
)
def test_sweep_files_that_could_only_fail_later_are_refused_before_ray(change, match):
    spec = space.normalize({**tiny_spec("bad", epochs=2, points=P[:1]), **change})
    with pytest.raises(ConfigError, match=match):
        space.check_spec(spec)


def test_effects_by_hand():
    """Two values of one dimension, two trials each: the difference of means and an interval that
    holds it; one value alone gives no effect."""
    rows = [
        {"trial": str(i), "params": {"d": d, "seed": s}, "metric": m, "status": "OK"}
        for i, (d, s, m) in enumerate([("a", 1, 1.0), ("a", 2, 3.0), ("b", 1, 6.0), ("b", 2, 8.0)])
    ]
    (base, other) = analysis.dimension_effects(rows, ["d"])
    assert base["mean"] == 2.0 and "diff" not in base
    assert other["mean"] == 7.0 and other["diff"] == 5.0 and 3.0 <= other["ci_low"] <= 5.0 <= other["ci_high"] <= 7.0
    configs = analysis.configurations(rows, "max")
    assert [c["params"]["d"] for c in configs] == ["b", "a"] and configs[0]["std"] == pytest.approx(2**0.5)
    assert analysis.dimension_effects(rows[:2], ["d"]) == []
    rows[3]["status"] = "FAILED"
    assert analysis.configurations(rows, "max")[0]["n"] == 1  # a failed trial is never counted


def test_ray_addresses_that_name_no_head_are_told_apart_from_one_that_answers():
    import socket

    from sweeps.ray_session import head_unreachable
    from tests.helpers.mlflow_server import free_port

    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        assert head_unreachable(f"127.0.0.1:{port}") is None
        assert head_unreachable(f"ray://127.0.0.1:{port}") is None
    assert head_unreachable("auto") is None
    dead = free_port()
    assert head_unreachable(f"127.0.0.1:{dead}").startswith("nothing answers there")
    assert head_unreachable(f"[::1]:{dead}").startswith("nothing answers there")  # IPv6 in brackets: parsed
    for bad in (
        "127.0.0.1",
        "127.0.0.1:",
        ":6379",
        "127.0.0.1:abc",
        "127.0.0.1:70000",
        "127.0.0.1:0",
        "h:²",
        "fe80::1",
    ):
        assert head_unreachable(bad).startswith("not host:port"), bad
    assert head_unreachable("http://127.0.0.1:8265").startswith("not host:port")  # the dashboard's address
