"""The child process behind :class:`tracking.remote.ProcessTracker`: one MlflowTracker, requests on stdin.

Each request is ``(method, args, kwargs)``; each reply ``(ok, value, (experiment_id, run_id))``
with ``value = ("unavailable"|"rejected", message)`` when the call failed. Anything MLflow prints
goes to stderr (stdout carries the replies). Exits when stdin closes.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    # Ctrl+C and SIGTERM are for the training process, which ends the run through us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the replies
    inp = sys.stdin.buffer

    from tracking.base import TrackingRejectedError, TrackingUnavailableError
    from tracking.remote import read_msg, write_msg

    tracker = None
    while True:
        try:
            method, args, kwargs = read_msg(inp)
        except EOFError:
            return 0
        try:
            if method == "__init__":
                from tracking.mlflow_tracker import MlflowTracker

                tracker = MlflowTracker(*args, **kwargs)
                value = None
            else:
                value = getattr(tracker, method)(*args, **kwargs)
            reply = (True, value, (tracker.experiment_id, tracker.run_id))
        except TrackingRejectedError as e:
            reply = (False, ("rejected", str(e)), None)
        except TrackingUnavailableError as e:
            reply = (False, ("unavailable", str(e)), None)
        except Exception as e:  # an unforeseen client error: the caller spools and retries
            reply = (False, ("unavailable", f"{type(e).__name__}: {e}"), None)
        write_msg(out, reply)


if __name__ == "__main__":
    sys.exit(main())
