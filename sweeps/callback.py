"""Driver-side Tune callback: sets the MLflow status of child runs that their trial did not close
(stopped by a scheduler, whose trial leaves the status to the driver; errored after its retries), and
on every trial's run why it stopped
(``stop_reason``, :func:`ending`) and how much experience it had (``env_steps``, ``epochs``). It
only closes runs and tags them; the trials log their own metrics."""

from __future__ import annotations

from pathlib import Path

from ray.tune import Callback


def experience(trial) -> dict:
    """``{"env_steps", "epochs"}`` of the trial's last report (0 before its first)."""
    last = getattr(trial, "last_result", None) or {}
    return {"env_steps": int(last.get("timesteps_total") or 0), "epochs": int(last.get("epoch") or 0)}


def error_line(trial) -> str:
    """The last line of the trial's latest exception ('' when its error file cannot be read): from
    the driver's own copy of the error file (written at once; the storage's copy follows later)."""
    try:
        local = trial.error_file
        err = Path(local).read_text() if local and Path(local).is_file() else trial.get_error()
        return str(err).strip().splitlines()[-1][:500] if err else ""
    except Exception:
        return ""


def ending(trial, errored: bool = False) -> tuple[str, str]:
    """``(status, why)`` of a trial that ended: OK (its whole budget), STOPPED (early, by the
    scheduler), FAILED (diverged: a result) or ERROR (``errored``: crashed after its retries)."""
    last = getattr(trial, "last_result", None) or {}
    seen = experience(trial)
    if errored:
        attempts = int(getattr(trial.run_metadata, "num_failures", 0) or 0)
        return "ERROR", f"failed: errored after {attempts} attempt(s): {error_line(trial) or 'see the Ray log'}"
    if last.get("trial_failed"):
        return "FAILED", f"failed at {seen['env_steps']} env steps: {str(last.get('failure_reason', ''))[:300]}"
    if last.get("trial_done"):
        return "OK", f"finished: its whole budget ({seen['env_steps']} env steps, {seen['epochs']} epochs)"
    # the scheduler ended it at a rung, where it was compared with the others at equal experience
    return "STOPPED", f"stopped early by the scheduler at {seen['env_steps']} env steps (epoch {seen['epochs']})"


class MlflowStatusCallback(Callback):
    def __init__(self, uri: str, experiment: str, parent_run_id: str):
        self.uri, self.experiment, self.parent = uri, experiment, parent_run_id

    def _close(self, trial, status: str, tags: dict) -> None:
        from tracking import sweep_runs

        try:
            rid = sweep_runs.find_child(self.uri, self.experiment, self.parent, trial.trial_id)
            if rid:
                sweep_runs.end_if_running(self.uri, self.experiment, rid, status, tags)
        except Exception as e:  # the sweep goes on; the run may stay RUNNING
            print(f"sweep: could not set the MLflow status of {trial}: {e}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        _, why = ending(trial)
        self._close(trial, "FINISHED", {"stop_reason": why, **experience(trial)})

    def on_trial_error(self, iteration, trials, trial, **info):
        _, why = ending(trial, errored=True)
        # the run's own `error` tag, if the trial wrote one, stays
        error = why.removeprefix("failed: ")
        self._close(trial, "FAILED", {"ray_error": error, "stop_reason": why, **experience(trial)})
