"""A tracker that does its store work in a child process (``tracking.sender: process``, the default).

Writing one epoch of 40 metrics costs the MLflow client 4 ms (server) to 7-11 ms (embedded
sqlite store) of Python CPU time. In a thread of the training process that time competes with the
training loop for the GIL; in a child process it runs on another core and the training process
pays only for pickling the request (tens of microseconds). BENCHMARKS.md has the numbers.

:class:`ProcessTracker` forwards every :class:`tracking.base.Tracker` call to
``python -m tracking.worker`` over its stdin/stdout (length-prefixed pickles, one request at a
time) and raises the same errors the in-process tracker raises. If the worker dies, the call
raises :class:`TrackingUnavailableError` (the session spools the epoch) and the next call starts a
new worker, connected to the same experiment and attached to the same run.

The worker ignores SIGINT and SIGTERM (Ctrl+C reaches the whole process group; the training
process ends the run as KILLED through it) and exits when its stdin closes, so it never outlives
the training process.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path

from tracking.base import Tracker, TrackingRejectedError, TrackingUnavailableError

_HEADER = struct.Struct("!I")
REPO = Path(__file__).resolve().parents[1]


def write_msg(f, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_HEADER.pack(len(data)) + data)
    f.flush()


def read_msg(f):
    head = f.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("pipe closed")
    n = _HEADER.unpack(head)[0]
    data = f.read(n)
    if len(data) < n:
        raise EOFError("pipe closed mid-message")
    return pickle.loads(data)


class ProcessTracker(Tracker):
    def __init__(self, uri: str, http_retries: int = 0, http_timeout_s: float = 5, artifact_timeout_s: float = 120):
        self.uri = uri
        self._args = (uri, http_retries, http_timeout_s, artifact_timeout_s)
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self._experiment: str | None = None
        self._url = ""
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    # ------------------------------------------------------------------ the worker
    def _spawn(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tracking.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        write_msg(self._proc.stdin, ("__init__", self._args, {}))
        self._reply()
        if self._experiment is not None:  # a restarted worker: back to where the last one was
            write_msg(self._proc.stdin, ("connect", (self._experiment,), {}))
            self._reply()
        if self.run_id:
            write_msg(self._proc.stdin, ("attach", (self.run_id,), {}))
            self._reply()

    def _reply(self):
        ok, value, state = read_msg(self._proc.stdout)
        if state:  # a fresh worker knows nothing yet: keep what we know
            self.experiment_id = state[0] or self.experiment_id
            self.run_id = state[1] or self.run_id
        if ok:
            return value
        kind, msg = value
        raise (TrackingRejectedError if kind == "rejected" else TrackingUnavailableError)(msg)

    def _kill(self) -> None:
        p, self._proc = self._proc, None
        if p is not None:
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def _request(self, method: str, *args, **kwargs):
        with self._lock:
            try:
                if self._proc is None or self._proc.poll() is not None:
                    if self._proc is not None:
                        self.restarts += 1
                    self._spawn()
                write_msg(self._proc.stdin, (method, args, kwargs))
                return self._reply()
            except (EOFError, BrokenPipeError, OSError, pickle.UnpicklingError) as e:
                code = self._proc.poll() if self._proc is not None else None
                self._kill()
                raise TrackingUnavailableError(
                    f"{self.uri}: the tracking worker process stopped ({type(e).__name__}: {e}; exit code {code}); "
                    "a new one starts with the next request"
                ) from e

    def close(self) -> None:
        with self._lock:
            self._kill()

    def __del__(self):
        try:
            self._kill()
        except Exception:
            pass

    # ------------------------------------------------------------------ Tracker
    def probe(self) -> bool:
        try:
            return bool(self._request("probe"))
        except TrackingUnavailableError:
            return False

    def connect(self, experiment: str) -> str:
        eid = self._request("connect", experiment)
        self._experiment = experiment
        return eid

    def attach(self, run_id: str) -> None:
        self._request("attach", run_id)

    def reopen(self) -> None:
        self._request("reopen")

    def start_run(self, run_name: str, tags: dict[str, str]) -> str:
        run_id = self._request("start_run", run_name, tags)
        self._url = self._request("run_url")
        return run_id

    def log_params(self, params: dict[str, str]) -> None:
        self._request("log_params", params)

    def set_tags(self, tags: dict[str, str]) -> None:
        self._request("set_tags", tags)

    def log_metrics(self, step: int, metrics: dict[str, float], timestamp_ms: int) -> None:
        self._request("log_metrics", step, metrics, timestamp_ms)

    def log_artifact(self, local_path, artifact_path=None) -> None:
        self._request("log_artifact", str(Path(local_path).resolve()), artifact_path)

    def end_run(self, status: str) -> None:
        self._request("end_run", status)

    def run_url(self) -> str:
        if not self._url and self.run_id:
            try:
                self._url = self._request("run_url")
            except TrackingUnavailableError:
                return ""
        return self._url
