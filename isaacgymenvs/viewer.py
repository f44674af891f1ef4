"""The on-screen viewer of ``test=True headless=False``: MuJoCo's passive viewer showing env 0 in
real time, its camera following the character.

The viewer renders from its own thread. It gets its own ``MjData``, written only under the
viewer's lock from the pose of env 0 (``qpos``: free joint xyz + quaternion wxyz, then the hinges),
so it never reads a state that a backend is stepping (the CPU backend steps its envs' data in a
thread pool; the Warp backend's state is on the GPU). :meth:`LiveViewer.close` waits for the
viewer's thread to end before the process goes on to exit (a window torn down during interpreter
shutdown crashed the process in 3 of 4 runs).

May import: mujoco, numpy, isaacgymenvs.video (its following camera). Used by isaacgymenvs.train.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import mujoco
import numpy as np

from isaacgymenvs.video import follow_camera

#: Longest wait for the viewer's thread to end at close (seconds).
CLOSE_TIMEOUT_S = 5.0


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform == "darwin"


class LiveViewer:
    """``show(qpos)`` once per control step; ``close()`` at the end. ``launch`` makes the window
    (``mujoco.viewer.launch_passive``; a test passes a stand-in with the same ``lock``, ``sync``,
    ``cam``, ``is_running`` and ``close``)."""

    def __init__(self, model: mujoco.MjModel, control_dt: float, launch=None):
        if launch is None:  # imported here: mujoco.viewer loads GLFW
            from mujoco.viewer import launch_passive as launch
        self.model = model
        self.data = mujoco.MjData(model)
        mujoco.mj_forward(model, self.data)
        self.control_dt = float(control_dt)
        before = set(threading.enumerate())
        self.handle = launch(model, self.data, show_left_ui=False, show_right_ui=False)
        # the viewer's own (daemon) thread: joined at close, so the window is torn down before
        # the interpreter's shutdown would kill that thread in the middle of it
        self._threads = [t for t in threading.enumerate() if t not in before]
        with self.handle.lock():
            follow_camera(model, cam=self.handle.cam)
        self._next = time.perf_counter()

    @property
    def open(self) -> bool:
        """False once the user closed the window."""
        return bool(self.handle.is_running())

    def show(self, qpos) -> bool:
        """Show the pose ``qpos`` [nq] and wait until its control step is due (real time).
        Returns False (showing nothing) once the window was closed."""
        if not self.open:
            return False
        with self.handle.lock():
            self.data.qpos[:] = np.asarray(qpos, dtype=np.float64)
            mujoco.mj_forward(self.model, self.data)
        self.handle.sync()
        self._next += self.control_dt
        wait = self._next - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:  # behind (a slow policy or physics): do not try to catch up
            self._next = time.perf_counter()
        return True

    def close(self) -> None:
        self.handle.close()
        t_end = time.perf_counter() + CLOSE_TIMEOUT_S
        for t in self._threads:
            t.join(max(0.0, t_end - time.perf_counter()))
