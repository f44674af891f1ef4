"""Offscreen video of a character: MuJoCo's renderer into an animated GIF (no torch, no ffmpeg).

On a machine without a display set ``MUJOCO_GL=egl`` (or ``osmesa``) before running.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np


class RenderUnavailableError(RuntimeError):
    """MuJoCo cannot open an offscreen OpenGL context (no display and no ``MUJOCO_GL`` backend)."""


def make_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    try:
        return mujoco.Renderer(model, height, width)
    except (mujoco.FatalError, RuntimeError) as e:
        raise RenderUnavailableError(
            f"cannot render a video: {e}. Run with MUJOCO_GL=egl (an NVIDIA or Mesa EGL driver) or "
            "MUJOCO_GL=osmesa (CPU only) in the environment, or leave out video="
        ) from e


class VideoRecorder:
    """Collects frames of one character and writes them as a GIF at ``fps``."""

    def __init__(
        self, model: mujoco.MjModel, path, fps: float = 15.0, width: int = 480, height: int = 360, camera: str = "side"
    ):
        self.model = model
        self.path = Path(path)
        self.fps = fps
        self.data = mujoco.MjData(model)
        self.renderer = make_renderer(model, height, width)
        names = [model.camera(i).name for i in range(model.ncam)]
        if camera in names:  # the model's own camera (the AMP humanoid has a tracking "side" camera)
            self.camera = camera
        else:  # else a camera that follows the root body from the side (the G1 models have none)
            cam = mujoco.MjvCamera()
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            cam.trackbodyid = 1
            cam.distance, cam.azimuth, cam.elevation = 3.0, 90.0, -15.0
            self.camera = cam
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
