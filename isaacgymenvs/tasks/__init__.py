"""Tasks: ``terms`` (the deployed step, numpy or torch), ``amp_task`` (the AMP task, torch) and
``make_task`` (``task=<name>`` builds the character model, the simulator, the MotionLib and the task).

Importing this package imports no torch, so ``isaacgymenvs.tasks.terms`` serves sim2sim, which
runs without it; ``make_task`` and the task classes load (and import torch) on first use.
"""

from __future__ import annotations

from isaacgymenvs.task_registry import TASKS, resolve_motion_file  # noqa: F401 (re-exported)

_LAZY = {
    "make_task": "isaacgymenvs.tasks.factory",
    "task_config": "isaacgymenvs.tasks.factory",
    "default_pose": "isaacgymenvs.tasks.factory",
    "AMPTask": "isaacgymenvs.tasks.amp_task",
    "AMPTaskConfig": "isaacgymenvs.tasks.amp_task",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
