"""sim2sim for the tests: ``python -m isaacgymenvs.sim2sim`` in a fresh process, checked to exit 0
and to never import torch (skipped with the reason where there is no offscreen OpenGL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.training import REPO


def sim2sim_cli(*args) -> dict:
    """``python -m isaacgymenvs.sim2sim ARGS`` in a fresh process: its JSON, after checking that it
    exited 0 and never imported torch (skips where there is no offscreen OpenGL)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    code = (
        "import json, sys; from isaacgymenvs.sim2sim import main; rc = main(sys.argv[1:]); "
        "print('TORCH', 'torch' in sys.modules); sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and ("gladLoadGL" in r.stderr or "EGL" in r.stderr or "OpenGL" in r.stderr):
        pytest.skip(f"no offscreen OpenGL here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "TORCH False" in out  # the deployment check never imports torch
    return json.loads(out[: out.index("TORCH")])
