"""Sweeps for the tests: a tiny CPU sweep spec, ``python -m sweeps FILE`` in its own process group
(bounded wait, the group killed on a timeout), its runs read back from the MLflow server, and
``fake_sweep``: what ``make sweep`` leaves behind (parent and child runs, checkpoints, sweep.json)
without running Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweeps import space
from tests.helpers.mlflow_server import Server
from tests.helpers.training import REPO

SWEEP_TIMEOUT_S = 240
#: the dimensions and metric of ``fake_sweep``'s trials
METRIC = "eval/motion_nn_dist"
DIMS = {"train.params.config.bounds_loss_coef": 10, "sigma": "fixed"}


def tiny_spec(name: str, epochs: int, points: list[dict], base: str = "lstm_cpu", **kw) -> dict:
    """A sweep of ``points`` (one seed each unless ``seeds=``), ``epochs`` each, on ``base``'s
    overrides (``lstm_cpu``: the LSTM policy; ``default``: the MLP policy, which export takes)."""
    base = space.load(base)
    spec = {k: base[k] for k in ("metric", "mode", "overrides", "resources")}
    spec["overrides"] = [o for o in base["overrides"] if not o.startswith("max_iterations=")] + [
        f"max_iterations={epochs}"
    ]
    spec.update(
        name=name,
        experiment=f"sweep_{name}",
        points=points,
        max_concurrent_trials=2,
        scheduler="fifo",
        max_failures=1,
        report_every=1,
        time_budget_s=0,
    )
    spec.update(kw)
    return spec


P = [
    {
        "train.params.config.bounds_loss_coef": 10,
        "train.params.config.horizon_length": 16,
        "sigma": "fixed",
        "train.params.config.seq_len": 4,
    },
    {
        "train.params.config.bounds_loss_coef": 1,
        "train.params.config.horizon_length": 16,
        "sigma": "learned",
        "train.params.config.seq_len": 8,
    },
    {
        "train.params.config.bounds_loss_coef": 5,
        "train.params.config.horizon_length": 8,
        "sigma": "learned",
        "train.params.config.seq_len": 4,
    },
]


def env_for(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env.update(PYTHONPATH=str(REPO), RAY_DEDUP_LOGS="0", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def sweep_cmd(tmp_path: Path, spec: dict, server: Server | None, *args) -> list[str]:
    """``python -m sweeps FILE`` tracked on ``server`` (None: the embedded store, as ``make sweep``)."""
    f = tmp_path / f"{spec['name']}.yaml"
    f.write_text(yaml.safe_dump(spec, sort_keys=False))
    return [
        sys.executable,
        "-m",
        "sweeps",
        str(f),
        "--storage",
        str(tmp_path / "out"),
        *(["--tracking-uri", server.url] if server is not None else []),
        *args,
    ]


def run_sweep(tmp_path, spec, server, *args, env=None, timeout=SWEEP_TIMEOUT_S) -> subprocess.CompletedProcess:
    log = tmp_path / f"{spec['name']}.log"
    with open(log, "ab") as out:
        p = subprocess.Popen(
            sweep_cmd(tmp_path, spec, server, *args),
            cwd=tmp_path,
            env=env or env_for(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p)
            pytest.fail(f"sweep did not end in {timeout} s: {log.read_text(errors='replace')[-4000:]}")
    return subprocess.CompletedProcess(p.args, rc, log.read_text(errors="replace"), "")


def kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait(timeout=30)


def children(server: Server, spec: dict) -> tuple[list[dict], list[dict]]:
    runs = server.runs(spec["experiment"])
    tags = lambda r: {t["key"]: t["value"] for t in r["data"].get("tags", [])}  # noqa: E731
    parents = [r for r in runs if "mlflow.parentRunId" not in tags(r)]
    kids = [r for r in runs if "mlflow.parentRunId" in tags(r)]
    for r in runs:
        r["tags"] = tags(r)
        r["params"] = {p["key"]: p["value"] for p in r["data"].get("params", [])}
    return parents, kids


def steps(server: Server, run: dict, key: str = "disc/agent_logit") -> list[int]:
    return sorted(int(m["step"]) for m in server.history(run["info"]["run_id"], key))


def fake_sweep(
    server: Server, storage: Path, name: str, trials: list[tuple], tmp: Path, task: str = "HumanoidAMP"
) -> dict:
    """A finished sweep as `make sweep` leaves it. ``trials``: (eval/motion_nn_dist, status, checkpoint file or None
    [, {other metric: latest value}])."""
    from mlflow import MlflowClient

    c = MlflowClient(server.url)
    exp = c.create_experiment(f"sweep_{name}")
    parent = c.create_run(exp, run_name=name, tags={"sweep": name}).info.run_id
    runs = []
    for i, (value, status, ckpt, *extra) in enumerate(trials):
        rid = c.create_run(
            exp,
            run_name=f"{name}_trial_{i}",
            tags={"mlflow.parentRunId": parent, "ray_trial_id": f"{name}_{i:05d}", "sweep": name, "task": task},
        ).info.run_id
        for k, v in {**DIMS, "seed": 42 + i}.items():  # a trial's params: its point and seed
            c.log_param(rid, k, v)
        c.log_metric(rid, METRIC, value + 1.0, step=1)
        c.log_metric(rid, METRIC, value, step=2)  # the latest value counts
        c.log_metric(rid, "reward/disc", 100.0 - value, step=2)  # a higher disc reward for worse runs: never used
        for k, v in (extra[0] if extra else {}).items():
            c.log_metric(rid, k, v, step=2)
        if ckpt is not None:
            staged = tmp / f"{name}_{i}" / "best.pth"
            staged.parent.mkdir(parents=True)
            staged.write_bytes(Path(ckpt).read_bytes())
            c.log_artifact(rid, str(staged), "checkpoints")
        c.set_terminated(rid, status)
        runs.append(rid)
    c.set_terminated(parent, "FINISHED")
    (storage / name).mkdir(parents=True)
    (storage / name / "sweep.json").write_text(
        json.dumps(
            {
                "parent_run_id": parent,
                "uri": server.url,
                "experiment": f"sweep_{name}",
                "spec": {"name": name, "metric": METRIC, "mode": "min", "points": [DIMS]},
            }
        )
    )
    return {"parent": parent, "runs": runs}
