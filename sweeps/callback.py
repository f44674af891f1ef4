"""Driver-side Tune callback: sets the MLflow status of child runs that their trial could not close
(stopped by ASHA, errored after its retries), and on every trial's run why it stopped
(``stop_reason``) and how much experience it had (``env_steps``, ``epochs``). It only closes runs
and tags them; the trials log their own metrics."""

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

    @staticmethod
    def experience(trial) -> dict:
        last = getattr(trial, "last_result", None) or {}
        return {"env_steps": int(last.get("timesteps_total") or 0), "epochs": int(last.get("epoch") or 0)}

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = getattr(trial, "last_result", None) or {}
        seen = self.experience(trial)
        if last.get("trial_failed"):
            why = f"failed at {seen['env_steps']} env steps: {str(last.get('failure_reason', ''))[:300]}"
        elif last.get("trial_done"):
            why = f"finished: its whole budget ({seen['env_steps']} env steps, {seen['epochs']} epochs)"
        else:  # the scheduler ended it at a rung, where it was compared with the others at equal experience
            why = f"stopped early by the scheduler at {seen['env_steps']} env steps (epoch {seen['epochs']})"
        self._close(trial, "FINISHED", {"stop_reason": why, **seen})

    def on_trial_error(self, iteration, trials, trial, **info):
        # the real reason: the trial's own exception (the run's own `error` tag, if the trial wrote one, stays)
        try:
            err = trial.get_error()
            why = str(err).strip().splitlines()[-1][:500] if err else ""
        except Exception:  # an error file that cannot be read: still close the run
            why = ""
        attempts = int(getattr(trial.run_metadata, "num_failures", 0) or 0)
        error = f"errored after {attempts} attempt(s): {why or 'see the Ray log'}"
        seen = self.experience(trial)
        self._close(trial, "FAILED", {"ray_error": error, "stop_reason": f"failed: {error}", **seen})
