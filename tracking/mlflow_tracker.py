"""The MLflow implementation of :class:`tracking.base.Tracker` (MlflowClient, ``log_batch``).

Every request runs with this tracker's own HTTP limits (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` and
``MLFLOW_HTTP_REQUEST_TIMEOUT``, set for the duration of the call and restored after), so a dead
server costs one refused connection, not MLflow's default 7 retries with exponential backoff.
Failures are sorted into "the store did not answer" (:class:`TrackingUnavailableError`: spool
and retry) and "the store said no" (:class:`TrackingRejectedError`).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import mlflow  # noqa: F401  (tracking/ is the only package that imports MLflow)
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracking.base import Tracker, TrackingRejectedError, TrackingUnavailableError
from tracking.store import default_artifact_root, default_uri, file_lock, is_http, redact, ui_url

#: The MLflow UI opens an experiment in the view its kind names; without the tag it guesses (the
#: GenAI overview of traces and tokens). These are training runs.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
EXPERIMENT_TAGS = {
    EXPERIMENT_KIND: MODEL_TRAINING,
    "mlflow.note.content": "AMP trainings (PPO + an adversarial motion prior): one run per training; a sweep is a "
    "parent run with one child run per trial. Compare eval/* between runs, never disc/* or reward/*.",
}

# error codes that mean "try again later" (the REST client reports a refused connection as INTERNAL_ERROR)
_TRANSIENT = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED", "ABORTED"}
BATCH_PARAMS, BATCH_TAGS, BATCH_METRICS = 100, 100, 1000  # REST log-batch limits


def _reason(e: BaseException) -> str:
    s = str(e)
    for hint in (
        "Connection refused",
        "Read timed out",
        "timed out",
        "Name or service not known",
        "No route to host",
        "unable to open database file",
        "Connection reset",
        "Connection aborted",
    ):
        if hint in s:
            return hint.lower()
    return (s.splitlines()[0] if s else type(e).__name__)[:300]


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]


class MlflowTracker(Tracker):
    def __init__(self, uri: str, http_retries: int = 0, http_timeout_s: float = 5, artifact_timeout_s: float = 120):
        self.uri = uri
        self.http_retries = max(0, int(http_retries))
        self.http_timeout_s = max(1, int(round(float(http_timeout_s))))
        self.artifact_timeout_s = max(1, int(round(float(artifact_timeout_s))))
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self._client: MlflowClient | None = None

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _limits(self, timeout_s: int):
        new = {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.http_retries),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        }
        old = {k: os.environ.get(k) for k in new}
        os.environ.update(new)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _call(self, fn, *args, timeout_s: int | None = None, **kwargs):
        with self._limits(timeout_s or self.http_timeout_s):
            try:
                return fn(*args, **kwargs)
            except MlflowException as e:
                if e.error_code in _TRANSIENT:
                    raise TrackingUnavailableError(f"{redact(self.uri)}: {_reason(e)}") from e
                raise TrackingRejectedError(f"{e.error_code}: {str(e)[:500]}") from e
            except (OSError, ConnectionError, TimeoutError) as e:
                raise TrackingUnavailableError(f"{redact(self.uri)}: {_reason(e)}") from e
            except Exception as e:  # requests / sqlalchemy errors that are not MlflowExceptions
                name = type(e).__module__ + "." + type(e).__name__
                if any(s in name for s in ("requests", "urllib3", "sqlalchemy", "sqlite3")):
                    raise TrackingUnavailableError(f"{redact(self.uri)}: {_reason(e)}") from e
                raise

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            db = self._sqlite_path()
            if db is None:
                self._client = MlflowClient(tracking_uri=self.uri)
            else:  # a fresh sqlite store is created and migrated once, not by two processes at a time
                db = db.resolve()
                db.parent.mkdir(parents=True, exist_ok=True)
                with file_lock(db.with_name(db.name + ".lock")):
                    client = MlflowClient(tracking_uri=self.uri)
                    try:
                        with self._limits(self.http_timeout_s):
                            client.search_experiments(max_results=1)
                    except Exception as e:
                        raise TrackingUnavailableError(f"{redact(self.uri)}: {_reason(e)}") from e
                self._client = client
        return self._client

    def _sqlite_path(self) -> Path | None:
        if not self.uri.startswith("sqlite:///"):
            return None
        return Path(self.uri[len("sqlite:///") :])

    def _artifact_location(self, experiment: str) -> str | None:
        """A server picks its own (--default-artifact-root); an in-process sqlite store would use
        ./mlruns of the current directory, so put artifacts next to the database instead."""
        db = self._sqlite_path()
        if db is None:
            return None
        root = default_artifact_root() if self.uri == default_uri() else db.resolve().parent / "artifacts"
        return str(root / experiment.replace("/", "_"))

    # ------------------------------------------------------------------ Tracker
    def probe(self) -> bool:
        if not is_http(self.uri):
            return True
        import requests

        try:
            return requests.get(self.uri.rstrip("/") + "/health", timeout=min(2, self.http_timeout_s)).ok
        except requests.RequestException:
            return False

    def connect(self, experiment: str) -> str:
        try:
            db = self._sqlite_path()
            if db is not None:
                db.resolve().parent.mkdir(parents=True, exist_ok=True)
            exp = self._call(self.client.get_experiment_by_name, experiment)
            if exp is None:
                try:
                    eid = self._call(
                        self.client.create_experiment,
                        experiment,
                        artifact_location=self._artifact_location(experiment),
                        tags=EXPERIMENT_TAGS,
                    )
                except TrackingRejectedError:  # created meanwhile by a parallel worker
                    exp = self._call(self.client.get_experiment_by_name, experiment)
                    if exp is None:
                        raise
                    eid = exp.experiment_id
            else:
                if exp.lifecycle_stage == "deleted":
                    raise TrackingRejectedError(
                        f"experiment {experiment!r} is deleted (restore it or pick tracking.experiment=...)"
                    )
                eid = exp.experiment_id
                if exp.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:  # made by an older version, or by hand
                    self._call(self.client.set_experiment_tag, eid, EXPERIMENT_KIND, MODEL_TRAINING)
        except (TrackingUnavailableError, TrackingRejectedError, OSError) as e:
            msg = str(e)
            prefix = f"{redact(self.uri)}: "
            msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
            what = "refused the experiment" if isinstance(e, TrackingRejectedError) else "cannot be reached"
            raise TrackingUnavailableError(f"tracking store {redact(self.uri)} {what} ({msg})") from e
        except Exception as e:  # sqlite: unwritable folder, foreign file, ...
            raise TrackingUnavailableError(f"tracking store {redact(self.uri)} cannot be used ({_reason(e)})") from e
        self.experiment_id = str(eid)
        return self.experiment_id

    def attach(self, run_id: str) -> None:
        """Continue an existing run (``python -m tracking sync``)."""
        run = self._call(self.client.get_run, run_id)
        self.run_id, self.experiment_id = run.info.run_id, run.info.experiment_id

    def reopen(self) -> None:
        """Mark an attached run RUNNING again (a sweep trial that continues after a restart)."""
        self._call(self.client.update_run, self.run_id, status="RUNNING")

    def start_run(self, run_name: str, tags: dict[str, str]) -> str:
        run = self._call(self.client.create_run, self.experiment_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        return self.run_id

    def log_params(self, params: dict[str, str]) -> None:
        items = [Param(k, v) for k, v in params.items()]
        for chunk in _chunks(items, BATCH_PARAMS):
            self._call(self.client.log_batch, self.run_id, params=chunk)

    def set_tags(self, tags: dict[str, str]) -> None:
        items = [RunTag(k, v) for k, v in tags.items()]
        for chunk in _chunks(items, BATCH_TAGS):
            self._call(self.client.log_batch, self.run_id, tags=chunk)

    def log_metrics(self, step: int, metrics: dict[str, float], timestamp_ms: int) -> None:
        items = [Metric(k, float(v), int(timestamp_ms), int(step)) for k, v in metrics.items()]
        for chunk in _chunks(items, BATCH_METRICS):  # one request for up to 1000 keys
            self._call(self.client.log_batch, self.run_id, metrics=chunk)

    def log_artifact(self, local_path, artifact_path=None) -> None:
        self._call(
            self.client.log_artifact, self.run_id, str(local_path), artifact_path, timeout_s=self.artifact_timeout_s
        )

    def end_run(self, status: str) -> None:
        self._call(self.client.set_terminated, self.run_id, status, int(time.time() * 1000))

    def run_url(self) -> str:
        """The run in the MLflow UI (for a sqlite store: where ``make mlflow-ui`` serves it)."""
        if self.run_id and self.experiment_id:
            return ui_url(self.uri, f"experiments/{self.experiment_id}/runs/{self.run_id}")
        return ""
