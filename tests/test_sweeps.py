"""Sweeps (Ray Tune) against a real ``mlflow server`` on 127.0.0.1: the check of the space, a small
CPU sweep, resume after Ctrl+C without duplicate runs or steps, and a two-node Ray cluster on this
machine (failing and diverged trials: test_sweep_decisions.py).

Every sweep runs as ``python -m sweeps FILE`` in a subprocess (its own local Ray, or RAY_ADDRESS), so a
hung Ray cannot hang pytest: every wait is bounded and every process group is killed at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from isaacgymenvs.learning.config_check import ConfigError
from sweeps import space
from tests.helpers.mlflow_server import free_port, module_server  # the real `mlflow server` on 127.0.0.1
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

pytestmark = pytest.mark.slow  # every test here trains, runs a sweep or a server
REPO = Path(__file__).resolve().parents[1]
CHILD_KEYS = (
    "disc/agent_logit",
    "disc/agent_replay_logit",
    "disc/demo_logit",
    "reward/disc",
    "rollout/motion_nn_dist",
    "rollout/fall_rate",
    "eval/score",
    "eval/fall_rate",
)
DIMS = (
    "train.params.config.bounds_loss_coef",
    "train.params.config.horizon_length",
    "sigma",
    "train.params.config.seq_len",
)
#: What tiny_spec's shared overrides (lstm_cpu's, max_iterations=2, eval_every=1) change from
#: HumanoidAMP's defaults, by hand: with its point and seed, a trial's params
SHARED_PARAMS = {
    "headless": "True",
    "max_iterations": "2",
    "num_envs": "16",
    "train.params.config.amp_batch_size": "256",
    "train.params.config.amp_minibatch_size": "128",
    "train.params.config.amp_obs_demo_buffer_size": "2048",
    "train.params.config.amp_replay_buffer_size": "4096",
    "train.params.config.eval_agent_size": "128",
    "train.params.config.eval_envs": "16",
    "train.params.config.eval_every": "1",
    "train.params.config.eval_ref_size": "512",
    "train.params.config.minibatch_size": "128",
    "train.params.config.save_frequency": "0",
    "train.params.network.disc.units": "[64, 64]",
    "train.params.network.mlp.units": "[64, 64]",
    "train.params.network.rnn.before_mlp": "False",
    "train.params.network.rnn.layers": "1",
    "train.params.network.rnn.name": "lstm",
    "train.params.network.rnn.units": "32",
}
#: The quiet console (sweeps/console.py): the start, one line per report, one per trial end; then the table
START_LINE = re.compile(
    r"sweep \w+: \d+ trial\(s\), \d+ at a time; MLflow experiment '[^']+', parent run \w{32}; storage \S+"
)
REPORT_LINE = re.compile(
    r"trial (?P<label>[\w.-]+) \((?P<id>\w+_\d{5})\): epoch (?P<epoch>\d+), (?P<steps>\d+) env steps, "
    r"eval/score (?P<score>[-+\d.e]+|nan), eval/fall_rate \d\.\d\d"
)
END_LINE = re.compile(r"trial (?P<label>[\w.-]+) \((?P<id>\w+_\d{5})\) ended (?P<status>OK|STOPPED|FAILED|ERROR): .+")
#: What Ray prints itself (its tables, its warnings, the workers' lines): never in a quiet sweep
RAY_NOISE = (
    "Trial status",
    "╭",
    "│",
    "Current time",
    "WARNING",
    "(run_trial pid=",
    "Checkpoint successfully",
    "tracking: ",
)


def console_before_table(out: str) -> list[str]:
    """The console lines before the final table (its header line), blank lines dropped."""
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("trial ") and " status " in ln and "params" in ln)
    return [ln for ln in lines[:head] if ln.strip()]


server = module_server("sweep_mlflow")


# ---------------------------------------------------------------------------------------------- no Ray
def test_search_space_check_lists_every_bad_combination():
    spec = space.normalize(
        {
            "name": "bad",
            "overrides": space.load("lstm_cpu")["overrides"],
            "space": {
                "train.params.config.horizon_length": {"grid": [16, 20]},
                "train.params.config.seq_len": {"grid": [4, 3]},
            },
        }
    )
    with pytest.raises(ConfigError) as e:
        space.check_spec(spec)
    msg = str(e.value)
    # 2 x 2 grid: (16,4) fine; (16,3): seq_len; (20,4): minibatch; (20,3): minibatch and seq_len
    assert "{'train.params.config.horizon_length': 16, 'train.params.config.seq_len': 4}" not in msg
    assert msg.count("minibatch_size (128) must divide num_envs x horizon_length (16 x 20 = 320)") == 2
    assert msg.count("seq_len (3) must divide horizon_length (16)") == 1
    assert msg.count("seq_len (3) must divide horizon_length (20)") == 1
    assert len(e.value.problems) >= 4

    spec["space"]["train.params.config.bogus_key"] = {"grid": [1]}
    spec["space"]["sigma"] = {"between": [1, 2]}
    spec["scheduler"] = "pbt"
    spec["pbt_mutations"] = {"train.params.config.horizon_length": {"grid": [16, 32]}}
    spec["colour"] = "red"
    with pytest.raises(ConfigError) as e:
        space.check_spec(spec)
    msg = str(e.value)
    assert "colour: unknown sweep key" in msg
    assert "space.sigma: must be one of" in msg
    assert "pbt_mutations.train.params.config.horizon_length: PBT can only mutate" in msg and "structural" in msg

    spec = space.normalize(
        {
            "name": "bad2",
            "overrides": ["num_envs=16"],
            "points": [{"train.params.config.bogus_key": 1}, {"train.params.config.bounds_los_coef": 2}],
        }
    )
    with pytest.raises(ConfigError) as e:
        space.check_spec(spec)
    assert "space.train.params.config.bogus_key: unknown config key" in str(e.value)
    assert "space.train.params.config.bounds_los_coef: unknown config key" in str(e.value)


def test_the_shipped_sweeps_pass_their_check():
    assert len(space.check_spec(space.load("default"))) == 4
    combos = space.check_spec(space.load("humanoid_gpu"))
    assert len(combos) == 8 and {tuple(sorted(c)) for c in combos} == {tuple(sorted(DIMS))}
    g1 = space.check_spec(space.load("g1_gpu"))
    assert len(g1) == 16 and {c["train.params.config.disc_grad_penalty"] for c in g1} == {5, 10}
    # every sweep file in cfg/sweep (the measured GPU studies too) composes all its points, and its
    # name is its file's: results land in sweeps_out/<name>, where the benchmarks read them
    for f in sorted((REPO / "cfg" / "sweep").glob("*.yaml")):
        spec = space.load(f.stem)
        assert spec["name"] == f.stem and space.check_spec(spec), f.name


def test_cli_check_fails_before_ray_starts(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({"overrides": ["num_envs=16"], "points": [{"train.params.config.horizon_length": 20}]}))
    r = subprocess.run(
        [sys.executable, "-m", "sweeps", str(f), "--storage", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env_for(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "must divide num_envs x horizon_length" in r.stderr
    assert not (tmp_path / "out").exists()  # nothing started


# ---------------------------------------------------------------------------------------------- sweeps
def test_cpu_sweep_parent_and_child_runs_and_the_table_over_seeds(tmp_path, server):
    """Two configurations x two seeds (four trials, ASHA with nothing to stop): the quiet console,
    one parent run and a child run per trial with its point, seed and config; the per-configuration
    table (mean and spread over the seeds) and what each dimension did, on the console and the parent."""
    spec = tiny_spec("small", epochs=2, points=P[:2], scheduler="asha", asha={"grace_period": 2}, seeds=2)
    r = run_sweep(tmp_path, spec, server)
    assert r.returncode == 0, r.stdout[-4000:]
    assert "best configuration:" in r.stdout and "mlflow run id" in r.stdout
    # the console: the start line, one line per report (4 trials x 2 epochs), one per trial end
    lines = console_before_table(r.stdout)
    assert START_LINE.fullmatch(lines[0]) and "sweep small: 4 trial(s), 2 at a time;" in lines[0], lines[0]
    reports = [m for m in map(REPORT_LINE.fullmatch, lines[1:]) if m]
    ends = [m for m in map(END_LINE.fullmatch, lines[1:]) if m]
    assert len(reports) + len(ends) == len(lines) - 1, "\n".join(lines)  # nothing else
    labels = [f"{c}-s{seed}" for c in ("blc1-h16-learned-sl8", "blc10-h16-fixed-sl4") for seed in (42, 43)]
    assert sorted((m["label"], int(m["epoch"]), int(m["steps"])) for m in reports) == [
        (label, e, 256 * e) for label in labels for e in (1, 2)
    ]
    assert (
        sorted(m.group(0).split(") ", 1)[1] for m in ends)
        == ["ended OK: finished: its whole budget (512 env steps, 2 epochs)"] * 4
    )
    assert not [ln for ln in r.stdout.splitlines() if any(n in ln for n in RAY_NOISE)], r.stdout[-4000:]
    parents, kids = children(server, spec)
    assert len(parents) == 1 and len(kids) == 4 and parents[0]["params"]["trials"] == "4"  # seeds count
    parent = parents[0]
    assert parent["info"]["status"] == "FINISHED"
    assert {k["tags"]["mlflow.parentRunId"] for k in kids} == {parent["info"]["run_id"]}
    for k in kids:
        assert k["info"]["status"] == "FINISHED", k["tags"]
        for key in CHILD_KEYS:
            assert steps(server, k, key) == [1, 2], key
        # its point, its seed and what the shared overrides changed: nothing else, no short twins
        point = next(p for p in P[:2] if str(p["sigma"]) == k["params"]["sigma"])
        seed = k["params"]["seed"]
        assert seed in ("42", "43") and k["params"] == {
            **SHARED_PARAMS,
            **{d: str(point[d]) for d in DIMS},
            "seed": seed,
        }
        assert k["info"]["run_id"] in r.stdout
        # the whole resolved config is the run's config.yaml, the trial's own
        got = requests.get(
            f"{server.url}/get-artifact", params={"path": "config.yaml", "run_uuid": k["info"]["run_id"]}, timeout=10
        )
        (local,) = (tmp_path / "out" / "small" / "trials" / k["tags"]["ray_trial_id"]).glob("runs/*/config.yaml")
        assert got.ok and got.text == local.read_text()
        cfg = yaml.safe_load(got.text)
        assert cfg["train"]["params"]["config"]["bounds_loss_coef"] == point["train.params.config.bounds_loss_coef"]
        assert cfg["sigma"] == point["sigma"] and cfg["seed"] == int(seed) and cfg["task"]["env"]["numEnvs"] == 16
        assert cfg["train"]["params"]["config"]["gamma"] == 0.99  # a default: in the config, not a param
    assert {k["params"]["sigma"] for k in kids} == {"fixed", "learned"}
    arts = server.artifacts(parent["info"]["run_id"])
    assert {"results.txt", "results.json", "small.sweep.yaml", "effects.png", "parallel_coordinates.png"} <= set(arts)
    # names and tags a person can read: the parent by sweep and time, the trials by their values,
    # the user's command (not Ray's worker), why and when each trial stopped
    assert re.fullmatch(r"small-\d{8}-\d{6}", parent["info"]["run_name"]), parent["info"]["run_name"]
    assert sorted(k["info"]["run_name"] for k in kids) == labels
    for run in [parent, *kids]:
        assert run["tags"]["command"].startswith("python -m sweeps ") and "default_worker" not in run["tags"]["command"]
        assert run["tags"]["mlflow.source.name"] == "python -m sweeps"
    for k in kids:
        assert k["tags"]["env_steps"] == "512" and k["tags"]["epochs"] == "2", k["tags"]
        assert k["tags"]["stop_reason"] == "finished: its whole budget (512 env steps, 2 epochs)"
        # like a plain run: curves.png and the checkpoint of its last report, uploaded at each report
        assert k["tags"]["checkpoint.latest_epoch"] == "2", k["tags"]
        assert {"curves.png", "checkpoints"} <= set(server.artifacts(k["info"]["run_id"]))
    exp = server.get("experiments/get-by-name", experiment_name=spec["experiment"])["experiment"]
    assert {t["key"]: t["value"] for t in exp["tags"]}["mlflow.experimentKind"] == "custom_model_development"
    assert f"#/experiments/{exp['experiment_id']}/runs/{parent['info']['run_id']}" in r.stdout  # the UI link

    # the table over seeds: per configuration the mean and spread of its two seeds, and each dimension's effect
    assert "configurations by mean eval/score over their seeds" in r.stdout
    assert "what each dimension did" in r.stdout and "best configuration:" in parent["tags"]["mlflow.note.content"]
    res = json.loads((tmp_path / "out" / "small" / "results.json").read_text())
    configs = res["configurations"]
    assert len(configs) == 2 and all(c["n"] == 2 and sorted(c["seeds"]) == [42, 43] for c in configs)
    by_sigma = {c["params"]["sigma"]: c for c in configs}
    rows = {(row["params"]["sigma"], row["params"]["seed"]): row["metric"] for row in res["rows"]}
    for sigma, c in by_sigma.items():
        vals = [rows[(sigma, 42)], rows[(sigma, 43)]]
        assert c["mean"] == pytest.approx(sum(vals) / 2) and c["std"] == pytest.approx(abs(vals[0] - vals[1]) / 2**0.5)
    eff = {(e["dimension"], str(e["value"])): e for e in res["effects"]}
    d = eff[("sigma", "learned")]
    assert d["diff"] == pytest.approx(by_sigma["learned"]["mean"] - by_sigma["fixed"]["mean"])
    assert d["ci_low"] <= d["diff"] <= d["ci_high"]


def test_resume_after_ctrl_c_continues_the_same_runs(tmp_path, server):
    spec = tiny_spec("resume", epochs=6, points=P[:2])
    log = tmp_path / "first.log"
    out = open(log, "wb")
    p = subprocess.Popen(
        sweep_cmd(tmp_path, spec, server),
        cwd=tmp_path,
        env=env_for(),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SWEEP_TIMEOUT_S
        while time.monotonic() < deadline:  # wait for a checkpoint of epoch 2 of some trial
            if list((tmp_path / "out" / "resume").glob("*/checkpoint_000001")) or p.poll() is not None:
                break
            time.sleep(0.2)
        assert p.poll() is None, log.read_text(errors="replace")[-4000:]
        os.kill(p.pid, signal.SIGINT)  # Ctrl+C to the driver
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            kill_group(p)
    finally:
        if p.poll() is None:
            kill_group(p)
        out.close()
    first = log.read_text(errors="replace")
    assert p.returncode == 130 and "INTERRUPTED" in first and "--resume" in first, first[-3000:]
    parents, kids = children(server, spec)
    assert len(parents) == 1 and len(kids) == 2, first[-3000:]
    done_before = {k["tags"]["ray_trial_id"]: steps(server, k) for k in kids}
    assert any(s != list(range(1, 7)) for s in done_before.values()), "the sweep ended before the interrupt"
    for k in kids:  # the driver closed the interrupted trials' runs, saying how to go on
        if done_before[k["tags"]["ray_trial_id"]] != list(range(1, 7)):
            assert k["info"]["status"] == "KILLED" and "RESUME=1" in k["tags"].get("stop_reason", ""), k["tags"]

    r = run_sweep(tmp_path, spec, server, "--resume")
    assert r.returncode == 0, r.stdout[-4000:]
    assert "resuming" in r.stdout
    assert "restarted from its checkpoint" in r.stdout  # not from scratch
    parents2, kids2 = children(server, spec)
    assert [p["info"]["run_id"] for p in parents2] == [p["info"]["run_id"] for p in parents]
    assert sorted(k["info"]["run_id"] for k in kids2) == sorted(k["info"]["run_id"] for k in kids)  # no new runs
    for k in kids2:
        assert k["info"]["status"] == "FINISHED"
        for key in CHILD_KEYS:
            assert steps(server, k, key) == list(range(1, 7)), (key, k["tags"]["ray_trial_id"])  # none twice


def _ray(*args, env, sessions: list, timeout=120) -> subprocess.CompletedProcess:
    """`ray start ...` in a new session: every process it leaves behind keeps that session id, so the
    test can stop exactly its own Ray processes (never `ray stop`, which stops every Ray on the machine)."""
    exe = Path(sys.executable).with_name("ray")
    p = subprocess.Popen(
        [str(exe), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    sessions.append(p.pid)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return subprocess.CompletedProcess(p.args, p.returncode, out, "")


def _stop_cluster(sessions: list) -> None:
    def mine():
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[3]) in sessions:  # field 6: session id
                    pids.append(int(d.name))
        return pids

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in mine():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and mine():
            time.sleep(0.2)


def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path, server):
    port = free_port()
    tmp = Path("/tmp") / f"rt{port}"  # Ray's socket paths must stay short
    token = os.urandom(16).hex()
    env = env_for({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    head = [
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=1",
        "--include-dashboard=false",
        '--resources={"sweep_slot": 1, "node_head": 1}',
        f"--temp-dir={tmp}",
        "--disable-usage-stats",
    ]
    workers = range(port + 100, port + 201)  # the worker node's worker ports
    manager_ports: set[int] = set()
    while len(manager_ports) < 2:  # free ports outside that range (Ray refuses a port used twice)
        if (p := free_port()) not in workers and p != port:
            manager_ports.add(p)
    node_manager_port, object_manager_port = sorted(manager_ports)
    worker = [
        "start",
        f"--address=127.0.0.1:{port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        '--resources={"sweep_slot": 1, "node_worker": 1}',
        "--disable-usage-stats",
        f"--node-manager-port={node_manager_port}",
        f"--object-manager-port={object_manager_port}",
        f"--min-worker-port={workers.start}",
        f"--max-worker-port={workers.stop - 1}",
    ]
    sessions: list[int] = []
    try:
        r = _ray(*head, env=env, sessions=sessions)
        assert r.returncode == 0, r.stdout[-4000:]
        r = _ray(*worker, env=env, sessions=sessions)
        assert r.returncode == 0, r.stdout[-4000:]
        spec = tiny_spec("two_nodes", epochs=2, points=P[:2], resources={"cpu": 1, "sweep_slot": 1})
        r = run_sweep(tmp_path, spec, server, env=dict(env, RAY_ADDRESS=f"127.0.0.1:{port}"))
        assert r.returncode == 0, r.stdout[-4000:]
        parents, kids = children(server, spec)
        assert len(parents) == 1 and len(kids) == 2
        nodes = {k["tags"]["ray_node_id"] for k in kids}
        assert len(nodes) == 2, nodes  # one trial per node: each offers one sweep_slot
        for k in kids:
            assert k["info"]["status"] == "FINISHED" and steps(server, k) == [1, 2]
    finally:
        _stop_cluster(sessions)
        shutil.rmtree(tmp, ignore_errors=True)


def test_asha_grace_period_longer_than_a_shortened_trial_is_clamped():
    """A sweep shortened with overrides (fewer reports than asha.grace_period) still starts."""
    from sweeps.runner import _scheduler

    sched = _scheduler({"scheduler": "asha", "asha": {"grace_period": 50, "reduction_factor": 2}}, 5)
    assert sched._max_t == 5 and sched._brackets[0]._rungs[-1][0] == 5


# ------------------------------------------------------------------- a trial's end, in-process
def test_a_trial_that_tune_ends_at_a_report_leaves_its_status_to_the_driver(tmp_path, monkeypatch):
    """Tune ends a trial whose report it has taken by raising SystemExit in it, and the driver's
    callback closes the trial's run at the same time, in either order. At the last epoch's report the
    training is complete: the trial returns and its run ends FINISHED. At an earlier report (a
    scheduler's stop) the trial sends what is left and sets no status, so the driver's FINISHED
    "stopped early by the scheduler" stands whether it lands before the trial's end or after it (it
    was overwritten with KILLED "SystemExit(0)" when it landed first). A fake Tune session around the
    real trial, on a sqlite store."""
    from mlflow import MlflowClient
    from ray import tune

    from sweeps import runner, trial
    from tracking import sweep_runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    point = {"train.params.config.bounds_loss_coef": 10}
    spec = space.normalize(tiny_spec("ends", epochs=3, points=[point], base="default"))
    parent = sweep_runs.start_parent(uri, spec["experiment"], "ends", "ends-1", {}, {})
    cfg = runner._sweep_cfg(spec, parent, uri, tmp_path / "work")
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    client = MlflowClient(uri)
    stopped = {"stop_reason": "stopped early by the scheduler at 64 env steps (epoch 1)"}

    def driver_closes(trial_id: str) -> None:  # what MlflowStatusCallback.on_trial_complete does
        run_id = sweep_runs.find_child(uri, spec["experiment"], parent, trial_id)
        sweep_runs.end_if_running(uri, spec["experiment"], run_id, "FINISHED", stopped)

    def run(trial_id: str, exit_at_epoch: int, driver_first: bool = False):
        class Context:
            def get_trial_id(self):
                return trial_id

            def get_trial_name(self):
                return trial_id

        def report(result, checkpoint=None):
            if result.get("epoch") == exit_at_epoch:
                if driver_first:
                    driver_closes(trial_id)
                raise SystemExit(0)

        monkeypatch.setattr(tune, "get_context", Context)
        monkeypatch.setattr(tune, "report", report)
        trial.run_trial({"point": point}, cfg)
        exp = client.get_experiment_by_name(spec["experiment"])
        (r,) = client.search_runs([exp.experiment_id], filter_string=f"tags.ray_trial_id = '{trial_id}'")
        return r

    last = run("last_00000", exit_at_epoch=3)
    assert last.info.status == "FINISHED" and "stop_reason" not in last.data.tags, last.data.tags
    for name, driver_first in (("after_00000", False), ("before_00000", True)):
        with pytest.raises(SystemExit):
            run(name, exit_at_epoch=2, driver_first=driver_first)
        exp = client.get_experiment_by_name(spec["experiment"])
        (r,) = client.search_runs([exp.experiment_id], filter_string=f"tags.ray_trial_id = '{name}'")
        if not driver_first:
            assert r.info.status == "RUNNING", (name, r.data.tags)  # the trial set no status
            driver_closes(name)
            r = client.get_run(r.info.run_id)
        assert r.info.status == "FINISHED" and r.data.tags["stop_reason"] == stopped["stop_reason"], (name, r.data.tags)
        # nothing lost: both epochs before the stop are in the run
        assert [m.step for m in client.get_metric_history(r.info.run_id, "loss/actor")] == [1, 2], name
