"""``python -m isaacgymenvs.export checkpoint=PATH [out=DIR]``: export a policy (see the package docstring)."""

from __future__ import annotations

import sys

from isaacgymenvs.utils.cli import parse_kv, run_json

USAGE = "usage: python -m isaacgymenvs.export checkpoint=PATH [out=DIR]"


def main(argv=None) -> int:
    args = parse_kv(sys.argv[1:] if argv is None else argv, {"checkpoint", "out"}, {"checkpoint"})
    if args is None:
        print(USAGE, file=sys.stderr)
        return 2
    from isaacgymenvs.export import ExportError, export
    from isaacgymenvs.learning.learner import CheckpointError

    return run_json(
        lambda: export(args["checkpoint"], args.get("out")), (ExportError, CheckpointError, FileNotFoundError)
    )


if __name__ == "__main__":
    sys.exit(main())
