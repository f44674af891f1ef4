"""Where runs go: the tracking URI and the embedded default store.

Order: ``tracking.uri`` (config / command line), else ``MLFLOW_TRACKING_URI``, else the embedded
default: ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts in ``<project>/mlruns/artifacts``.
``<project>`` is the repository root (the folder holding ``cfg/`` and ``tracking/``), not the
current directory, so runs started from anywhere land in the one store that ``make mlflow-ui``
serves. ``AMP_MLRUNS_DIR`` moves the embedded store elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent


def mlruns_dir() -> Path:
    return Path(os.environ.get("AMP_MLRUNS_DIR") or PROJECT_DIR / "mlruns").resolve()


def default_uri() -> str:
    return f"sqlite:///{mlruns_dir() / 'mlflow.db'}"


def default_artifact_root() -> Path:
    return mlruns_dir() / "artifacts"


def resolve_uri(configured: str | None = "") -> str:
    return (configured or "").strip() or os.environ.get("MLFLOW_TRACKING_URI", "").strip() or default_uri()


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def redact(uri: str) -> str:
    """The URI without a password (safe to print and to log as a param)."""
    try:
        p = urlsplit(uri)
    except ValueError:
        return uri
    if p.password is None:
        return uri
    netloc = f"{p.username}:***@{p.hostname}" + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
