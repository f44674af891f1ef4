"""The MLflow UI on the embedded store, light enough for a 2-core machine (``make mlflow-ui``).

    python -m tracking ui [--dir mlruns] [--port 5000]

One ``mlflow server`` worker on 127.0.0.1 and no job-runner processes (``--workers 1``,
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: the GenAI job runner is of no use to training runs),
serving ``<dir>/mlflow.db`` with artifacts in ``<dir>/artifacts``. The URL is printed when the
server answers ``/health``, not before; Ctrl+C, SIGTERM or SIGHUP stops it and its server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_S = 120


def serve(folder: Path, port: int, host: str = "127.0.0.1") -> int:
    import requests

    folder = Path(folder).resolve()
    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--default-artifact-root",
            str(folder / "artifacts"), "--host", host, "--port", str(port), "--workers", "1"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    url = f"http://{host}:{port}"

    def _stop(signum, frame):  # Ctrl+C, kill or a service manager: stop the server too
        raise SystemExit(0)

    # set, not inherited: a process started in the background (``make mlflow-ui &``, nohup) inherits
    # SIGINT ignored, and Python then raises no KeyboardInterrupt for it
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                print(f"error: mlflow server exited ({proc.returncode}) before it answered on {url}", file=sys.stderr)
                return 1
            try:
                if requests.get(url + "/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                print(f"error: mlflow server did not answer on {url} within {START_TIMEOUT_S} s", file=sys.stderr)
                return 1
            time.sleep(0.25)
        print(f"MLflow UI: {url}  (store sqlite:///{folder / 'mlflow.db'}; Ctrl+C stops it)", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """End ``proc``'s process group (started with ``start_new_session``): SIGTERM, then SIGKILL
    after ``grace_s`` seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace_s)
