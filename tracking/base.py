"""The Tracker seam: what a training run needs from an experiment tracker, and a null tracker.

A tracker talks to one store. It raises :class:`TrackingUnavailableError` when the store does
not answer (the caller spools and retries) and :class:`TrackingRejectedError` when the store
answered "no" (retrying the same request cannot help). Nothing here imports MLflow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

# Terminal run states (MLflow's names).
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"


class TrackingError(RuntimeError):
    pass


class TrackingUnavailableError(TrackingError):
    """The tracking store cannot be reached (connection refused, timeout, 5xx). Transient."""


class TrackingRejectedError(TrackingError):
    """The store answered and refused the request (bad value, deleted run...). Not transient."""


class Tracker(ABC):
    """One store, one run at a time.

    ``log_metrics`` sends one epoch's metrics in one request; ``timestamp_ms`` comes from the
    caller so that sending the same record twice writes the same row (the store keeps one).
    """

    uri: str = ""

    @abstractmethod
    def connect(self, experiment: str) -> str:
        """Check the store answers and create ``experiment`` if needed; returns its id."""

    @abstractmethod
    def start_run(self, run_name: str, tags: dict[str, str]) -> str:
        """Create a run (status RUNNING) in the connected experiment; returns its id."""

    @abstractmethod
    def log_params(self, params: dict[str, str]) -> None: ...

    @abstractmethod
    def set_tags(self, tags: dict[str, str]) -> None: ...

    @abstractmethod
    def log_metrics(self, step: int, metrics: dict[str, float], timestamp_ms: int) -> None: ...

    @abstractmethod
    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None: ...

    @abstractmethod
    def end_run(self, status: str) -> None:
        """Set the run's terminal status (FINISHED, FAILED or KILLED)."""

    def probe(self) -> bool:
        """Cheap "does the store answer now?" (True when unknown)."""
        return True

    def run_url(self) -> str:
        return ""


class NullTracker(Tracker):
    """Accepts everything, stores nothing: tests, ``tracking=none``, workers that must not log."""

    uri = "none"

    def connect(self, experiment: str) -> str:
        return ""

    def start_run(self, run_name: str, tags: dict[str, str]) -> str:
        return ""

    def log_params(self, params):
        pass

    def set_tags(self, tags):
        pass

    def log_metrics(self, step, metrics, timestamp_ms):
        pass

    def log_artifact(self, local_path, artifact_path=None):
        pass

    def end_run(self, status):
        pass
