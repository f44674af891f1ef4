"""Tracking command line.

    python -m tracking uri                    # the store a training would use now
    python -m tracking sync runs/<run> [--uri URI] [--status KILLED]

``sync`` sends what a training could not send before it exited (the server was down at the end):
the spooled metrics (oldest first, each once), the checkpoints and curves, and the final status
kept in ``runs/<run>/tracking/end.json``. For a run whose process died without an end (SIGKILL,
power loss) pass ``--status KILLED`` to close it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _sync(a) -> int:
    from tracking.base import FAILED, FINISHED, KILLED, TrackingError
    from tracking.mlflow_tracker import MlflowTracker
    from tracking.session import TrackingSession
    from tracking.spool import Spool

    run_dir = Path(a.run_dir)
    tdir = run_dir / "tracking"
    if not (tdir / "run.json").exists():
        print(f"error: {tdir / 'run.json'} not found: {run_dir} was not tracked", file=sys.stderr)
        return 2
    info = json.loads((tdir / "run.json").read_text())
    uri = a.uri or (os.environ.get("MLFLOW_TRACKING_URI") if "***" in info["uri"] else None) or info["uri"]
    end = json.loads((tdir / "end.json").read_text()) if (tdir / "end.json").exists() else None
    status = a.status or (end or {}).get("status")
    if status not in (None, FINISHED, FAILED, KILLED):
        print(f"error: --status must be FINISHED, FAILED or KILLED, got {status!r}", file=sys.stderr)
        return 2
    tracker = MlflowTracker(uri)
    try:
        tracker.attach(info["run_id"])
    except TrackingError as e:
        print(f"error: run {info['run_id']} at {info['uri']}: {e}", file=sys.stderr)
        return 1
    s = TrackingSession(tracker, {"end_timeout_s": a.timeout_s, "probe_every_s": 1}, info.get("experiment", ""))
    s.run_id, s.run_dir, s.spool = info["run_id"], run_dir, Spool(tdir / "spool.jsonl")
    pending = len(s.spool)
    if status is None:
        ok = s._drain(force=True)
        print(f"sent {pending - len(s.spool)} of {pending} spooled epoch(s); no final status known "
              "(pass --status KILLED to close a run whose process died)")
        return 0 if ok else 1
    for name, (path, epoch) in ((end or {}).get("artifacts") or {}).items():
        setattr(s, f"_{name}", (Path(path), int(epoch)))
    s.end(status, (end or {}).get("error"))
    ok = not (tdir / "end.json").exists()
    print(f"sent {pending - len(s.spool)} of {pending} spooled epoch(s); run {info['run_id']} "
          + (f"ended {status}" if ok else "not finished (store unreachable)"))
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracking", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("uri", help="print the tracking URI a training would use now")
    s = sub.add_parser("sync", help="send a run's spool, artifacts and final status")
    s.add_argument("run_dir")
    s.add_argument("--uri", help="tracking URI (default: the one the run used)")
    s.add_argument("--status", help="final status when the run has none recorded: FINISHED, FAILED or KILLED")
    s.add_argument("--timeout-s", type=float, default=30)
    a = p.parse_args(argv)
    if a.cmd == "uri":
        from tracking.store import redact, resolve_uri

        print(redact(resolve_uri()))
        return 0
    return _sync(a)


if __name__ == "__main__":
    sys.exit(main())
