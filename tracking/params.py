"""Run params and tags from a resolved training config.

Params: the config flattened to dotted keys (``train.params.config.gamma``), plus four short
top-level params for comparing sweep runs: ``bounds_loss_coef``, ``horizon_length``, ``sigma``
(the scheme: fixed or learned) and ``seq_len``. Tags: task, simulator backend, device, git
commit and command line.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from tracking.store import PROJECT_DIR, redact, strip_credentials

MAX_PARAM_VALUE = 6000  # MLflow 3.x param value limit
MAX_KEY = 250
MAX_TAG_VALUE = 5000
SHORT_PARAMS = ("bounds_loss_coef", "horizon_length", "sigma", "seq_len")
_BAD_KEY_CHARS = re.compile(r"[^\w\-. /:]")


def _scalar(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_scalar(x)}" for k, x in v.items()) + "}"
    return str(v)


def clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def flatten(cfg: dict, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1, "c": [1, 2]}}`` -> ``{"a.b": "1", "a.c": "[1, 2]"}``; values clipped to MLflow's limit."""
    out: dict[str, str] = {}
    for k, v in cfg.items():
        key = _BAD_KEY_CHARS.sub("_", f"{prefix}{k}")[:MAX_KEY]
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = clip(_scalar(v), MAX_PARAM_VALUE)
    return out


def short_params(config: dict) -> dict[str, str]:
    """The four sweep dimensions, read from the effective train config."""
    t = config["train"]["params"]["config"]
    return {
        "bounds_loss_coef": str(t.get("bounds_loss_coef")),
        "horizon_length": str(t.get("horizon_length")),
        "sigma": str(t.get("sigma_scheme", "fixed")),
        "seq_len": str(t.get("seq_len", t.get("seq_length"))),
    }


def run_params(config: dict) -> dict[str, str]:
    """Flattened config plus the short params (which win over a top-level key of the same name,
    e.g. the command-line ``sigma``, whose short param is the scheme the run used)."""
    config = dict(config)
    if isinstance(config.get("tracking"), dict) and config["tracking"].get("uri"):
        config["tracking"] = dict(config["tracking"], uri=redact(str(config["tracking"]["uri"])))
    params = {k: strip_credentials(v) for k, v in flatten(config).items()}
    params.update(short_params(config))
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
