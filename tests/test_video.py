"""The video camera follows the character, and a child process that renders gets an offscreen
OpenGL backend (or one line saying which package is missing).

Rendering runs in a child process with the backend :func:`offscreen_gl` picks: ``MUJOCO_GL`` is
read when mujoco is imported, and without a display a failed GLFW context can abort the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from isaacgymenvs import video
from isaacgymenvs.video import offscreen_gl
from tests.helpers.training import REPO


def camera_check(name: str) -> dict:
    """(In the child.) The character's eval model seen by the recorder's camera with its root moved
    by 0 and by 5 m: how many pixels show the character, and whether they are the same pixels; the
    same with MuJoCo's default free camera (which does not follow)."""
    import mujoco
    import numpy as np

    from isaacgymenvs import characters
    from isaacgymenvs.video import VideoRecorder

    m = characters.load_model(name, variant="eval")  # the model sim2sim renders
    rec = VideoRecorder(m, "unused.gif", width=160, height=120)
    rec.renderer.enable_segmentation_rendering()
    d = mujoco.MjData(m)

    def mask(shift_xy, camera) -> np.ndarray:
        d.qpos[:] = m.qpos0
        d.qpos[:2] += shift_xy
        mujoco.mj_forward(m, d)
        rec.renderer.update_scene(d, camera=camera)
        seg = rec.renderer.render()  # [H, W, 2]: object id, object type
        geom = (seg[..., 1] == mujoco.mjtObj.mjOBJ_GEOM) & (seg[..., 0] >= 0)
        return geom & (m.geom_bodyid[np.where(geom, seg[..., 0], 0)] > 0)  # a geom of the character, not the floor

    fixed = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(m, fixed)
    start = mask((0.0, 0.0), rec.camera)
    shifts = ((5.0, 0.0), (0.0, 5.0), (-3.0, 2.0))
    return {
        "camera": m.camera(rec.camera.fixedcamid).name
        if rec.camera.type == mujoco.mjtCamera.mjCAMERA_FIXED
        else f"tracking body {rec.camera.trackbodyid}",
        "pixels": int(start.sum()),
        "same_pixels_moved": [bool(np.array_equal(mask(s, rec.camera), start)) for s in shifts],
        "fixed_pixels": [int(mask(s, fixed).sum()) for s in ((0.0, 0.0), (5.0, 0.0))],
    }


@pytest.mark.parametrize("name", ["amp_humanoid", "unitree_g1"])
def test_the_camera_follows_the_character(name):
    """The character moved 5 m along x, along y, or 3 m and 2 m, covers the same pixels; a camera
    that does not follow loses it (so the check can fail)."""
    from isaacgymenvs import assets, characters

    try:
        spec = characters.get_character(name)
        assets.asset_path(spec.eval_mjcf or spec.mjcf)
    except assets.AssetNotFoundError as e:
        pytest.skip(f"asset missing: {e}")
    backend, why = offscreen_gl()
    if why:
        pytest.skip(f"no offscreen OpenGL here: {why}")
    env = dict(os.environ, PYTHONPATH=str(REPO), **({"MUJOCO_GL": backend} if backend else {}))
    code = f"import json; from tests.test_video import camera_check; print(json.dumps(camera_check({name!r})))"
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["camera"] == ("side" if name == "amp_humanoid" else "tracking body 1")  # the root (free-joint) body
    assert res["pixels"] > 200  # the character fills part of the picture, not a few stray pixels
    assert res["same_pixels_moved"] == [True, True, True]
    assert res["fixed_pixels"][0] > 200 and res["fixed_pixels"][1] == 0


def test_offscreen_gl_picks_an_installed_backend_or_names_the_package(monkeypatch):
    installed: set[str] = set()
    monkeypatch.setattr(video.ctypes.util, "find_library", lambda lib: f"lib{lib}.so" if lib in installed else None)
    assert offscreen_gl({"DISPLAY": ":0"}) == (None, None)  # a display: GLFW, nothing to set
    backend, why = offscreen_gl({})
    assert backend is None and "libegl1" in why and "libosmesa6" in why and "\n" not in why
    installed.add("OSMesa")
    assert offscreen_gl({}) == ("osmesa", None)
    installed.add("EGL")
    assert offscreen_gl({}) == ("egl", None)  # EGL first: the GPU where there is one
    assert offscreen_gl({"MUJOCO_GL": "osmesa"}) == ("osmesa", None)  # the user's choice is kept
    assert offscreen_gl({"MUJOCO_GL": "glfw", "DISPLAY": ":0"}) == ("glfw", None)
    installed.clear()
    backend, why = offscreen_gl({"MUJOCO_GL": "egl"})
    assert backend is None and why.startswith("MUJOCO_GL=egl needs the libEGL") and "apt install libegl1" in why
