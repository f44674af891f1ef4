"""``python -m sweeps [NAME] [--resume] [--storage DIR] [--tracking-uri URI] [--verbose]``
(``make sweep SWEEP=NAME RESUME=1 STORAGE=DIR VERBOSE=1``)."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from isaacgymenvs.learning.config_check import ConfigError

    ap = argparse.ArgumentParser(prog="python -m sweeps", description=__doc__)
    ap.add_argument("name", nargs="?", default="default", help="cfg/sweep/<name>.yaml or a path to a sweep file")
    ap.add_argument("--resume", action="store_true", help="continue the interrupted sweep in its storage path")
    ap.add_argument("--storage", default=None, help="Ray storage path (default: sweeps_out/)")
    ap.add_argument(
        "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, else the embedded one)"
    )
    ap.add_argument("--check", action="store_true", help="only check the search space")
    ap.add_argument(
        "--verbose",
        action="store_true",
        help="also Ray's own output: its tables and warnings, the trials' prints (default: one line per trial report and end)",
    )
    a = ap.parse_args(argv)
    try:
        if a.check:
            from sweeps.space import check_spec, load

            combos = check_spec(load(a.name))
            print(f"sweep {a.name}: {len(combos)} combination(s) OK")
            return 0
        from sweeps.errors import SweepError
        from sweeps.lock import SweepLocked
        from sweeps.runner import run_sweep

        try:
            res = run_sweep(
                a.name, resume=a.resume, storage_path=a.storage, tracking_uri=a.tracking_uri, verbose=a.verbose
            )
        except (SweepError, SweepLocked) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    except ConfigError as e:
        print(f"error: sweep {a.name}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: resume with `make sweep RESUME=1` (python -m sweeps NAME --resume)", file=sys.stderr)
        return 130
    if res.get("interrupted"):
        return 130
    # failed trials are results (listed with their reasons); the sweep failed only if none finished
    return 0 if res.get("configurations") else 1


if __name__ == "__main__":
    sys.exit(main())
