"""A real ``mlflow server`` on 127.0.0.1 for the tests (no mocks): started in its own process group on a
free port with a sqlite store in a temporary folder, read back through its REST API, and always
killed at the end. Every wait is bounded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

SERVER_START_S = 90  # bound on one server start (about 5 s here)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mlflow server`` in its own process group on a fixed port and store."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        exe = Path(sys.executable).with_name("mlflow")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job-runner processes: faster start
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            cmd
            + [
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--default-artifact-root",
                str(self.root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}): {self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {SERVER_START_S} s: {self.log_tail()}")

    def ensure_running(self) -> None:
        """Start it again if a test before stopped or killed it (same port and store)."""
        if self.proc is None or self.proc.poll() is not None or not self.healthy():
            self.stop()
            self.start()

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/health", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # our own process group (start_new_session)
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=15)

    def kill(self) -> None:
        """The store vanishes: SIGKILL, no goodbye."""
        self.stop(signal.SIGKILL)

    def log_tail(self) -> str:
        p = self.root / "server.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def requests_to(self, endpoint: str) -> int:
        return self.log_tail_full().count(f"/api/2.0/mlflow/{endpoint} ")

    def log_tail_full(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")

    # ---------------------------------------------------------------- REST read-back
    def get(self, endpoint: str, **params):
        r = requests.get(f"{self.url}/api/2.0/mlflow/{endpoint}", params=params, timeout=10)
        assert r.ok, (endpoint, r.status_code, r.text[:500])
        return r.json()

    def runs(self, experiment: str) -> list[dict]:
        eid = self.get("experiments/get-by-name", experiment_name=experiment)["experiment"]["experiment_id"]
        r = requests.post(f"{self.url}/api/2.0/mlflow/runs/search", json={"experiment_ids": [eid]}, timeout=10)
        assert r.ok, r.text[:500]
        return r.json().get("runs", [])

    def run(self, run_id: str) -> dict:
        return self.get("runs/get", run_id=run_id)["run"]

    def history(self, run_id: str, key: str) -> list[dict]:
        return self.get("metrics/get-history", run_id=run_id, metric_key=key, max_results=1000).get("metrics", [])

    def artifacts(self, run_id: str, path: str = "") -> dict[str, dict]:
        files = self.get("artifacts/list", run_id=run_id, path=path).get("files", [])
        return {f["path"]: f for f in files}


def module_server(folder: str):
    """A module-scoped fixture: one real ``mlflow server`` (its store in a temporary ``folder``)."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory):
        s = Server(tmp_path_factory.mktemp(folder))
        s.start()
        yield s
        s.stop()

    return server


def params_of(run: dict) -> dict:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def tags_of(run: dict) -> dict:
    return {p["key"]: p["value"] for p in run["data"].get("tags", [])}
