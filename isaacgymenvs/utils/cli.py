"""The small ``key=value`` command lines of the tools (export, sim2sim), in one place."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable


def parse_kv(argv: list[str], allowed: set[str], required: set[str]) -> dict | None:
    """``key=value`` words into a dict; None (after printing nothing) when a word is not of that form,
    a key is unknown or a required one is missing."""
    if any("=" not in a for a in argv):
        return None
    args = dict(a.split("=", 1) for a in argv)
    if set(args) - allowed or required - set(args):
        return None
    return args


def run_json(fn: Callable[[], dict], errors: tuple) -> int:
    """Run ``fn``; print its result as JSON (exit 0) or the error on one line (exit 1)."""
    try:
        res = fn()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(res, indent=2))
    return 0
