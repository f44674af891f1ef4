"""One sweep at a time per name and storage: a lock file that names its holder.

``<storage>/<name>.lock`` holds ``{"host", "pid", "since"}`` of the driver running the sweep. A second
start (or a ``RESUME=1`` while it runs) is refused in one line naming that holder. A lock whose
holder is gone (same host, no such process) is stale and is taken over; a lock of another host is
never guessed at (its process cannot be checked from here): the message says how to remove it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from tracking.store import process_alive


class SweepLocked(RuntimeError):
    pass


class SweepLock:
    def __init__(self, storage: Path, name: str):
        self.path = Path(storage) / f"{name}.lock"
        self.name = name
        self.held = False

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def acquire(self) -> "SweepLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                h = self._holder()
                if h.get("host") == me["host"] and h.get("pid") and not process_alive(h["pid"]):
                    # stale: move it aside atomically (one taker wins), then try again
                    try:
                        os.replace(self.path, self.path.with_name(f"{self.path.name}.stale-{os.getpid()}"))
                        os.unlink(self.path.with_name(f"{self.path.name}.stale-{os.getpid()}"))
                    except FileNotFoundError:
                        pass
                    continue
                if not h:  # being written this instant
                    time.sleep(0.2)
                    continue
                where = (
                    f"host {h.get('host')}, pid {h.get('pid')}, since {h.get('since')}"
                    if h.get("host")
                    else "unknown holder"
                )
                extra = "" if h.get("host") == me["host"] else f"; if that machine's sweep is gone, remove {self.path}"
                raise SweepLocked(
                    f"sweep {self.name!r} is already running in {self.path.parent} ({where}): wait for it, "
                    f"or stop it (Ctrl+C) and `make sweep SWEEP={self.name} RESUME=1`{extra}"
                ) from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me))
            self.held = True
            return self
        raise SweepLocked(f"sweep {self.name!r}: could not take the lock {self.path}")

    def release(self) -> None:
        if self.held and self._holder().get("pid") == os.getpid():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
