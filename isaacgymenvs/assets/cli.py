"""``python -m isaacgymenvs.assets {fetch,verify,where}``: the command line of the asset manifest.

    python -m isaacgymenvs.assets fetch [PATH ...] [--dest DIR] [--allow-unverified]
    python -m isaacgymenvs.assets verify [ROOT ...]
    python -m isaacgymenvs.assets where

Imports: the standard library and the other modules of :mod:`isaacgymenvs.assets` only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from isaacgymenvs.assets import lookup
from isaacgymenvs.assets.download import fetch, verify
from isaacgymenvs.assets.errors import AssetError
from isaacgymenvs.assets.lookup import DEFAULT_CACHE_DIR, ENV_ASSETS_CACHE, MISSING_ASSET_HINT
from isaacgymenvs.assets.manifest import GROUPS

__all__ = ["main"]


def _where() -> dict[str, object]:
    roots = lookup.assets_root_candidates()
    groups: dict[str, object] = {}
    for g in GROUPS:
        groups[g] = None
        for r in roots:
            if (r / g).is_dir():
                groups[g] = {"root": str(r), "dir": str(r / g)}
                break
    return {
        "candidates": [str(r) for r in roots],
        "cache": str(lookup.cache_dir()),
        "groups": groups,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m isaacgymenvs.assets``; returns the exit code.

    * ``fetch [PATH ...] [--dest DIR] [--allow-unverified]``: download missing files into
      the cache (exit 1 on a network / checksum error or a refused unverified file).
    * ``verify [ROOT ...]``: check files under the given roots, default: every existing
      candidate root that holds assets (exit 1 on any mismatch, or if nothing was found).
    * ``where``: print JSON with the candidate roots and, per asset group, the root it
      resolves to (``null`` if none; exit 1 then).
    """
    parser = argparse.ArgumentParser(
        prog="python -m isaacgymenvs.assets",
        description="Fetch, verify and locate the third-party assets (models, meshes, motion clips).",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_fetch = sub.add_parser("fetch", help="download missing assets into the cache and verify them")
    p_fetch.add_argument("paths", nargs="*", help="manifest paths or folder prefixes (default: all)")
    p_fetch.add_argument("--dest", help=f"store here instead of the cache (${ENV_ASSETS_CACHE} or {DEFAULT_CACHE_DIR})")
    p_fetch.add_argument(
        "--allow-unverified",
        action="store_true",
        help="also store files whose sha256 is not pinned (their sha256 is printed)",
    )
    p_fetch.add_argument("--timeout", type=float, default=60.0, help="socket timeout per download, seconds")
    p_verify = sub.add_parser("verify", help="check asset files against the manifest sha256")
    p_verify.add_argument("roots", nargs="*", help="asset folders (default: every existing candidate root)")
    sub.add_parser("where", help="print the resolved asset roots as JSON")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "fetch":
            summary = fetch(
                dest=args.dest,
                only=args.paths or None,
                allow_unverified=args.allow_unverified,
                timeout=args.timeout,
            )
            return 0 if summary.ok else 1
        if args.cmd == "verify":
            explicit = bool(args.roots)
            roots = (
                [Path(r) for r in args.roots]
                if explicit
                else [r for r in lookup.assets_root_candidates() if r.is_dir()]
            )
            failed = False
            checked = 0
            for root in roots:
                report = verify(root)
                if not explicit and report.checked == 0:
                    continue
                checked += report.checked
                print(report)
                for path, (exp, act) in report.mismatched.items():
                    print(f"  MISMATCH {path}: expected {exp}, got {act}")
                for path, act in report.unpinned.items():
                    print(f"  unpinned {path}: sha256 {act}")
                if explicit and report.checked == 0:
                    print(f"  no manifest files under {root}", file=sys.stderr)
                    failed = True
                failed |= not report.ok
            if checked == 0 and not failed:
                print(
                    f"error: no asset files found in {', '.join(map(str, roots)) or 'any root'}; {MISSING_ASSET_HINT}",
                    file=sys.stderr,
                )
                return 1
            return 1 if failed else 0
        if args.cmd == "where":
            info = _where()
            print(json.dumps(info, indent=2))
            return 0 if all(v is not None for v in info["groups"].values()) else 1  # type: ignore[union-attr]
    except (AssetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.cmd}")
    return 2
