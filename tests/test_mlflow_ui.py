"""`make mlflow-ui` (``python -m tracking ui``): the URL is printed only once the server answers,
with one server worker and no job runner, and Ctrl+C stops every process of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.helpers.mlflow_server import free_port
from tests.helpers.training import REPO

pytestmark = pytest.mark.slow


def _tree_size(pid: int) -> int:
    """``pid`` and all its descendants."""
    rows = [
        r.split()
        for r in subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.splitlines()
    ]
    children: dict[int, list[int]] = {}
    for child, parent in ((int(a), int(b)) for a, b in rows):
        children.setdefault(parent, []).append(child)
    todo, seen = [pid], 0
    while todo:
        seen += 1
        todo += children.get(todo.pop(), [])
    return seen


@pytest.mark.parametrize("stop", ["ctrl_c", "ctrl_c_inherited_ignored", "sigterm"])
def test_the_ui_prints_its_url_when_it_answers_and_stops_whole(tmp_path, stop):
    """Ctrl+C reaches the whole process group; SIGTERM (kill, a service manager) only the launcher,
    which must take its server down with it. A launcher whose parent ignored SIGINT (a background
    job, nohup, a process that set it so) inherits that, and still stops on Ctrl+C."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    p = subprocess.Popen([sys.executable, "-m", "tracking", "ui", "--dir", str(tmp_path / "store"), "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         start_new_session=True,
                         preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
                         if stop == "ctrl_c_inherited_ignored" else None)  # fmt: skip
    try:
        deadline, line = time.monotonic() + 120, ""
        while time.monotonic() < deadline and "MLflow UI:" not in line:
            line = p.stdout.readline()
            assert line or p.poll() is None, "the ui exited before printing its URL"
        assert f"MLflow UI: http://127.0.0.1:{port}" in line
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).ok  # it answers once it says so
        assert (tmp_path / "store" / "mlflow.db").is_file() and (tmp_path / "store" / "artifacts").is_dir()
        # the launcher, its server and one worker (no job runner, no worker pool): a handful, not 17
        assert _tree_size(p.pid) <= 4, _tree_size(p.pid)
    finally:
        if stop.startswith("ctrl_c"):
            os.killpg(p.pid, signal.SIGINT)
        else:
            os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=30)
    time.sleep(1)
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
