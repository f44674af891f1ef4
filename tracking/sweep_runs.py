"""MLflow side of a hyperparameter sweep: one parent run per sweep, one nested child run per trial.

The sweep driver (``sweeps/``) creates the experiment and the parent run once, before any trial
starts (parallel ``create_experiment`` and sqlite migrations race). A trial finds its child run by
the tags ``ray_trial_id`` + ``mlflow.parentRunId``, so a retried or restored trial continues the
same run, and logs only epochs after :func:`last_step`.
"""

from __future__ import annotations

import time

from tracking.base import TrackingRejectedError
from tracking.mlflow_tracker import MlflowTracker
from tracking.store import resolve_uri

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "ray_trial_id"


def tracker(uri: str | None, experiment: str) -> MlflowTracker:
    t = MlflowTracker(resolve_uri(uri or ""), http_retries=2, http_timeout_s=10)
    t.connect(experiment)
    return t


def start_parent(uri: str | None, experiment: str, name: str, run_name: str, params: dict, tags: dict) -> str:
    """Create the experiment (if needed) and the run ``run_name`` (``<sweep>-<date-time>``) of sweep
    ``name`` (its ``sweep`` tag); returns its run id."""
    t = tracker(uri, experiment)
    run_id = t.start_run(run_name, {"sweep": name, **{k: str(v) for k, v in tags.items()}})
    t.log_params({k: str(v)[:6000] for k, v in params.items()})
    return run_id


def run_url(uri: str | None, experiment: str, run_id: str) -> str:
    """The run in the MLflow UI (``tracking.store.ui_url``); '' when the store does not answer."""
    try:
        t = tracker(uri, experiment)
    except Exception:
        return ""
    t.run_id = run_id
    return t.run_url()


def find_child(uri: str | None, experiment: str, parent_run_id: str, trial_id: str) -> str | None:
    t = tracker(uri, experiment)
    runs = t._call(
        t.client.search_runs,
        [t.experiment_id],
        filter_string=f"tags.{TRIAL_TAG} = '{trial_id}' and tags.`{PARENT_TAG}` = '{parent_run_id}'",
        max_results=5,
    )
    return runs[0].info.run_id if runs else None


def last_step(uri: str | None, experiment: str, run_id: str, key: str) -> int:
    """The highest step logged for ``key`` (-1 when none)."""
    t = tracker(uri, experiment)
    hist = t._call(t.client.get_metric_history, run_id, key)
    return max((m.step for m in hist), default=-1)


def children(uri: str | None, experiment: str, parent_run_id: str) -> list:
    t = tracker(uri, experiment)
    return t._call(
        t.client.search_runs,
        [t.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        max_results=1000,
    )


def end_if_running(
    uri: str | None, experiment: str, run_id: str, status: str, tags: dict | None = None, retag_ended: bool = True
) -> None:
    """Set a terminal status on a run that its trial could not close (stopped by the scheduler, killed);
    FAILED also replaces an ended run's status. ``tags`` go on the run whether or not it had ended, unless
    ``retag_ended`` is false."""
    t = tracker(uri, experiment)
    run = t._call(t.client.get_run, run_id)
    t.run_id = run_id
    ending = run.info.status in ("RUNNING", "SCHEDULED") or status == "FAILED"
    if tags and (ending or retag_ended):
        t.set_tags({k: str(v) for k, v in tags.items()})
    if ending:
        t.end_run(status)


def finish_parent(
    uri: str | None,
    experiment: str,
    run_id: str,
    status: str,
    artifacts=(),
    tags: dict | None = None,
    metrics: dict | None = None,
) -> None:
    t = tracker(uri, experiment)
    t.run_id = run_id
    try:
        t.reopen()
    except TrackingRejectedError:
        pass
    if tags:
        t.set_tags({k: str(v) for k, v in tags.items()})
    if metrics:
        t.log_metrics(0, metrics, int(time.time() * 1000))
    for a in artifacts:
        t.log_artifact(a)
    t.end_run(status)
