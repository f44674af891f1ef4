"""AMP (Adversarial Motion Priors) training on MuJoCo with IsaacGymEnvs' command line.

Importing the package checks one thing first: that the OpenGL library the ``MUJOCO_GL`` backend
names is installed. ``import mujoco`` loads it at once, and without it every command would stop
with PyOpenGL's traceback (``'NoneType' object has no attribute 'glGetError'``) instead of a line
that names the package to install.
"""

from __future__ import annotations


def _check_mujoco_gl() -> None:
    import ctypes.util
    import os

    backend = os.environ.get("MUJOCO_GL", "").strip().lower()
    needs = {"osmesa": ("OSMesa", "libosmesa6"), "egl": ("EGL", "libegl1 libegl-mesa0 (or an NVIDIA driver)")}
    if backend in needs and ctypes.util.find_library(needs[backend][0]) is None:
        lib, package = needs[backend]
        raise SystemExit(
            f"error: MUJOCO_GL={backend} needs the lib{lib} system library, which is not installed: install it "
            f"(Debian/Ubuntu: apt install {package}), or use another MUJOCO_GL (egl, osmesa) or none"
        )


_check_mujoco_gl()
