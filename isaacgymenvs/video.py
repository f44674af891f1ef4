"""Offscreen video of a character: MuJoCo's renderer into an animated GIF (no torch, no ffmpeg).

On a machine without a display set ``MUJOCO_GL=egl`` (or ``osmesa``) before running;
:func:`offscreen_gl` picks one for a child process that renders (``make promote`` does so).

The camera follows the character: the model's own ``side`` camera where it has one (the AMP
humanoid's, ``mode="trackcom"`` on its torso: 3 m to its side, world-fixed orientation), else a
tracking camera on the root body (``trackbodyid=1``, the free-joint body: its subtree is the whole
character; the G1 models have no camera of their own). ``tests/test_video.py`` checks that the
character stays where it is in the picture when it moves 5 m.
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

import mujoco
import numpy as np

#: How a failed renderer's message begins (a child process's one-line error is told by it).
RENDER_ERROR = "cannot render a video"

#: ``MUJOCO_GL`` offscreen backends: the system library each loads, and the Debian/Ubuntu packages
#: that hold it (the same table as ``isaacgymenvs._check_mujoco_gl``, which runs before mujoco is imported).
OFFSCREEN = {"egl": ("EGL", "libegl1 libgl1"), "osmesa": ("OSMesa", "libosmesa6")}


class RenderUnavailableError(RuntimeError):
    """MuJoCo cannot open an offscreen OpenGL context (no display and no ``MUJOCO_GL`` backend)."""


def offscreen_gl(environ=None) -> tuple[str | None, str | None]:
    """``(MUJOCO_GL for a child process that renders, None)``, or ``(None, why it cannot render)``.

    The user's ``MUJOCO_GL`` is kept (its library checked); on a display (``DISPLAY`` or
    ``WAYLAND_DISPLAY``) none is needed (``(None, None)``: GLFW); else the first offscreen backend
    whose library is installed: ``egl``, then ``osmesa``."""
    env = os.environ if environ is None else environ
    given = env.get("MUJOCO_GL", "").strip().lower()
    if given:
        lib, packages = OFFSCREEN.get(given, (None, ""))
        if lib is not None and ctypes.util.find_library(lib) is None:
            return None, f"MUJOCO_GL={given} needs the lib{lib} system library (Debian/Ubuntu: apt install {packages})"
        return given, None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None, None
    for backend, (lib, _) in OFFSCREEN.items():
        if ctypes.util.find_library(lib) is not None:
            return backend, None
    return None, (
        "no display and no offscreen OpenGL library (Debian/Ubuntu: apt install libegl1 libgl1, or libosmesa6 "
        "for MUJOCO_GL=osmesa)"
    )


def make_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    try:
        return mujoco.Renderer(model, height, width)
    except (mujoco.FatalError, RuntimeError) as e:
        raise RenderUnavailableError(
            f"{RENDER_ERROR}: {e}. Run with MUJOCO_GL=egl (an NVIDIA or Mesa EGL driver; Debian/Ubuntu: apt install "
            "libegl1 libgl1) or MUJOCO_GL=osmesa (CPU only; apt install libosmesa6) in the environment, or leave out video="
        ) from e


def follow_camera(model: mujoco.MjModel, camera: str = "side", cam: mujoco.MjvCamera | None = None) -> mujoco.MjvCamera:
    """``cam`` (a new ``MjvCamera`` by default) set to follow the character: the model's camera
    ``camera`` if it has one (the AMP humanoid's "side" camera tracks its centre of mass), else a
    camera tracking the root body from the side (3 m away, looking along +y, 15 degrees down).
    The GIFs and the on-screen viewer (isaacgymenvs.viewer) both see the character through it."""
    cam = mujoco.MjvCamera() if cam is None else cam
    if camera in [model.camera(i).name for i in range(model.ncam)]:
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        cam.fixedcamid = model.camera(camera).id
        return cam
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    cam.trackbodyid = 1  # the root (free-joint) body: its subtree com is the character's
    cam.distance, cam.azimuth, cam.elevation = 3.0, 90.0, -15.0
    return cam


class VideoRecorder:
    """Collects frames of one character, seen by :func:`follow_camera`, and writes them as a GIF at ``fps``."""

    def __init__(
        self, model: mujoco.MjModel, path, fps: float = 15.0, width: int = 480, height: int = 360, camera: str = "side"
    ):
        self.model = model
        self.path = Path(path)
        self.fps = fps
        self.data = mujoco.MjData(model)
        self.renderer = make_renderer(model, height, width)
        self.camera = follow_camera(model, camera)
        self.frames: list[np.ndarray] = []

    def capture_data(self, data: mujoco.MjData) -> None:
        self.renderer.update_scene(data, camera=self.camera)
        self.frames.append(self.renderer.render())

    def capture_qpos(self, qpos) -> None:
        """A frame of the pose ``qpos`` (free joint xyz + quaternion wxyz, then the hinges)."""
        self.data.qpos[:] = np.asarray(qpos, dtype=np.float64)
        mujoco.mj_forward(self.model, self.data)
        self.capture_data(self.data)

    def save(self) -> dict:
        from PIL import Image

        if not self.frames:
            raise ValueError(f"no frame was captured for {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        imgs = [Image.fromarray(f) for f in self.frames]
        imgs[0].save(self.path, save_all=True, append_images=imgs[1:], duration=int(1000 / self.fps), loop=0)
        self.renderer.close()
        return {"video": str(self.path), "video_frames": len(imgs)}
