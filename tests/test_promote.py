"""``make promote`` and ``sim2sim policy=models:/...`` against a real ``mlflow server`` on 127.0.0.1 (no mocks).

Instead of running Ray, each "sweep" here is what ``make sweep`` leaves behind: a parent run, child
runs with the tags ``tracking/sweep_runs.py`` reads (``mlflow.parentRunId``, ``ray_trial_id``), their
``eval/*`` metrics and a real checkpoint (one CPU epoch) as ``checkpoints/best.pth``, and
``<storage>/<sweep>/sweep.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from isaacgymenvs.export import export
from sweeps.promote import PromoteError
from sweeps.promote import main as promote_main
from sweeps.promote import promote as promote_with_gif
from tests.helpers.mlflow_server import Server, free_port, module_server  # the real `mlflow server` on 127.0.0.1
from tests.helpers.sweeping import METRIC, fake_sweep

pytestmark = pytest.mark.slow  # every test here trains, runs a sweep or a server

REPO = Path(__file__).resolve().parents[1]
MODEL = "HumanoidAMP-policy"


server = module_server("promote_mlflow")


def promote(*args, **kwargs):
    """``promote`` without the GIF: tests/test_promote_video.py tests the GIF; here the sim2sim numbers
    suffice (the GIF costs 40-80 s a version on a 2-core machine)."""
    return promote_with_gif(*args, video=False, **kwargs)


@pytest.fixture(autouse=True)
def _no_user_store(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AMP_MLRUNS_DIR", str(tmp_path / "mlruns"))  # never the project's own store


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return tmp_path_factory.mktemp("sweeps_out")


def versions(server: Server) -> dict[int, dict]:
    found = server.get("model-versions/search", filter=f"name='{MODEL}'").get("model_versions", [])
    return {int(v["version"]): {**v, "tags": {t["key"]: t["value"] for t in v.get("tags", [])}} for v in found}


def champion(server: Server) -> int | None:
    """The champion's version; None when there is none (or no registered model yet)."""
    import requests

    r = requests.get(f"{server.url}/api/2.0/mlflow/registered-models/get", params={"name": MODEL}, timeout=10)
    if r.status_code == 404:
        return None
    assert r.ok, r.text[:500]
    rm = r.json()["registered_model"]
    return next((int(a["version"]) for a in rm.get("aliases", []) if a["alias"] == "champion"), None)


def corrupt(checkpoint: Path, out: Path, how: str) -> Path:
    if how == "truncated":
        out.write_bytes(checkpoint.read_bytes()[:700])
    else:  # NaN weights: loads, exports, and fails its own check
        ck = torch.load(checkpoint, weights_only=True)
        ck["model"]["a2c_network.mu.weight"][0, 0] = float("nan")
        torch.save(ck, out)
    return out


# ------------------------------------------------------------------------------------------------ tests
def test_promote_registers_once_and_moves_champion_only_when_better(server, storage, checkpoint, tmp_path, capsys):
    s1 = fake_sweep(
        server,
        storage,
        "s1",
        [
            (0.5, "FINISHED", checkpoint),
            (0.7, "FINISHED", checkpoint),
            (0.1, "RUNNING", checkpoint),
            (0.05, "FAILED", checkpoint),
        ],
        tmp_path,
    )
    res = promote("s1", storage=storage)
    assert res["registered"] and res["version"] == 1 and res["alias_moved"] and res["champion_version"] == 1
    assert res["source_run_id"] == s1["runs"][0] and res["value"] == 0.5  # FINISHED only; latest value; not reward/disc
    v1 = versions(server)[1]
    assert v1["run_id"] == s1["runs"][0]  # the version's run is the trial's run
    t = v1["tags"]
    assert t["sweep"] == "s1" and t["sweep_parent_run_id"] == s1["parent"] and t["trial_id"] == "s1_00000"
    assert t["promote.metric"] == METRIC and float(t["promote.value"]) == 0.5 and float(t[f"metric.{METRIC}"]) == 0.5
    assert t["param.train.params.config.bounds_loss_coef"] == "10" and t["param.sigma"] == "fixed"
    assert t["export.check"] == "passed" and float(t["export.max_abs_err_onnx"]) <= 1e-5
    assert t["checkpoint"] == "checkpoints/best.pth" and len(t["checkpoint_sha256"]) == 64
    model_id = v1["source"].rsplit("/", 1)[-1]  # models:/<LoggedModel id>, stored under the server's artifact root
    files = {p.name for p in (server.root / "artifacts").rglob(f"{model_id}/artifacts/artifacts/policy/*")}
    assert files == {"policy.onnx", "policy.json", "obs_norm.npz", "policy.pt"}
    # video=0: the sim2sim numbers on the version, no GIF
    assert set(res["sim2sim"]) >= {"fall_rate", "score"} and "video_artifact" not in res["sim2sim"]
    assert "sim2sim.fall_rate" in t and "sim2sim.video" not in t and "no GIF (video=0)" in capsys.readouterr().err
    assert set(server.artifacts(s1["runs"][0], "sim2sim/v1")) == {"sim2sim/v1/sim2sim.json"}

    again = promote("s1", storage=storage)  # the same checkpoint of the same run: nothing new
    assert not again["registered"] and again["version"] == 1 and not again["alias_moved"]
    assert sorted(versions(server)) == [1] and champion(server) == 1

    fake_sweep(server, storage, "s2", [(0.9, "FINISHED", checkpoint)], tmp_path)  # worse: registered, alias stays
    worse = promote("s2", storage=storage)
    assert worse["registered"] and worse["version"] == 2 and not worse["alias_moved"] and champion(server) == 1
    assert "does not beat" in worse["reason"] and worse["champion_value_before"] == 0.5

    capsys.readouterr()
    assert promote_main([f"storage={storage}", "sweep=s2", "force=1"]) == 0  # FORCE=1 moves it (nothing new registered)
    forced = json.loads(capsys.readouterr().out)
    assert (
        not forced["registered"]
        and forced["alias_moved"]
        and champion(server) == 2
        and sorted(versions(server)) == [1, 2]
    )

    fake_sweep(server, storage, "s3", [(0.3, "FINISHED", checkpoint)], tmp_path)  # better than the champion: moves
    better = promote("s3", storage=storage)
    assert better["registered"] and better["version"] == 3 and better["alias_moved"] and champion(server) == 3

    # a checkpoint that fails the export check, has NaN weights or cannot be read: nothing registered, champion unchanged
    import isaacgymenvs.export as export_mod

    def failing_check(*a, **k):
        raise export_mod.ExportCheckError(
            "export check failed in the test: max |policy.onnx - model| = 1; do not deploy"
        )

    for name, how, msg in (
        ("s4", "check", "export check failed"),
        ("s5", "nan", "NaN or infinite values"),
        ("s6", "truncated", "cannot be read"),
    ):
        bad = corrupt(checkpoint, tmp_path / f"{how}.pth", how) if how != "check" else checkpoint
        fake_sweep(server, storage, name, [(0.01, "FINISHED", bad)], tmp_path)
        capsys.readouterr()
        with pytest.MonkeyPatch.context() as mp:
            if how == "check":
                mp.setattr(export_mod, "check_export", failing_check)
            assert promote_main([f"storage={storage}", f"sweep={name}"]) == 1
        err = capsys.readouterr().err
        assert msg in err and "nothing registered, champion unchanged" in err, err[-2000:]
        assert sorted(versions(server)) == [1, 2, 3] and champion(server) == 3


def test_champion_loads_through_mlflow_with_the_local_exports_actions(server, storage, checkpoint, tmp_path):
    import mlflow
    import onnxruntime as ort
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    if champion(server) is None:
        fake_sweep(server, storage, "p1", [(0.5, "FINISHED", checkpoint)], tmp_path)
        promote("p1", storage=storage)
    local = Path(export(checkpoint, tmp_path / "local")["out"])
    norm = np.load(local / "obs_norm.npz")
    obs = (norm["mean"] + 2.0 * norm["std"] * np.random.default_rng(0).standard_normal((64, 105))).astype(np.float32)
    with _use_tracking_uri(server.url):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        a_mlflow = model.predict(obs)
    a_local = ort.InferenceSession(str(local / "policy.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"obs": obs}
    )[0]
    assert a_mlflow.shape == (64, 28) and np.abs(a_mlflow - a_local).max() <= 1e-6


def test_sim2sim_on_the_champion_without_torch_logs_to_the_run(server, storage, checkpoint, tmp_path):
    if champion(server) is None:
        fake_sweep(server, storage, "q1", [(0.5, "FINISHED", checkpoint)], tmp_path)
        promote("q1", storage=storage)
    champ = versions(server)[champion(server)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PYTHONPATH=str(REPO), MLFLOW_TRACKING_URI=server.url, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    code = (
        "import json, sys; from sweeps.sim2sim import main; rc = main(sys.argv[1:]); "
        "print('TORCH', 'torch' in sys.modules, 'MLFLOW', 'mlflow' in sys.modules); sys.exit(rc)"
    )
    gif = tmp_path / "champ.gif"
    r = subprocess.run(
        [sys.executable, "-c", code, f"policy=models:/{MODEL}@champion", "episodes=2", f"video={gif}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0 and ("gladLoadGL" in r.stderr or "EGL" in r.stderr or "OpenGL" in r.stderr):
        pytest.skip(f"no offscreen OpenGL here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "TORCH False MLFLOW True" in r.stdout  # the registry was used, torch never imported
    res = json.loads(r.stdout[: r.stdout.index("TORCH")])
    assert res["model_version"] == int(champ["version"]) and res["logged_to_run"] == champ["run_id"]
    # the same numbers as sim2sim of the version's export folder run here (same seed, episodes)
    from isaacgymenvs import sim2sim
    from tracking.registry import Registry

    reg = Registry(server.url)
    local = sim2sim.run(
        reg.download_policy(reg.resolve(f"models:/{MODEL}@champion"), tmp_path / "dl"), 2, None, None, 0
    )
    assert res["episodes"] == local["episodes"] == 2
    for k in ("fall_rate", "survival", "motion_nn_dist", "score"):
        assert res[k] == local[k], k
    from PIL import Image

    frames = Image.open(gif)
    assert frames.n_frames == res["video_frames"] >= 1 and np.asarray(frames.convert("RGB"), dtype=float).std() > 5.0
    arts = server.artifacts(champ["run_id"], f"sim2sim/v{champ['version']}")
    assert {f"sim2sim/v{champ['version']}/sim2sim.json", f"sim2sim/v{champ['version']}/champ.gif"} <= set(arts)
    tags = versions(server)[int(champ["version"])]["tags"]
    assert float(tags["sim2sim.fall_rate"]) == res["fall_rate"] and tags["sim2sim.episodes"] == "2"


def test_clear_errors(server, storage, checkpoint, tmp_path, monkeypatch, capsys):
    from sweeps import sim2sim

    def err_of(fn, *args):
        assert fn(list(args)) == 1
        return capsys.readouterr().err

    # the registry: no such model (names what exists and the fix), no such alias
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    if champion(server) is None:
        fake_sweep(server, storage, "e0", [(0.5, "FINISHED", checkpoint)], tmp_path)
        promote("e0", storage=storage)
    e = err_of(sim2sim.main, "policy=models:/NoSuch-policy@champion")
    assert "no registered model 'NoSuch-policy'" in e and MODEL in e and "make promote" in e
    e = err_of(sim2sim.main, f"policy=models:/{MODEL}@nope")
    assert "no alias 'nope'" in e and "@champion" in e
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}")
    e = err_of(sim2sim.main, f"policy=models:/{MODEL}@champion")
    assert "does not exist" in e and not (tmp_path / "nowhere").exists()  # no empty store created
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    # the sweep: none there, no finished trial, metric not comparable or not logged
    e = err_of(promote_main, f"storage={storage}", "sweep=never_ran")
    assert "no " in e and "sweep.json" in e and "make sweep SWEEP=never_ran" in e
    fake_sweep(server, storage, "unfinished", [(0.2, "RUNNING", checkpoint), (0.1, "FAILED", None)], tmp_path)
    e = err_of(promote_main, f"storage={storage}", "sweep=unfinished")
    assert "no finished trial" in e and "RUNNING" in e and "FAILED" in e
    e = err_of(
        promote_main,
        f"storage={storage}",
        "sweep=s1" if (storage / "s1").exists() else "sweep=e0",
        "metric=reward/disc",
    )
    assert "not comparable between runs" in e
    # the best finished trial has no checkpoint (stopped before its first one): the next best is taken;
    # with none that has one, a clear error
    fake_sweep(server, storage, "nockpt", [(0.1, "FINISHED", None), (0.3, "FINISHED", checkpoint)], tmp_path)
    res = promote(sweep="nockpt", storage=storage)
    assert res["trial"] == "nockpt_trial_1" and res["value"] == 0.3
    assert "skipped nockpt_trial_0" in capsys.readouterr().err
    fake_sweep(server, storage, "nockpt2", [(0.1, "FINISHED", None), (0.3, "FINISHED", None)], tmp_path)
    e = err_of(promote_main, f"storage={storage}", "sweep=nockpt2")
    assert "no finished trial of sweep 'nockpt2' can be promoted" in e and "no checkpoint" in e
    fake_sweep(server, storage, "nometric", [(0.2, "FINISHED", checkpoint)], tmp_path)
    e = err_of(promote_main, f"storage={storage}", "sweep=nometric", "metric=eval/fall_rate")
    assert "logged the metric 'eval/fall_rate'" in e and METRIC in e

    # an unreachable tracking server
    dead = storage / "dead"
    dead.mkdir()
    state = json.loads((storage / "nometric" / "sweep.json").read_text())
    (dead / "sweep.json").write_text(json.dumps({**state, "uri": f"http://127.0.0.1:{free_port()}"}))
    e = err_of(promote_main, f"storage={storage}", "sweep=dead")
    assert "cannot be reached" in e and "127.0.0.1" in e
    with pytest.raises(PromoteError, match="no"):
        promote("never_ran", storage=storage)


def test_a_g1_sweep_promotes_to_its_own_model(server, storage, tmp_path):
    """A G1AMP trial registers as G1AMP-policy (the name comes from the run's task), leaves the
    HumanoidAMP model alone, and its registered export carries the G1's deploy info."""
    from hydra import compose, initialize_config_dir

    from isaacgymenvs import assets
    from isaacgymenvs import train as train_mod
    from tests.helpers.training import TINY

    try:
        assets.asset_path("unitree_g1/scene_mjx.xml")
    except assets.AssetNotFoundError as e:
        pytest.skip(f"asset missing: {e}")
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        cfg = compose(
            "config", overrides=[a for a in TINY if not a.startswith("task=")] + ["task=G1AMP", "max_iterations=1"]
        )
    t = train_mod.Trainer(cfg, runs_dir=str(tmp_path / "runs"))
    t.build()
    g1_ckpt = Path(t.train())
    humanoid_before = versions(server)

    fake_sweep(server, storage, "g1s", [(0.4, "FINISHED", g1_ckpt)], tmp_path, task="G1AMP")
    res = promote("g1s", storage=storage)
    assert res["registered"] and res["alias_moved"] and res["model"] == "G1AMP-policy"
    assert versions(server) == humanoid_before
    found = server.get("model-versions/search", filter="name='G1AMP-policy'")["model_versions"]
    assert [int(v["version"]) for v in found] == [1]
    tags = {x["key"]: x["value"] for x in found[0].get("tags", [])}
    assert tags["task"] == "G1AMP" and tags["export.check"] == "passed"
    model_id = found[0]["source"].rsplit("/", 1)[-1]
    info = json.loads(
        next((server.root / "artifacts").rglob(f"{model_id}/artifacts/artifacts/policy/policy.json")).read_text()
    )
    assert info["task"] == "G1AMP" and len(info["joint_order"]) == 29 and info["action"]["mapping"] == "default_pose"


def test_a_diverged_or_blown_up_candidate_is_refused_even_with_force(server, storage, checkpoint, tmp_path, capsys):
    """The best-ranked trials have a non-finite loss or a blow-up in their final evaluation: promote
    names why it skips them and takes the next; with no other, it refuses, and force=1 changes nothing."""
    fake_sweep(
        server,
        storage,
        "refuse",
        [
            (0.01, "FINISHED", checkpoint, {"loss/critic": float("nan")}),
            (0.02, "FINISHED", checkpoint, {"eval/unstable_envs": 3.0}),
            (0.40, "FINISHED", checkpoint),
        ],
        tmp_path,
    )
    res = promote("refuse", storage=storage)
    assert res["trial"] == "refuse_trial_2" and len(res["refused"]) == 2
    err = capsys.readouterr().err
    assert "refuse_trial_0: non-finite loss/critic" in err and "refuse_trial_1: the simulator blew up in 3" in err
    fake_sweep(server, storage, "refuse_all", [(0.01, "FINISHED", checkpoint, {"loss/actor": float("inf")})], tmp_path)
    for force in ([], ["force=1"]):
        assert promote_main([f"storage={storage}", "sweep=refuse_all", *force]) == 1
        e = capsys.readouterr().err
        assert "can be promoted" in e and "non-finite loss/actor" in e


def test_champion_never_moves_to_a_version_that_always_falls(server, storage, checkpoint, tmp_path):
    """A version that falls in every evaluation episode is registered (tagged untrained) but never takes
    the alias from one that stays up, whatever its metric, even with force=1; among untrained versions
    the metric decides."""
    from mlflow import MlflowClient

    c = MlflowClient(server.url)
    name = "HumanoidAMPHands-policy"  # its own model: the other tests' champions are not disturbed
    fake_sweep(
        server,
        storage,
        "up",
        [(0.5, "FINISHED", checkpoint, {"eval/fall_rate": 0.2})],
        tmp_path,
        task="HumanoidAMPHands",
    )
    first = promote("up", storage=storage)
    assert first["alias_moved"]
    fake_sweep(
        server,
        storage,
        "falls",
        [(0.01, "FINISHED", checkpoint, {"eval/fall_rate": 1.0})],
        tmp_path,
        task="HumanoidAMPHands",
    )
    for force in (False, True):
        res = promote("falls", storage=storage, force=force)
        assert not res["alias_moved"] and "falls in every evaluation episode" in res["reason"]
    mv = c.get_model_version(name, str(res["version"]))
    assert mv.tags["untrained"].startswith("falls in every evaluation episode")
    assert c.get_model_version_by_alias(name, "champion").version == str(first["version"])


def test_an_lstm_sweep_promotes_and_its_version_carries_its_state_through_mlflow(
    server, storage, tiny_lstm_checkpoint, tmp_path
):
    """lstm_cpu's trials train LSTM policies: the best one exports (its state in and out), registers
    with a signature that names obs, h0 and c0, and the registered pyfunc, its state fed back over
    12 steps from zeros, gives the local export's actions (onnxruntime on the same file: <= 1e-6)."""
    import mlflow
    import onnxruntime as ort
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    fake_sweep(
        server,
        storage,
        "lstm",
        [(0.6, "FINISHED", tiny_lstm_checkpoint), (0.2, "FINISHED", tiny_lstm_checkpoint)],
        tmp_path,
    )
    res = promote("lstm", storage=storage)
    assert res["registered"] and res["trial"] == "lstm_trial_1" and res["export_check"] == "passed"
    tags = versions(server)[res["version"]]["tags"]
    assert tags["export.check"] == "passed" and float(tags["export.max_abs_err_onnx"]) <= 1e-5

    local = Path(export(tiny_lstm_checkpoint, tmp_path / "local")["out"])
    info = json.loads((local / "policy.json").read_text())["policy"]
    assert info["kind"] == "lstm" and info["recurrent_state"]["inputs"] == ["h0", "c0"]
    sess = ort.InferenceSession(str(local / "policy.onnx"), providers=["CPUExecutionProvider"])
    norm = np.load(local / "obs_norm.npz")
    obs = (norm["mean"] + 2.0 * norm["std"] * np.random.default_rng(0).standard_normal((12, 8, 105))).astype(np.float32)
    with _use_tracking_uri(server.url):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{res['version']}")
        names = [(t.name, t.shape) for t in model.metadata.get_input_schema().inputs]
        assert names == [("obs", (-1, 105)), ("h0", (1, -1, 32)), ("c0", (1, -1, 32))]
        h = c = np.zeros((1, 8, 32), np.float32)
        h_local = c_local = h
        for t in range(12):
            out = model.predict({"obs": obs[t], "h0": h, "c0": c})
            h, c = out["h1"], out["c1"]
            a_local, h_local, c_local = sess.run(None, {"obs": obs[t], "h0": h_local, "c0": c_local})
            assert out["actions"].shape == (8, 28) and np.abs(out["actions"] - a_local).max() <= 1e-6
        assert np.abs(h).max() > 1e-3  # the state was carried, not left at zeros
        with pytest.raises(Exception, match="h0"):
            model.predict(obs[0])  # an LSTM without its state: refused, naming the inputs
