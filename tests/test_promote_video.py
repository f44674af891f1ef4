"""What a promotion and the end of a GPU sweep show in the MLflow UI: a GIF of the policy in its
evaluation model, logged to the run, named by a tag and shown in the description, against a real
``mlflow server`` on 127.0.0.1 (no mocks); a machine without an offscreen OpenGL library still
registers the version, with one warning line that names the package."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from sweeps.promote import main as promote_main
from sweeps.promote import promote
from tests.helpers.mlflow_server import Server, module_server
from tests.helpers.sweeping import fake_sweep
from tracking.registry import VIDEO_IMAGE, VIDEO_TAG, artifact_link, with_video

pytestmark = pytest.mark.slow  # a server, an export and sim2sim in a child process per test

MODEL = "HumanoidAMP-policy"
server = module_server("promote_video_mlflow")


@pytest.fixture(autouse=True)
def _no_user_store(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AMP_MLRUNS_DIR", str(tmp_path / "mlruns"))


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return tmp_path_factory.mktemp("sweeps_out")


def _version(server: Server, version: int, name: str = MODEL) -> dict:
    mv = server.get("model-versions/get", name=name, version=str(version))["model_version"]
    mv["tags"] = {t["key"]: t["value"] for t in mv.get("tags", [])}
    return mv


def _gif_from_description(server: Server, description: str) -> Image.Image:
    """The image the description's last line shows, fetched as the UI fetches it (relative to its address)."""
    line = description.strip().splitlines()[-1]
    assert line.startswith(VIDEO_IMAGE + ": ") and line.endswith(")"), line
    link = line[line.index("](") + 2 : -1]
    r = requests.get(f"{server.url}/{link}", timeout=30)
    assert r.ok, (link, r.status_code, r.text[:300])
    return Image.open(io.BytesIO(r.content))


def test_with_video_replaces_the_last_evaluation_and_keeps_the_rest():
    link = artifact_link("r1", "sim2sim/v2/a b.gif")
    assert link == "get-artifact?path=sim2sim%2Fv2%2Fa%20b.gif&run_uuid=r1"
    first = with_video("sweep s, trial t: value 0.5", "r1", "sim2sim/v2/a b.gif", "version 2")
    assert first == f"sweep s, trial t: value 0.5\n\n{VIDEO_IMAGE}: version 2]({link})"
    again = with_video(first, "r1", "sim2sim/v2/c.gif", "version 2, again")
    assert again.splitlines() == [
        "sweep s, trial t: value 0.5",
        "",
        f"{VIDEO_IMAGE}: version 2, again]({artifact_link('r1', 'sim2sim/v2/c.gif')})",
    ]
    assert with_video(None, "r1", "x.gif", "c") == f"{VIDEO_IMAGE}: c]({artifact_link('r1', 'x.gif')})"


def test_promote_logs_a_gif_of_the_new_version_that_its_page_shows(server, storage, tiny_checkpoint, tmp_path):
    from isaacgymenvs import sim2sim
    from isaacgymenvs.video import offscreen_gl
    from tracking.registry import Registry

    if offscreen_gl()[1]:
        pytest.skip(f"no offscreen OpenGL here: {offscreen_gl()[1]}")
    s = fake_sweep(server, storage, "gif", [(0.5, "FINISHED", tiny_checkpoint)], tmp_path)
    res = promote("gif", storage=storage)
    assert res["registered"] and "sim2sim_warning" not in res, res.get("sim2sim_warning")
    v = res["version"]
    art = f"sim2sim/v{v}/sim2sim_v{v}.gif"
    assert res["sim2sim"]["video_artifact"] == art
    mv = _version(server, v)
    assert mv["run_id"] == s["runs"][0] and mv["tags"][VIDEO_TAG] == art
    assert {art, f"sim2sim/v{v}/sim2sim.json"} <= set(server.artifacts(mv["run_id"], f"sim2sim/v{v}"))
    assert mv["description"].startswith("sweep gif, trial gif_trial_0:")  # promote's own text is kept
    gif = _gif_from_description(server, mv["description"])
    stored = Image.open(next((server.root / "artifacts").rglob(f"{mv['run_id']}/artifacts/{art}")))
    assert gif.n_frames == stored.n_frames >= 1 and np.asarray(gif.convert("RGB"), dtype=float).std() > 5.0
    # the numbers are sim2sim's of the version's export: the same run here gives the same ones
    reg = Registry(server.url)
    local = sim2sim.run(reg.download_policy(reg.resolve(f"models:/{MODEL}/{v}"), tmp_path / "dl"), 10, None, None, 0)
    for k in ("fall_rate", "survival", "motion_nn_dist", "score"):
        assert res["sim2sim"][k] == local[k] and float(mv["tags"][f"sim2sim.{k}"]) == local[k], k
    assert local["mjcf"] == "amp_humanoid/amp_humanoid.xml" and "amp_humanoid/amp_humanoid.xml" in mv["description"]


@pytest.mark.parametrize("how", ["no library", "no display"])
def test_without_offscreen_opengl_the_version_is_registered_with_one_warning(
    how, server, storage, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    """No GL library at all (what ``offscreen_gl`` finds), or MUJOCO_GL=glfw without a display
    (the child's renderer fails): one warning line naming the package, the version registered
    with its sim2sim numbers, no video tag, no image."""
    from isaacgymenvs import video

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if how == "no library":
        monkeypatch.delenv("MUJOCO_GL", raising=False)
        monkeypatch.setattr(video.ctypes.util, "find_library", lambda lib: None)
    else:
        monkeypatch.setenv("MUJOCO_GL", "glfw")
    name = "nogl1" if how == "no library" else "nogl2"
    fake_sweep(server, storage, name, [(0.5, "FINISHED", tiny_checkpoint)], tmp_path)
    capsys.readouterr()
    assert promote_main([f"storage={storage}", f"sweep={name}"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "libegl1" in warnings[0] and f"no GIF of version {res['version']}" in warnings[0]
    assert res["registered"] and "libegl1" in res["sim2sim_warning"] and "video_artifact" not in res["sim2sim"]
    assert 0.0 <= res["sim2sim"]["fall_rate"] <= 1.0 and res["sim2sim"]["episodes"] == 10
    mv = _version(server, res["version"])
    assert VIDEO_TAG not in mv["tags"] and VIDEO_IMAGE not in mv["description"]
    assert float(mv["tags"]["sim2sim.fall_rate"]) == res["sim2sim"]["fall_rate"]


def test_a_gpu_sweep_ends_with_a_gif_per_configuration_on_its_best_trial(server, storage, tiny_checkpoint, tmp_path):
    """``best_trial_videos``: the best trial of each configuration gets the GIF of its latest
    checkpoint (its run's artifacts, tag, description); a trial whose policy cannot be exported
    is one line and the others go on; a CPU sweep gets none."""
    from mlflow import MlflowClient

    from isaacgymenvs.video import offscreen_gl
    from sweeps.sim2sim import best_trial_videos

    if offscreen_gl()[1]:
        pytest.skip(f"no offscreen OpenGL here: {offscreen_gl()[1]}")
    ck = torch.load(tiny_checkpoint, weights_only=True)
    ck["meta"]["network"]["rnn"] = {"name": "lstm", "units": 32, "layers": 1, "before_mlp": False}
    lstm = tmp_path / "lstm.pth"
    torch.save(ck, lstm)
    s = fake_sweep(server, storage, "gpu", [(0.5, "FINISHED", None), (0.7, "FINISHED", None)], tmp_path)
    c = MlflowClient(server.url)
    for rid, ckpt in zip(s["runs"], (tiny_checkpoint, lstm)):
        staged = tmp_path / rid / "latest.pth"
        staged.parent.mkdir()
        staged.write_bytes(Path(ckpt).read_bytes())
        c.log_artifact(rid, str(staged), "checkpoints")
    result = {
        "configurations": [
            {"best_trial": "gpu_00000", "best_mlflow_run_id": s["runs"][0]},
            {"best_trial": "gpu_00001", "best_mlflow_run_id": s["runs"][1]},
        ]
    }
    said: list[str] = []
    cpu = {"name": "gpu", "overrides": ["task=HumanoidAMP", "sim=mujoco"]}
    assert best_trial_videos(cpu, result, server.url, said.append) == [] and said == []
    gpu = {"name": "gpu", "overrides": ["task=HumanoidAMP", "sim=mujoco_warp"]}
    done = best_trial_videos(gpu, result, server.url, said.append)
    art = "sim2sim/latest/gpu_trial_0.gif"
    assert [d["video"] for d in done] == [art, None] and "no actor LSTM weights" in done[1]["reason"]
    assert len(said) == 2 and art in said[0] and said[1].startswith("sweep gpu: no sim2sim GIF of trial gpu_00001:")
    run = server.run(s["runs"][0])
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags[VIDEO_TAG] == art and tags["sim2sim.episodes"] == "10"
    assert _gif_from_description(server, tags["mlflow.note.content"]).n_frames >= 1
    assert VIDEO_TAG not in {t["key"] for t in server.run(s["runs"][1])["data"]["tags"]}
