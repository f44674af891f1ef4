"""Experiment tracking for the AMP trainer: the only package that imports MLflow.

    from tracking import open_session
    session = open_session(config)          # before the simulator starts: unreachable store -> error
    ...build the trainer...
    with session.ending():                  # FINISHED / FAILED / KILLED, never left RUNNING
        session.start(run_dir, config, device=...)
        agent.observers.append(session.on_epoch)
        agent.checkpoint_observers.append(session.on_checkpoint)
        agent.train()

``isaacgymenvs/train.py`` does exactly this (``run_training``). MLflow itself is imported only
when ``tracking.backend`` is ``mlflow``, so ``tracking=none`` costs nothing.
"""

import os

# MLflow's own "View run ... at: URL" lines: the URL can hold what a user typed into a URI
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from tracking.base import (
    FAILED,
    FINISHED,
    KILLED,
    NullTracker,
    Tracker,
    TrackingError,
    TrackingRejectedError,
    TrackingUnavailableError,
)
from tracking.session import TrackingSession, open_session
from tracking.store import default_uri, resolve_uri

__all__ = [
    "FAILED",
    "FINISHED",
    "KILLED",
    "NullTracker",
    "Tracker",
    "TrackingError",
    "TrackingRejectedError",
    "TrackingUnavailableError",
    "TrackingSession",
    "open_session",
    "default_uri",
    "resolve_uri",
]
