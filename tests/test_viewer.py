"""The on-screen viewer (test=True headless=False): env 0's pose in the viewer's own data, a
following camera, real-time pacing, a closed window ends the play, and the process exits cleanly."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time

import mujoco
import numpy as np
import pytest

from isaacgymenvs import viewer as live
from tests.helpers.training import REPO, TINY, trainer


class FakeHandle:
    """What ``mujoco.viewer.launch_passive`` returns, with a thread standing in for the window's."""

    def __init__(self, model, data):
        self.data, self.cam = data, mujoco.MjvCamera()
        self.syncs, self.locked = 0, False
        self._exit = threading.Event()
        self.thread = threading.Thread(target=self._exit.wait, daemon=True)
        self.thread.start()

    @contextlib.contextmanager
    def lock(self):
        self.locked = True
        yield
        self.locked = False

    def sync(self):
        assert not self.locked
        self.syncs += 1

    def is_running(self):
        return not self._exit.is_set()

    def close(self):
        time.sleep(0.05)  # the window's teardown takes a while: close must wait for it
        self._exit.set()


def _launch(handles):
    def launch(model, data, show_left_ui=True, show_right_ui=True):
        assert show_left_ui is False and show_right_ui is False
        handles.append(FakeHandle(model, data))
        return handles[-1]

    return launch


def test_shows_the_given_pose_in_its_own_data_and_follows_the_root(humanoid):
    model, _ = humanoid
    handles: list[FakeHandle] = []
    v = live.LiveViewer(model, 0.0, launch=_launch(handles))
    h = handles[0]
    # the humanoid's own "side" camera, which tracks its centre of mass (as in the GIFs)
    assert h.cam.type == mujoco.mjtCamera.mjCAMERA_FIXED and h.cam.fixedcamid == model.camera("side").id
    assert model.cam_mode[model.camera("side").id] == mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM
    qpos = model.qpos0.copy()
    qpos[:3] = [1.5, -2.0, 0.9]
    qpos[3:7] = [np.cos(0.25), 0.0, 0.0, np.sin(0.25)]  # 0.5 rad about z
    qpos[7:] = 0.1
    assert v.show(qpos)
    assert h.data is v.data and h.syncs == 1
    np.testing.assert_array_equal(v.data.qpos, qpos)
    np.testing.assert_allclose(v.data.xpos[1], [1.5, -2.0, 0.9], atol=1e-12)  # the root body is at the free joint
    # the viewer's data is its own: a later change of the caller's array does not reach it
    qpos[:3] = 0.0
    assert v.data.qpos[0] == 1.5
    v.close()


def test_a_closed_window_ends_the_play_and_close_joins_the_viewer_thread(humanoid):
    model, _ = humanoid
    handles: list[FakeHandle] = []
    v = live.LiveViewer(model, 0.0, launch=_launch(handles))
    h = handles[0]
    h._exit.set()  # the user closed the window
    before = v.data.qpos.copy()
    assert not v.show(model.qpos0 + 0.3)
    np.testing.assert_array_equal(v.data.qpos, before)
    h._exit.clear()
    v.close()
    assert not h.thread.is_alive()


def test_real_time_pacing(humanoid):
    """Five control steps of 40 ms take at least 160 ms (the first is due at once)."""
    model, _ = humanoid
    v = live.LiveViewer(model, 0.04, launch=_launch([]))
    t = time.perf_counter()
    for _ in range(5):
        v.show(model.qpos0)
    assert time.perf_counter() - t >= 0.16
    v.close()


def test_play_shows_env_0_every_step(tmp_path, tiny_checkpoint, monkeypatch):
    """play(headless=False) hands the viewer env 0's pose after every step, and stops when the
    window is closed."""
    import torch

    from isaacgymenvs import train as train_mod

    shown: list[np.ndarray] = []
    t = trainer(tmp_path, f"checkpoint={tiny_checkpoint}", "test=True", "num_envs=2")
    sim = t.vec_env.task.sim

    class Recording:
        def __init__(self, model, control_dt):
            assert model is sim.model and control_dt == t.vec_env.task.dt

        def show(self, pose):
            expect = torch.cat((sim.root_pos_w[0], sim.root_quat_w[0], sim.dof_pos[0])).numpy()
            np.testing.assert_array_equal(pose, expect)
            shown.append(pose)
            return len(shown) < 7  # the window closes at the 7th step

        def close(self):
            shown.append(None)

    monkeypatch.setattr(live, "LiveViewer", Recording)
    monkeypatch.setattr(live, "display_available", lambda: True)
    out = train_mod.play(t, games_num=100, test_steps=50, headless=False)
    assert out["steps"] == 7 and len(shown) == 8 and shown[-1] is None


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (apt-get install xvfb xauth)")
def test_viewer_under_a_virtual_display_exits_cleanly(tmp_path, tiny_checkpoint):
    """MuJoCo's real viewer on Xvfb, three times: every run exits 0 (before the viewer joined its
    thread, 3 of 4 such runs ended in a segmentation fault or hung at exit)."""
    for _ in range(3):
        r = subprocess.run(
            ["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, str(REPO / "isaacgymenvs" / "train.py")]
            + TINY
            + ["test=True", "headless=False", "num_envs=2", "test_steps=40", f"checkpoint={tiny_checkpoint}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert "test: {'steps': 40" in r.stdout
