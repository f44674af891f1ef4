"""Run params and tags from a resolved training config.

Params are what a person compares runs by, nothing else: the ``seed``, the settings the run
changed from the defaults of its task and train config (``num_envs``,
``train.params.config.bounds_loss_coef``, ... keyed by their dotted path, each once: a value that
only follows another one, such as ``task.env.numEnvs`` from ``num_envs``, is not repeated), and for
a sweep trial its point in the search space (which wins over a changed setting of the same key).
Where and under which name the run is recorded (``tracking.*``, ``experiment``) is no param. The
whole resolved config is the run's ``config.yaml`` artifact.

There are no short twins (``bounds_loss_coef`` beside ``train.params.config.bounds_loss_coef``):
a sweep's dimensions are its point's own keys, so a short copy would hold the same value twice,
and a plain run's short copy would be a default it did not change.

Tags: task, simulator backend, device, git commit and command line.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from tracking.store import PROJECT_DIR, strip_credentials

MAX_PARAM_VALUE = 6000  # MLflow 3.x param value limit
MAX_KEY = 250
MAX_TAG_VALUE = 5000
#: Settings (and their subtrees) that say where the run is recorded, not what it trained.
NOT_PARAMS = ("tracking", "experiment")
_BAD_KEY_CHARS = re.compile(r"[^\w\-. /:]")


def _scalar(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_scalar(x)}" for k, x in v.items()) + "}"
    return str(v)


def clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _key(k: str) -> str:
    return _BAD_KEY_CHARS.sub("_", k)[:MAX_KEY]


def _value(v) -> str:
    return clip(strip_credentials(_scalar(v)), MAX_PARAM_VALUE)


def run_params(config: dict, changed: dict | None = None, point: dict | None = None) -> dict[str, str]:
    """``seed`` (of the resolved ``config``), the ``changed`` settings (``{dotted path: value}``,
    ``isaacgymenvs.utils.hydra_config.changed_settings``) but those in :data:`NOT_PARAMS`, and a
    sweep trial's ``point`` (its dimensions and seed); values as MLflow strings, credentials stripped."""
    params = {"seed": _value(config.get("seed"))}
    for k, v in (changed or {}).items():
        if k.split(".", 1)[0] not in NOT_PARAMS:
            params[_key(k)] = _value(v)
    params.update({_key(k): _value(v) for k, v in (point or {}).items()})
    return params


def git_commit(cwd: Path = PROJECT_DIR) -> str:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def run_tags(config: dict, device: str = "", extra: dict | None = None) -> dict[str, str]:
    commit = git_commit()
    tags = {
        "task": str(config.get("task", {}).get("name", "")),
        "sim": str(config.get("sim", "")),
        "device": device or str(config.get("rl_device") or ""),
        "git_commit": commit,
        "command": clip(strip_credentials(shlex.join(sys.argv)), MAX_TAG_VALUE),
        # MLflow's own tags: the UI shows these in its source / version columns
        "mlflow.source.git.commit": commit,
        "mlflow.source.name": clip(sys.argv[0] if sys.argv else "", MAX_TAG_VALUE),
        # where the training runs: `python -m tracking sync` closes a run whose process is gone
        "hostname": socket.gethostname(),
        "pid": str(os.getpid()),
    }
    tags.update({k: clip(strip_credentials(str(v)), MAX_TAG_VALUE) for k, v in (extra or {}).items()})
    return tags
