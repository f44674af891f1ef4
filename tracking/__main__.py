"""Tracking command line.

    python -m tracking uri                    # the store a training would use now
    python -m tracking ui [--dir mlruns] [--port 5000]   # the MLflow UI on it (make mlflow-ui)
    python -m tracking sync runs/<run> [--uri URI] [--status KILLED]

``sync`` sends what a training could not send before it exited (the server was down at the end):
the run itself when it was never created (a sweep trial that started while the store was down),
the spooled metrics (oldest first, each once), the checkpoints and curves, and the final status
kept in ``runs/<run>/tracking/end.json``. A run whose process is gone without an end (SIGKILL,
power loss) on this host is closed KILLED (``--status`` sets another status).

    python -m tracking sync --sweep NAME [--storage DIR]

does that for every trial of a sweep (trial folders on this host), closes child runs whose process
is gone, and sends the sweep's own results when the store did not answer at its end.
"""

from __future__ import annotations

import argparse
import sys


def _sync(a) -> int:
    from tracking.base import TrackingError
    from tracking.sync import SyncError, sync_run, sync_sweep

    if a.sweep:
        return sync_sweep(a.sweep, a.storage, a.uri, a.timeout_s)
    if not a.run_dir:
        print("error: sync needs RUN_DIR or --sweep NAME", file=sys.stderr)
        return 2
    try:
        line = sync_run(a.run_dir, a.uri, a.status, a.timeout_s)
    except SyncError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrackingError as e:
        print(f"error: {a.run_dir}: {e}", file=sys.stderr)
        return 1
    print(line)
    return 0 if "not finished" not in line and "did not answer" not in line else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tracking", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("uri", help="print the tracking URI a training would use now")
    u = sub.add_parser("ui", help="serve the MLflow UI on a sqlite store (one worker); print its URL when it answers")
    u.add_argument("--dir", help="the store's folder: mlflow.db and artifacts/ (default: the embedded store's)")
    u.add_argument("--port", type=int, default=5000)
    s = sub.add_parser("sync", help="send a run's spool, artifacts and final status (or a whole sweep's)")
    s.add_argument("run_dir", nargs="?")
    s.add_argument(
        "--sweep", help="every trial of this sweep (sweeps_out/NAME), orphaned child runs, the sweep's results"
    )
    s.add_argument("--storage", help="the sweep's storage folder (default: sweeps_out/)")
    s.add_argument("--uri", help="tracking URI (default: the one the run used)")
    s.add_argument("--status", help="final status when the run has none recorded: FINISHED, FAILED or KILLED")
    s.add_argument("--timeout-s", type=float, default=30)
    a = p.parse_args(argv)
    if a.cmd == "uri":
        from tracking.store import redact, resolve_uri

        print(redact(resolve_uri()))
        return 0
    if a.cmd == "ui":
        from tracking.store import mlruns_dir
        from tracking.ui import serve

        return serve(a.dir or mlruns_dir(), a.port)
    return _sync(a)


if __name__ == "__main__":
    sys.exit(main())
