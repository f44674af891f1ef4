"""Nothing lost, nothing mixed up, under faults: a tracking outage during a sweep, a store that is
down before a sweep starts, a RAY_ADDRESS where nothing answers, two starts at once (the lock; a
second start of a running sweep, on the credentials test's sweep), credentials in a URI,
half-written exports and bad inputs. A real ``mlflow server`` on its own port and store, a real local Ray, subprocesses bounded
in time (test_sweeps' helpers)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import torch

from sweeps.lock import SweepLock, SweepLocked
from tests.helpers.mlflow_server import free_port, module_server, tags_of
from tests.helpers.sweeping import (
    SWEEP_TIMEOUT_S,
    P,
    children,
    env_for,
    kill_group,
    run_sweep,
    steps,
    sweep_cmd,
    tiny_spec,
)
from tests.helpers.training import TINY, cli, start_training, trainer

pytestmark = pytest.mark.slow  # every test here trains, runs a sweep or a server


def mlp_spec(name: str, epochs: int, points: list[dict], **kw) -> dict:
    spec = tiny_spec(name, epochs, points, **kw)
    spec["overrides"] = [o for o in spec["overrides"] if not o.startswith("train.params.network.rnn")]
    return spec


_server = module_server("faults_mlflow")  # one per module: each test has its own experiment names


@pytest.fixture
def server(_server):
    _server.ensure_running()  # the outage test kills it and starts it again; a failure midway leaves it down
    return _server


def _wait(
    cond, what: str, timeout: float = SWEEP_TIMEOUT_S, proc: subprocess.Popen | None = None, log: Path | None = None
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(
        f"waited for {what}: " + (log.read_text(errors="replace")[-3000:] if log and log.exists() else "")
    )


@contextmanager
def background_sweep(tmp_path, spec, server, name: str = "sweep.log"):
    """``python -m sweeps`` running in its own process group; killed (SIGKILL) if still running at the end."""
    log = tmp_path / name
    with open(log, "wb") as out:
        p = subprocess.Popen(
            sweep_cmd(tmp_path, spec, server),
            cwd=tmp_path,
            env=env_for(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield p, log
        finally:
            if p.poll() is None:
                kill_group(p)


def _kids(server, spec) -> int:
    try:
        return len(children(server, spec)[1])
    except AssertionError:  # the experiment is not there yet
        return 0


# ------------------------------------------------------------------ a tracking outage during a sweep
def test_a_sweep_through_a_tracking_outage_loses_nothing(tmp_path, server):
    """The store dies while trial 1 trains and stays down while trial 2 starts, trains and ends, and
    while the driver writes its results. Nothing crashes (exit 0, the table from Tune's results);
    when the store is back, `make sweep RESUME=1` sends everything: trial 2's run is created with
    every epoch exactly once and its curves, and the parent run gets its results."""
    spec = mlp_spec("outage", epochs=4, points=P[:2], max_concurrent_trials=1)
    spec["overrides"] = spec["overrides"] + ["tracking.probe_every_s=1", "tracking.end_timeout_s=3"]
    with background_sweep(tmp_path, spec, server) as (p, log):
        _wait(lambda: _kids(server, spec) == 1, "trial 1's run", proc=p, log=log)
        server.kill()
        work = tmp_path / "out" / "outage" / "trials"  # sweeps.trial.trial_work_root
        spools = lambda: [s for s in work.glob("*/runs/*/tracking/spool.jsonl") if s.stat().st_size]  # noqa: E731
        _wait(lambda: p.poll() is not None, "the sweep's end", proc=None, log=log)
    first = log.read_text(errors="replace")
    assert p.returncode == 0, first[-4000:]
    assert "configurations by mean eval/score" in first and "Traceback" not in first.split("configurations by mean")[1]
    assert "the tracking store did not answer" in first and "RESUME=1" in first
    assert spools(), "trial 2 kept its epochs on disk"
    server.start()  # the same port and store
    r = run_sweep(tmp_path, spec, server, "--resume")
    assert r.returncode == 0, r.stdout[-4000:]
    parents, kids = children(server, spec)
    assert len(parents) == 1 and parents[0]["info"]["status"] == "FINISHED"
    assert {"results.json", "results.txt"} <= set(server.artifacts(parents[0]["info"]["run_id"]))
    assert len(kids) == 2
    for k in kids:
        assert k["info"]["status"] == "FINISHED", k["tags"]
        assert steps(server, k) == [1, 2, 3, 4], k["tags"]["ray_trial_id"]  # every epoch, once
        assert "curves.png" in server.artifacts(k["info"]["run_id"])


def test_make_sweep_refuses_in_one_line_while_the_store_is_down_and_moves_nothing(tmp_path):
    spec = mlp_spec("down", epochs=2, points=P[:1])
    old = tmp_path / "out" / "down"
    old.mkdir(parents=True)
    (old / "sweep.json").write_text("{}")
    f = tmp_path / "down.yaml"
    import yaml

    f.write_text(yaml.safe_dump(spec))
    dead = f"http://127.0.0.1:{free_port()}"
    r = subprocess.run(
        [sys.executable, "-m", "sweeps", str(f), "--storage", str(tmp_path / "out"), "--tracking-uri", dead],
        cwd=tmp_path,
        env=env_for(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and dead in r.stderr and "does not answer" in r.stderr, (
        r.stderr
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["down"] and (old / "sweep.json").read_text() == "{}"


def test_a_ray_address_where_nothing_answers_is_one_line_and_moves_nothing(tmp_path, server):
    """RAY_ADDRESS naming a port nobody listens on (a head that was stopped, a typo): one line that
    names the address and the fix, within seconds (ray.init alone retries ~30 s, then a traceback);
    the previous sweep's folder stays, no parent run is created."""
    spec = mlp_spec("noray", epochs=1, points=P[:1])
    old = tmp_path / "out" / "noray"
    old.mkdir(parents=True)
    (old / "sweep.json").write_text("{}")
    for address, why in ((f"127.0.0.1:{free_port()}", "nothing answers there"), ("127.0.0.1", "not host:port")):
        t0 = time.monotonic()
        r = subprocess.run(
            sweep_cmd(tmp_path, spec, server),
            cwd=tmp_path,
            env=env_for({"RAY_ADDRESS": address}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stdout[-2000:] + r.stderr[-2000:]
        assert f"RAY_ADDRESS={address}: {why}" in r.stderr and "unset RAY_ADDRESS" in r.stderr, r.stderr
        assert time.monotonic() - t0 < 25  # ray.init alone: ~30 s of retries
    assert (
        sorted(p.name for p in (tmp_path / "out").iterdir()) == ["noray"] and (old / "sweep.json").read_text() == "{}"
    )
    got = requests.get(
        f"{server.url}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": spec["experiment"]},
        timeout=10,
    )
    assert got.status_code == 404 or server.runs(spec["experiment"]) == []  # no parent run


# ------------------------------------------------------------------ two starts at once
def test_a_second_start_of_the_same_sweep_refuses_naming_the_holder(tmp_path):
    lock = SweepLock(tmp_path, "same").acquire()
    try:
        with pytest.raises(SweepLocked, match=rf"already running .*host {socket.gethostname()}, pid {os.getpid()}"):
            SweepLock(tmp_path, "same").acquire()
    finally:
        lock.release()
    # a stale lock (its process is gone) is taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "stale.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": "then"}))
    taken = SweepLock(tmp_path, "stale").acquire()
    assert json.loads((tmp_path / "stale.lock").read_text())["pid"] == os.getpid()
    taken.release()
    assert not (tmp_path / "stale.lock").exists()


def test_trainings_started_in_the_same_second_get_their_own_run_folders(tmp_path):
    from isaacgymenvs import train as train_mod
    from tests.helpers.training import make_cfg

    t = train_mod.Trainer(make_cfg(*[o for o in TINY]), runs_dir=str(tmp_path / "runs"))
    names = []
    threads = [threading.Thread(target=lambda: names.append(t._make_run_dir())) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(names)) == 6 and all((tmp_path / "runs" / n).is_dir() for n in names)


def test_a_fresh_sqlite_store_is_created_once_by_concurrent_starts(tmp_path):
    db = tmp_path / "fresh" / "mlflow.db"
    code = (
        "import sys; from tracking import sweep_runs; "
        f"sweep_runs.tracker('sqlite:///{db}', 'exp_' + sys.argv[1]); print('ok')"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(i)],
            env=env_for(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(3)
    ]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all(o.strip().endswith("ok") for o in outs)


# ------------------------------------------------------------------ credentials
def test_credentials_in_a_tracking_uri_are_written_and_printed_nowhere_and_a_second_start_refuses(tmp_path, server):
    secret = "s3cret-pw-42"
    uri = server.url.replace("http://", f"http://alice:{secret}@")
    r = cli(tmp_path, "max_iterations=2", "tracking=mlflow", f"tracking.uri={uri}", "tracking.experiment=creds")
    assert r.returncode == 0, r.stderr[-3000:]
    assert secret not in r.stdout + r.stderr
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert secret not in (run_dir / "config.yaml").read_text()
    (run,) = server.runs("creds")
    full = server.run(run["info"]["run_id"])
    assert secret not in json.dumps(full) and "alice:***@" in tags_of(full)["command"]
    assert all(secret not in p.read_text(errors="replace") for p in (server.root / "artifacts").rglob("*.yaml"))
    # a sweep: its console, state file (readable by its owner only) and runs; a second start of it
    # while it runs refuses in one line naming the holder (and not the secret)
    spec = mlp_spec("creds_sweep", epochs=3, points=P[:1])
    f = tmp_path / "creds_sweep.yaml"
    import yaml

    f.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in env_for().items() if not k.startswith("MLFLOW_TRACKING_")}
    cmd = [sys.executable, "-m", "sweeps", str(f), "--storage", str(tmp_path / "out"), "--tracking-uri", uri]
    log = tmp_path / "creds_sweep.log"
    with open(log, "wb") as out:
        p = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            lock = tmp_path / "out" / "creds_sweep.lock"
            _wait(lambda: lock.exists(), "the first sweep's lock", proc=p, log=log)
            r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
            assert f"pid {p.pid}" in r.stderr and "already running" in r.stderr, r.stderr
            assert secret not in r.stdout + r.stderr
            assert p.wait(timeout=SWEEP_TIMEOUT_S) == 0, log.read_text(errors="replace")[-3000:]
        finally:
            if p.poll() is None:
                kill_group(p)
    assert not lock.exists()
    assert secret not in log.read_text(errors="replace")
    state = tmp_path / "out" / "creds_sweep" / "sweep.json"
    assert secret not in state.read_text() and stat.S_IMODE(state.stat().st_mode) == 0o600
    assert secret not in (tmp_path / "out" / "creds_sweep.sweep.yaml").read_text()
    parents, kids = children(server, spec)
    assert len(parents) == 1 and kids  # the refused second start created no parent run
    assert secret not in json.dumps([server.run(x["info"]["run_id"]) for x in parents + kids])


# ------------------------------------------------------------------ exports and bad inputs
def _export(*args):
    return subprocess.run(
        [sys.executable, "-m", "isaacgymenvs.export", *map(str, args)],
        env=env_for(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_failed_export_leaves_the_previous_export_whole(tmp_path):
    ckpt = trainer(tmp_path, "max_iterations=1", "train.params.config.eval_envs=0").train()
    out = tmp_path / "export"
    assert _export(f"checkpoint={ckpt}", f"out={out}").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = torch.load(ckpt, weights_only=True)
    bad["meta"]["network"]["mlp"]["units"] = [32, 32]  # another network shape than its weights
    torch.save(bad, tmp_path / "shape.pth")
    r = _export(f"checkpoint={tmp_path / 'shape.pth'}", f"out={out}")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "do not fit its own network description" in r.stderr, (
        r.stderr
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched, nothing mixed in
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".export")] == []  # no temporary folder left


def test_bad_inputs_are_one_line_errors(tmp_path):
    # a malformed sweep file, a count that is not a number, a negative size: before Ray starts
    for text, what in (
        ("name: bad\nspace:\n  x: {grid: [1, 2]\n", "is not valid YAML"),
        ("name: bad\nnum_samples: two\n", "num_samples: must be a whole number"),
        (
            "name: bad\noverrides: [task=HumanoidAMP, num_envs=-8]\npoints: [{sigma: fixed}]\n",
            "num_envs: must be at least 1, got -8",
        ),
    ):
        f = tmp_path / "bad.yaml"
        f.write_text(text)
        r = subprocess.run(
            [sys.executable, "-m", "sweeps", str(f), "--check"],
            env=env_for(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and what in r.stderr, r.stderr
    # train.py on an untrusted pickle names its own key, not --trust
    from isaacgymenvs import assets

    src = assets.asset_path("amp_humanoid/motions/amp_humanoid_walk.npy")
    copy = tmp_path / "mine.npy"
    data = bytearray(src.read_bytes())
    data[-1] ^= 1  # another checksum than the pinned clip's
    copy.write_bytes(bytes(data))
    r = cli(tmp_path, "max_iterations=1", f"task.env.motion_file={copy}")
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert (
        r.returncode == 2 and len(err) == 1 and "task.env.motion_trust=True" in err[0] and "pass --trust" not in err[0]
    ), r.stderr


def test_sync_closes_a_run_whose_process_is_gone(tmp_path, server):
    """A training SIGKILLed mid-run leaves its run RUNNING; `python -m tracking sync RUN` (no flags)
    sees that its process is gone from this host and closes it KILLED."""
    env = dict(env_for(), PYTHONUNBUFFERED="1")
    args = [a for a in TINY if a != "tracking=none"]
    p = start_training(
        tmp_path, *args, "max_iterations=100000", f"tracking.uri={server.url}", "tracking.experiment=killed", env=env
    )
    try:
        _wait(lambda: list(tmp_path.glob("runs/*/tracking/run.json")) and server.runs("killed"), "the run", proc=p)
        time.sleep(2)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    (run_dir,) = [d.parent.parent for d in tmp_path.glob("runs/*/tracking/run.json")]
    assert server.runs("killed")[0]["info"]["status"] == "RUNNING"
    r = subprocess.run(
        [sys.executable, "-m", "tracking", "sync", str(run_dir)],
        env=env_for(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    run = server.run(server.runs("killed")[0]["info"]["run_id"])
    assert run["info"]["status"] == "KILLED" and "is gone" in tags_of(run)["stop_reason"]


def test_sync_closes_the_runs_of_a_killed_sweep(tmp_path, server):
    """SIGKILL of a sweep's whole process group leaves its parent and child runs RUNNING;
    `python -m tracking sync --sweep NAME` closes them KILLED (their processes are gone), and the
    stale lock does not stop a resume."""
    spec = mlp_spec("sigkill", epochs=50, points=P[:1])
    with background_sweep(tmp_path, spec, server) as (p, log):
        _wait(
            lambda: _kids(server, spec) == 1 and steps(server, children(server, spec)[1][0]),
            "a trial's epochs",
            proc=p,
            log=log,
        )
        kill_group(p)  # SIGKILL to the driver and its Ray workers
    time.sleep(3)  # Ray's own processes notice their driver is gone
    parents, kids = children(server, spec)
    assert parents[0]["info"]["status"] == "RUNNING" and kids[0]["info"]["status"] == "RUNNING"
    assert (tmp_path / "out" / "sigkill.lock").exists()
    r = subprocess.run(
        [sys.executable, "-m", "tracking", "sync", "--sweep", "sigkill", "--storage", str(tmp_path / "out")],
        env=env_for(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    parents, kids = children(server, spec)
    assert kids[0]["info"]["status"] == "KILLED" and "is gone" in kids[0]["tags"]["stop_reason"]
    assert parents[0]["info"]["status"] == "KILLED" and "RESUME=1" in parents[0]["tags"]["stop_reason"]
    lock = SweepLock(tmp_path / "out", "sigkill").acquire()  # stale: taken over
    lock.release()


def test_promote_of_a_checkpoint_that_does_not_fit_is_one_line(tmp_path, server, monkeypatch, capsys):
    from sweeps.promote import main as promote_main
    from tests.helpers.sweeping import fake_sweep

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ckpt = trainer(tmp_path, "max_iterations=1", "train.params.config.eval_envs=0").train()
    bad = torch.load(ckpt, weights_only=True)
    bad["meta"]["network"]["mlp"]["units"] = [32, 32]
    torch.save(bad, tmp_path / "shape.pth")
    fake_sweep(server, tmp_path / "out", "shape", [(0.1, "FINISHED", tmp_path / "shape.pth")], tmp_path)
    capsys.readouterr()
    assert promote_main([f"storage={tmp_path / 'out'}", "sweep=shape"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "do not fit its own network description" in err[-1]
    assert "nothing registered, champion unchanged" in err[-1] and not any("Traceback" in ln for ln in err)
