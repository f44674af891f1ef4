"""Driver-side Tune callback: sets the MLflow status of child runs that their trial could not close
(stopped by ASHA, errored after its retries). It only closes runs; the trials log their own metrics."""

from __future__ import annotations

from ray.tune import Callback


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
            print(f"sweep: could not set the MLflow status of {trial}: {e}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._close(trial, "FINISHED", {})

    def on_trial_error(self, iteration, trials, trial, **info):
        # the real reason: the trial's own exception (the run's own `error` tag, if the trial wrote one, stays)
        try:
            err = trial.get_error()
            why = str(err).strip().splitlines()[-1][:500] if err else ""
        except Exception:  # an error file that cannot be read: still close the run
            why = ""
        attempts = int(getattr(trial.run_metadata, "num_failures", 0) or 0)
        self._close(trial, "FAILED", {"ray_error": f"errored after {attempts} attempt(s): {why or 'see the Ray log'}"})
