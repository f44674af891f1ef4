"""Where runs go: the tracking URI and the embedded default store.

Order: ``tracking.uri`` (config / command line), else ``MLFLOW_TRACKING_URI``, else the embedded
default: ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts in ``<project>/mlruns/artifacts``.
``<project>`` is the repository root (the folder holding ``cfg/`` and ``tracking/``), not the
current directory, so runs started from anywhere land in the one store that ``make mlflow-ui``
serves. ``AMP_MLRUNS_DIR`` moves the embedded store elsewhere.

**Credentials never travel in a URI.** A URI with a user and password
(``http://user:password@host``) is resolved to the same URI without them, and the pair goes to
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` of this process (MLflow's basic auth;
worker processes inherit them), so nothing the project writes or prints (tags, params, config
files, ``sweep.json``, console lines) can hold the password. ``strip_credentials`` cleans any text
that may still carry one (a command line).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from isaacgymenvs.utils.secrets import strip_credentials  # noqa: F401 (re-exported: tracking's users import it here)

PROJECT_DIR = Path(__file__).resolve().parent.parent


def mlruns_dir() -> Path:
    return Path(os.environ.get("AMP_MLRUNS_DIR") or PROJECT_DIR / "mlruns").resolve()


def default_uri() -> str:
    return f"sqlite:///{mlruns_dir() / 'mlflow.db'}"


def default_artifact_root() -> Path:
    return mlruns_dir() / "artifacts"


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``(uri without user info, user, password)``."""
    try:
        p = urlsplit(uri)
    except ValueError:
        return uri, None, None
    if p.username is None and p.password is None:
        return uri, None, None
    netloc = (p.hostname or "") + (f":{p.port}" if p.port else "")
    return (
        urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment)),
        unquote(p.username or ""),
        unquote(p.password or ""),
    )


def resolve_uri(configured: str | None = "") -> str:
    """The store's URI, without credentials (see the module docstring)."""
    uri = (configured or "").strip() or os.environ.get("MLFLOW_TRACKING_URI", "").strip() or default_uri()
    clean, user, password = split_credentials(uri)
    if user is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password or ""
    return clean


@contextmanager
def file_lock(path: Path):
    """An exclusive ``flock`` on ``path`` (created), held for the block: one process at a time."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def process_alive(pid: int) -> bool:
    """A process of this id exists on this host."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists (another user's)
        return True
    return True


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def ui_url(uri: str, fragment: str) -> str:
    """Where the MLflow UI shows ``fragment`` (``experiments/1/runs/abc``, ``models/NAME/versions/3``):
    the server itself for an http store; for a sqlite store, ``make mlflow-ui``'s address (127.0.0.1,
    ``MLFLOW_PORT``) with the command that serves that store."""
    if is_http(uri):
        return f"{redact(uri).rstrip('/')}/#/{fragment}"
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        port = os.environ.get("MLFLOW_PORT", "5000")
        serve = "make mlflow-ui" + (f" MLFLOW_DIR={db.parent}" if db.parent != mlruns_dir() else "")
        return f"http://127.0.0.1:{port}/#/{fragment} (served by `{serve}`)"
    return ""


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
