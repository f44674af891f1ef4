"""sim2sim: the exported ONNX policy in MuJoCo C without torch, with the trainer's observation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from isaacgymenvs import sim2sim
from isaacgymenvs.export import export

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tests.test_train import trainer

    tmp = tmp_path_factory.mktemp("s2s")
    ck = trainer(tmp, "max_iterations=1").train()
    return export(ck, tmp / "export")["out"]


def test_numpy_observation_equals_the_trainers(humanoid):
    """The torch-free observer gives the task's 105 numbers for the same simulator states."""
    from isaacgymenvs.tasks import make_task

    task = make_task("HumanoidAMP", dict(numEnvs=4, motion_file="amp_humanoid_dance.npy"), seed=2)
    task.reset()
    for _ in range(3):
        task.step(0.2 * torch.randn(4, 28, generator=torch.Generator().manual_seed(0)))
    observe = sim2sim.Observer(task.sim.model, list(task.cfg.keyBodies))
    ours = np.stack([observe(d) for d in task.sim._datas])
    assert np.allclose(ours, task._sim_obs().numpy(), atol=1e-5)


def sim2sim_cli(*args) -> dict:
    """``python -m isaacgymenvs.sim2sim ARGS`` in a fresh process: its JSON, after checking that it
    exited 0 and never imported torch (skips where there is no offscreen OpenGL)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    code = ("import json, sys; from isaacgymenvs.sim2sim import main; rc = main(sys.argv[1:]); "
            "print('TORCH', 'torch' in sys.modules); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and ("gladLoadGL" in r.stderr or "EGL" in r.stderr or "OpenGL" in r.stderr):
        pytest.skip(f"no offscreen OpenGL here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "TORCH False" in out  # the deployment check never imports torch
    return json.loads(out[: out.index("TORCH")])


def test_sim2sim_video_without_opengl_is_a_one_line_error(exported, tmp_path):
    """No display and no MUJOCO_GL backend: exit 1 with the fix (MUJOCO_GL=egl|osmesa), no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(PYTHONPATH=str(REPO), MUJOCO_GL="glfw")
    r = subprocess.run([sys.executable, "-m", "isaacgymenvs.sim2sim", f"policy={exported}", "episodes=1",
                        f"video={tmp_path / 'v.gif'}"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "MUJOCO_GL=egl" in r.stderr and "MUJOCO_GL=osmesa" in r.stderr
    assert not (tmp_path / "v.gif").exists()


def test_sim2sim_reports_and_renders(exported, tmp_path):
    res = sim2sim_cli(f"policy={exported}", "episodes=3", f"video={tmp_path / 'v.gif'}")
    assert res["episodes"] == 3 and 0.0 <= res["fall_rate"] <= 1.0 and res["motion_nn_dist"] > 0
    from PIL import Image

    gif = Image.open(tmp_path / "v.gif")
    assert gif.n_frames == res["video_frames"] >= 1
    frame = np.asarray(gif.convert("RGB"), dtype=float)
    assert frame.std() > 5.0  # not a blank image: the character and the floor are drawn


def test_bad_inputs(tmp_path, capsys, monkeypatch):
    assert sim2sim.main([f"policy={tmp_path}"]) == 1
    assert "no policy.onnx" in capsys.readouterr().err
    # models:/ URIs go to the MLflow store (tests/test_promote.py); one that does not exist is an error, not a new store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}")
    assert sim2sim.main(["policy=models:/HumanoidAMP-policy@champion"]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "none").exists()
    assert sim2sim.main(["policy=models:/HumanoidAMP-policy"]) == 1
    assert "models:/NAME@ALIAS" in capsys.readouterr().err
    assert sim2sim.main([]) == 2
