"""``python -m isaacgymenvs.motion {info,check,obs,convert,retarget} CLIP``: inspect, convert and retarget clips.

A shim: the command line is :func:`isaacgymenvs.motion_check.main`, because ``check``, ``info`` and
``obs`` need the task's model and the simulator, which sit above the ``motion`` package. Every
command prints JSON on stdout; errors are one line on stderr with exit code 2; ``check`` exits 1
when the clip fails a check.

Imports: ``isaacgymenvs.motion_check`` only (the one import of this package from above it).
"""

import sys

from isaacgymenvs.motion_check import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
