"""MLflow tracking against a real ``mlflow server`` on 127.0.0.1 (no mocks), read back through its REST API.

One server (sqlite store and artifact root in a temporary folder, ``--workers 1``) serves the
module; tests that stop it start it again on the same port and store. Every wait is bounded and
the server's process group is always killed at the end.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import torch
from hydra import compose, initialize_config_dir

from isaacgymenvs import train as train_mod
from tests.helpers.mlflow_server import SERVER_START_S, free_port, module_server, params_of, tags_of
from tests.helpers.training import TINY, start_training  # the tiny training every trainer test uses

REPO = Path(__file__).resolve().parents[1]
BASE = [o for o in TINY if not o.startswith("tracking=")]  # TINY switches tracking off
#: The params of a run of BASE, by hand: its seed and what BASE changes from HumanoidAMP's defaults
#: (not horizon_length=16 or sim=mujoco, which are the defaults; not task.env.numEnvs, which follows num_envs)
BASE_PARAMS = {
    "seed": "42",
    "headless": "True",
    "num_envs": "16",
    "train.params.config.minibatch_size": "128",
    "train.params.config.amp_minibatch_size": "128",
    "train.params.config.amp_obs_demo_buffer_size": "2048",
    "train.params.config.amp_replay_buffer_size": "4096",
    "train.params.config.amp_batch_size": "256",
    "train.params.config.eval_ref_size": "512",
    "train.params.config.eval_agent_size": "128",
    "train.params.network.mlp.units": "[64, 64]",
    "train.params.network.disc.units": "[64, 64]",
}


_server = module_server("mlflow")


@pytest.fixture
def server(_server):
    _server.ensure_running()  # a test before this one may have stopped it
    return _server


@pytest.fixture(autouse=True)
def _no_user_store(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AMP_MLRUNS_DIR", str(tmp_path / "mlruns"))  # never the project's own store


def make_cfg(*overrides):
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        return compose("config", overrides=BASE + list(overrides))


def tracked(tmp_path, server_url, experiment, *overrides, observers=()):
    t = train_mod.Trainer(
        make_cfg(f"tracking.uri={server_url}", f"tracking.experiment={experiment}", *overrides),
        observers=list(observers),
        runs_dir=str(tmp_path / "runs"),
    )
    return t, train_mod.open_tracking(t)


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.slow
def test_run_params_metrics_tags_artifacts_read_back_through_rest(server, tmp_path):
    import yaml
    from omegaconf import OmegaConf

    from tracking.params import git_commit

    history = []
    t, session = tracked(
        tmp_path,
        server.url,
        "t-full",
        "max_iterations=3",
        "tracking.artifact_every=2",
        "train.params.config.bounds_loss_coef=7",
        observers=[lambda e, f, m: history.append((e, dict(m)))],
    )
    batches_before, single_before = server.requests_to("runs/log-batch"), server.requests_to("runs/log-metric")
    assert session.enabled and t.agent is None  # connected before anything was built
    last = train_mod.run_training(t, session)
    assert last is not None and [e for e, _ in history] == [1, 2, 3]

    (run_info,) = server.runs("t-full")
    run = server.run(run_info["info"]["run_id"])
    rid = run["info"]["run_id"]
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == t.run_dir.name

    # the seed and what the command line changed, each once (tracking.* is where it is recorded: no param)
    assert params_of(run) == {**BASE_PARAMS, "max_iterations": "3", "train.params.config.bounds_loss_coef": "7"}

    tags = tags_of(run)
    assert tags["task"] == "HumanoidAMP" and tags["sim"] == "mujoco" and tags["device"] == "cpu"
    assert tags["git_commit"] == git_commit() and tags["git_commit"] != ""
    assert tags["command"]  # sys.argv: pytest's here; the SIGTERM test checks the train.py command line

    # every trainer metric, every epoch, step = epoch, the values the observers saw
    for key in history[0][1]:
        pts = server.history(rid, key)
        assert sorted(p["step"] for p in pts) == [1, 2, 3], key
        if key.startswith("disc/"):
            got = {p["step"]: p["value"] for p in pts}
            assert all(math.isclose(got[e], m[key], rel_tol=1e-9, abs_tol=1e-12) for e, m in history), key
    assert {"disc/agent_logit", "disc/agent_replay_logit", "disc/demo_logit"} <= set(history[0][1])
    # batched: one log-batch per epoch (+ param chunks and tag updates), never one request per key
    assert server.requests_to("runs/log-metric") == single_before
    assert server.requests_to("runs/log-batch") - batches_before <= 2 + 3 + 2

    root = server.artifacts(rid)
    assert {"config.yaml", "curves.png", "checkpoints"} <= set(root)
    ckpts = server.artifacts(rid, "checkpoints")
    assert {"checkpoints/latest.pth", "checkpoints/best.pth"} <= set(ckpts)
    assert int(ckpts["checkpoints/latest.pth"]["file_size"]) == Path(last).stat().st_size
    assert tags["checkpoint.latest"] == Path(last).name and tags["checkpoint.latest_epoch"] == "3"
    cfg_text = requests.get(f"{server.url}/get-artifact", params={"path": "config.yaml", "run_uuid": rid}, timeout=10)
    assert cfg_text.ok and cfg_text.text == (t.run_dir / "config.yaml").read_text()
    # the whole config the run was composed from, resolved: what the params leave out is here
    stored = yaml.safe_load(cfg_text.text)
    assert stored == OmegaConf.to_container(t.cfg, resolve=True)
    assert stored["train"]["params"]["config"]["gamma"] == 0.99 and stored["task"]["env"]["numEnvs"] == 16
    png = requests.get(f"{server.url}/get-artifact", params={"path": "curves.png", "run_uuid": rid}, timeout=10)
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_server_down_mid_run_spools_and_sends_every_epoch_once(server, tmp_path, capsys):
    restart = {}

    def chaos(epoch, frame, m):  # runs before the tracker's observer of the same epoch
        if epoch == 2:
            server.kill()
        elif epoch == 4:
            server.start()  # same port, same store: epochs 2-3 are in the spool, sent with epoch 4
        elif epoch == 5:
            server.kill()
        elif epoch == 6:  # last epoch: the server comes back while the run is ending
            restart["thread"] = threading.Thread(target=server.start, daemon=True)
            restart["thread"].start()

    t, session = tracked(
        tmp_path,
        server.url,
        "t-outage",
        "max_iterations=6",
        "tracking.probe_every_s=0",
        "tracking.end_timeout_s=60",
        observers=[chaos],
    )
    t0 = time.monotonic()
    train_mod.run_training(t, session)
    restart["thread"].join(timeout=SERVER_START_S)
    assert server.healthy()
    err = capsys.readouterr().err
    assert "does not answer" in err and "spool.jsonl" in err

    (run_info,) = server.runs("t-outage")
    rid = run_info["info"]["run_id"]
    assert server.run(rid)["info"]["status"] == "FINISHED"
    keys = list(session.history[0][1])
    for key in keys:
        steps = [p["step"] for p in server.history(rid, key)]
        assert sorted(steps) == [1, 2, 3, 4, 5, 6], (key, steps)  # every epoch, exactly once
    spool = [json.loads(x) for x in (t.run_dir / "tracking" / "spool.jsonl").read_text().splitlines()]
    records = [d["step"] for d in spool if "seq" in d]
    acks = [d["ack"] for d in spool if "ack" in d]
    assert records[:2] == [2, 3] and 5 in records and 6 in records  # what was spooled
    assert acks == sorted(acks) and len(acks) == len(records) and not any("rejected" in d for d in spool)
    assert not (t.run_dir / "tracking" / "end.json").exists()
    assert {"checkpoints/latest.pth", "checkpoints/best.pth"} <= set(server.artifacts(rid, "checkpoints"))
    assert time.monotonic() - t0 < 120


@pytest.mark.slow
def test_end_while_server_is_down_is_sent_later_by_sync(server, tmp_path, capsys):
    from tracking.__main__ import main as tracking_cli

    def chaos(epoch, frame, m):
        if epoch == 2:
            server.kill()

    t, session = tracked(
        tmp_path, server.url, "t-sync", "max_iterations=3", "tracking.end_timeout_s=0", observers=[chaos]
    )
    train_mod.run_training(t, session)
    end = json.loads((t.run_dir / "tracking" / "end.json").read_text())
    assert end["status"] == "FINISHED" and "python -m tracking sync" in capsys.readouterr().err
    server.start()
    (run_info,) = server.runs("t-sync")
    assert run_info["info"]["status"] == "RUNNING"  # nothing could tell the server yet
    assert tracking_cli(["sync", str(t.run_dir)]) == 0
    rid = run_info["info"]["run_id"]
    assert server.run(rid)["info"]["status"] == "FINISHED"
    assert sorted(p["step"] for p in server.history(rid, "disc/demo_logit")) == [1, 2, 3]
    assert {"checkpoints/latest.pth"} <= set(server.artifacts(rid, "checkpoints"))
    assert not (t.run_dir / "tracking" / "end.json").exists()
    assert tracking_cli(["sync", str(t.run_dir)]) == 0  # again: nothing left, nothing sent twice
    assert sorted(p["step"] for p in server.history(rid, "disc/demo_logit")) == [1, 2, 3]


@pytest.mark.slow
def test_training_that_raises_ends_failed_with_the_error(server, tmp_path):
    def boom(epoch, frame, m):
        if epoch == 2:
            raise RuntimeError("boom at epoch 2")

    t, session = tracked(tmp_path, server.url, "t-failed", "max_iterations=5", observers=[boom])
    with pytest.raises(RuntimeError, match="boom at epoch 2"):
        train_mod.run_training(t, session)
    (run_info,) = server.runs("t-failed")
    run = server.run(run_info["info"]["run_id"])
    assert run["info"]["status"] == "FAILED"
    assert tags_of(run)["error"] == "RuntimeError: boom at epoch 2"
    assert [p["step"] for p in server.history(run["info"]["run_id"], "disc/agent_logit")] == [1]


@pytest.mark.slow
def test_sigterm_ends_the_run_killed(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    p = start_training(
        tmp_path, *BASE, "max_iterations=100000", f"tracking.uri={server.url}", "tracking.experiment=t-sigterm", env=env
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True).start()
    out = []
    try:
        deadline = time.monotonic() + 90
        while not any(x.startswith("epoch     2 ") for x in out):  # epoch 1 went through every observer
            assert time.monotonic() < deadline and p.poll() is None, "".join(out)[-3000:]
            try:
                out.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
    time.sleep(0.2)
    while not lines.empty():
        out.append(lines.get())
    assert rc == 143, "".join(out)[-3000:]
    (run_info,) = server.runs("t-sigterm")
    run = server.run(run_info["info"]["run_id"])
    assert run["info"]["status"] == "KILLED" and run["info"].get("end_time")
    tags = tags_of(run)
    assert tags["stop_reason"] == "SIGTERM"
    assert "max_iterations=100000" in tags["command"] and "train.py" in tags["command"]
    steps = [p["step"] for p in server.history(run["info"]["run_id"], "disc/demo_logit")]
    assert 1 in steps and len(steps) == len(set(steps))
    # the epoch it stopped at is checkpointed (save_frequency 50 would have kept none), locally and in MLflow
    last = max(steps)
    (ckpt,) = list(tmp_path.glob(f"runs/*/nn/HumanoidAMP_{last}.pth"))
    assert torch.load(ckpt, weights_only=True)["epoch"] == last
    assert tags["checkpoint.latest_epoch"] == str(last) and "stopping after epoch" in "".join(out)
    # the command line's own overrides (Hydra's), compared with the task's defaults
    assert params_of(run) == {**BASE_PARAMS, "max_iterations": "100000"}


@pytest.mark.slow
def test_unreachable_store_at_start_stops_before_the_simulator(tmp_path, capsys):
    from tracking import TrackingUnavailableError

    dead = f"http://127.0.0.1:{free_port()}"
    t = train_mod.Trainer(make_cfg(f"tracking.uri={dead}"), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(TrackingUnavailableError, match=f"tracking store {dead} cannot be reached"):
        train_mod.open_tracking(t)
    assert t.agent is None and not (tmp_path / "runs").exists()

    # the command line: one error naming the URI, exit 2, nothing built or written
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run(
        [sys.executable, str(REPO / "isaacgymenvs" / "train.py"), *BASE, f"tracking.uri={dead}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and f"tracking store {dead} cannot be reached" in errors[0]
    assert "build mlp" not in r.stdout and not (tmp_path / "runs").exists()

    # tracking.required=false: goes on without tracking and says so
    t = train_mod.Trainer(
        make_cfg(f"tracking.uri={dead}", "tracking.required=false", "max_iterations=1"), runs_dir=str(tmp_path / "runs")
    )
    session = train_mod.open_tracking(t)
    assert not session.enabled
    assert "training goes on WITHOUT tracking" in capsys.readouterr().err
    last = train_mod.run_training(t, session)
    assert last == t.run_dir / "nn" / f"{t.train_cfg['name']}_1.pth" and last.is_file()  # trained, saved
    assert not (t.run_dir / "tracking").exists()


@pytest.mark.slow
def test_embedded_sqlite_default_and_env_override(tmp_path, monkeypatch):
    """No server: sqlite:///<AMP_MLRUNS_DIR>/mlflow.db, artifacts beside it; MLFLOW_TRACKING_URI wins."""
    from tracking.store import default_artifact_root, default_uri, resolve_uri

    assert default_uri() == f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').resolve()}"
    assert resolve_uri("") == default_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert resolve_uri("") == "http://example.invalid:5000" and resolve_uri("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    t = train_mod.Trainer(make_cfg("max_iterations=2", "tracking.experiment=t-sqlite"), runs_dir=str(tmp_path / "runs"))
    session = train_mod.open_tracking(t)
    train_mod.run_training(t, session)
    db = sqlite3.connect(tmp_path / "mlruns" / "mlflow.db")
    try:
        (status,) = db.execute("select status from runs where run_uuid = ?", (session.run_id,)).fetchone()
        steps = db.execute(
            "select step from metrics where run_uuid = ? and key = 'disc/demo_logit' order by step", (session.run_id,)
        ).fetchall()
        n_params = db.execute("select count(*) from params where run_uuid = ?", (session.run_id,)).fetchone()[0]
    finally:
        db.close()
    assert status == "FINISHED" and [s for (s,) in steps] == [1, 2] and n_params == len(BASE_PARAMS) + 1
    art = default_artifact_root() / "t-sqlite" / session.run_id / "artifacts"
    assert {p.name for p in art.iterdir()} == {"config.yaml", "curves.png", "checkpoints"}
    assert {p.name for p in (art / "checkpoints").iterdir()} == {"latest.pth", "best.pth"}


def test_tracking_none_never_touches_a_store(tmp_path):
    t = train_mod.Trainer(make_cfg("tracking=none", "tracking.uri=http://127.0.0.1:1"), runs_dir=str(tmp_path / "runs"))
    assert not train_mod.open_tracking(t).enabled


def test_spool_keeps_order_and_survives_a_restart(tmp_path):
    from tracking.spool import Spool

    s = Spool(tmp_path / "spool.jsonl")
    for seq in (1, 2, 3):
        s.add({"seq": seq, "step": seq + 10, "ts": 1000 + seq, "metrics": {"a": float(seq), "n": float("nan")}})
    s.ack(1)
    s2 = Spool(tmp_path / "spool.jsonl")  # a new process reads what is still pending
    assert [r["seq"] for r in s2.pending] == [2, 3] and s2.acked_seq == 1
    assert math.isnan(s2.pending[0]["metrics"]["n"]) and s2.pending[0]["ts"] == 1002
    s2.ack(2, rejected="bad value")
    assert [r["seq"] for r in Spool(tmp_path / "spool.jsonl").pending] == [3]
    with pytest.raises(AssertionError):
        s2.ack(7)  # acks come oldest first


def test_params_are_the_seed_the_changed_settings_and_the_point():
    from tracking.params import run_params

    changed = {
        "num_envs": 16,
        "train.params.config.bounds_loss_coef": 7,
        "train.params.network.mlp.units": [64, 64],
        "train.params.network.rnn": {"name": "lstm", "units": 8},
        "tracking.uri": "http://u:secret@h:5000",  # where it is recorded: never a param
        "experiment": "mine",
        "checkpoint": "http://alice:pw@host/x.pth",
        "long": "x" * 7000,
        "bad key!": 1,
        "train.params.config.save_frequency": "<deleted>",
    }
    point = {"train.params.config.bounds_loss_coef": 10, "sigma": "learned", "seed": 43}
    p = run_params({"seed": 42, "sigma": "fixed"}, changed, point)
    assert p == {
        "seed": "43",  # the point's
        "num_envs": "16",
        "train.params.config.bounds_loss_coef": "10",  # the point wins over the shared override
        "train.params.network.mlp.units": "[64, 64]",
        "train.params.network.rnn": "{name: lstm, units: 8}",
        "checkpoint": "http://alice:***@host/x.pth",
        "long": "x" * 5997 + "...",  # MLflow's 6000 characters
        "bad key_": "1",
        "train.params.config.save_frequency": "<deleted>",
        "sigma": "learned",
    }
    assert run_params({"seed": 5}) == {"seed": "5"}  # a run that changed nothing


def test_changed_settings_of_a_command_line_are_its_overrides_without_twins():
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from isaacgymenvs.utils.hydra_config import DELETED, changed_settings, compose

    line = [
        "task=HumanoidAMP",
        "num_envs=16",
        "max_iterations=4",
        "train.params.config.bounds_loss_coef=7",
        "train.params.config.horizon_length=16",  # the default: no change
        "train.params.config.gamma=0.990",  # the default, written otherwise
        "train.params.config.disc_grad_penalty=5.0",  # 5 in the file: the same number
        "headless=1",  # False in the file: 1 is another setting (True and 1 differ)
        "sigma=learned",
        "train.params.network.mlp.units=[64,64]",
        "~train.params.config.save_frequency",
        "+train.params.network.rnn={name: lstm, units: 8, layers: 1}",
    ]
    cfg = compose(line)
    assert cfg.task.env.numEnvs == 16 and cfg.train.params.config.max_epochs == 4  # they follow, and are not listed
    assert changed_settings(cfg, line) == {
        "headless": 1,
        "max_iterations": 4,
        "num_envs": 16,
        "sigma": "learned",
        "train.params.config.bounds_loss_coef": 7,
        "train.params.config.save_frequency": DELETED,
        "train.params.network.mlp.units": [64, 64],
        "train.params.network.rnn.layers": 1,
        "train.params.network.rnn.name": "lstm",
        "train.params.network.rnn.units": 8,
    }
    # another task or train config is the base, not a change
    for groups in (["task=G1AMP"], ["task=HumanoidAMP", "train=HumanoidAMPPPOLowGP"]):
        assert changed_settings(compose(groups), groups) == {}, groups
    low_gp = ["train=HumanoidAMPPPOLowGP", "train.params.config.disc_grad_penalty=0.2"]  # its own value: no change
    assert changed_settings(compose(low_gp), low_gp) == {}
    # a Trainer given its config only (from Python) compares with its task's defaults
    t = train_mod.Trainer(compose(BASE + ["max_iterations=2"]), runs_dir="unused")
    assert t.overrides is None and t.changed_settings() == changed_settings(t.cfg, BASE + ["max_iterations=2"])
    # composing inside an application's Hydra (train.py's @hydra.main) leaves it as it was
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        app = GlobalHydra.instance().hydra
        compose(["task=G1AMP"])
        assert GlobalHydra.instance().hydra is app
    assert not GlobalHydra.instance().is_initialized()


@pytest.mark.slow
def test_session_batches_per_epoch_and_uploads_artifacts_at_most_every_n_epochs(tmp_path):
    """The session over a recording Tracker (the Tracker seam's null implementation, subclassed)."""
    from tracking import NullTracker, TrackingSession

    class Recording(NullTracker):
        def __init__(self):
            self.calls = []

        def start_run(self, run_name, tags):
            return "run-1"

        def log_metrics(self, step, metrics, timestamp_ms):
            self.calls.append(("metrics", step, len(metrics)))

        def log_artifact(self, local_path, artifact_path=None):
            self.calls.append(("artifact", f"{artifact_path or ''}/{Path(local_path).name}"))

        def end_run(self, status):
            self.calls.append(("end", status))

    rec = Recording()
    s = TrackingSession(rec, {"artifact_every": 3})
    s.enabled = True  # a NullTracker subclass stands in for a real store here
    run_dir = tmp_path / "run"
    (run_dir / "nn").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("a: 1\n")
    s.start(run_dir, {"task": {"name": "T"}, "train": {"params": {"config": {"horizon_length": 16}}}})
    uploads_at = []
    for e in range(1, 11):
        n_before = sum(c[0] == "artifact" for c in rec.calls)
        s.on_epoch(e, e * 100, {f"k{i}": float(e + i) for i in range(40)})
        s.flush()  # sends happen on the session's thread; wait for this epoch's
        if sum(c[0] == "artifact" for c in rec.calls) > n_before:
            uploads_at.append(e)
        ck = run_dir / "nn" / f"T_{e}.pth"
        ck.write_bytes(b"x" * e)
        s.on_checkpoint(ck, "epoch")
        if e % 2:
            (run_dir / "nn" / "T_best.pth").write_bytes(b"b" * e)
            s.on_checkpoint(run_dir / "nn" / "T_best.pth", "best")
    s.end("FINISHED")
    assert [c for c in rec.calls if c[0] == "metrics"] == [
        ("metrics", e, 40) for e in range(1, 11)
    ]  # one batch per epoch
    assert uploads_at == [3, 6, 9]  # at most every 3 epochs (the checkpoints written before that epoch)
    arts = [c[1] for c in rec.calls if c[0] == "artifact"]
    assert arts[0] == "/config.yaml" and arts[-3:] == ["checkpoints/latest.pth", "checkpoints/best.pth", "/curves.png"]
    assert rec.calls[-1] == ("end", "FINISHED")
    assert (run_dir / "tracking" / "upload" / "latest.pth").read_bytes() == b"x" * 10


@pytest.mark.slow
def test_sender_process_killed_mid_run_loses_nothing_and_never_outlives_training(tmp_path):
    """tracking.sender=process (the default): the MLflow client runs in `python -m tracking.worker`.
    A worker killed between epochs costs nothing: the epoch is spooled, a new worker attaches to the
    same run and every epoch reaches the store once. The worker exits when the training process dies."""
    from tracking import open_session

    uri = f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"
    config = {
        "task": {"name": "T"},
        "tracking": {"uri": uri, "experiment": "proc", "artifact_every": 0},
        "train": {"params": {"config": {"horizon_length": 16}}},
    }
    s = open_session(config)
    assert type(s.tracker).__name__ == "ProcessTracker"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    s.start(run_dir, config)
    for e in range(1, 7):
        if e == 4:
            s.flush()
            os.kill(s.tracker._proc.pid, signal.SIGKILL)
            s.tracker._proc.wait(timeout=10)
        s.on_epoch(e, e * 10, {"disc/demo_logit": float(e), "disc/agent_logit": -float(e)})
    s.end("FINISHED")
    assert s.tracker.restarts == 1 and s.tracker._proc is None  # end() closed the worker
    db = sqlite3.connect(tmp_path / "db" / "mlflow.db")
    try:
        steps = db.execute(
            "select step, value from metrics where run_uuid = ? and key = 'disc/demo_logit' order by step", (s.run_id,)
        ).fetchall()
        (status,) = db.execute("select status from runs where run_uuid = ?", (s.run_id,)).fetchone()
    finally:
        db.close()
    assert steps == [(e, float(e)) for e in range(1, 7)] and status == "FINISHED"

    # SIGKILL of the training process: its worker sees stdin close and exits
    code = (
        "import sys,os; sys.path.insert(0, %r); from tracking.remote import ProcessTracker; "
        "t = ProcessTracker(%r); t.connect('orphan'); print(t._proc.pid, flush=True); os.kill(os.getpid(), 9)"
    )
    p = subprocess.run([sys.executable, "-c", code % (str(REPO), uri)], capture_output=True, text=True, timeout=120)
    pid = int(p.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the tracking worker outlived the training process")
