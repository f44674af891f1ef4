"""What ``make sweep`` prints while it runs: one line per trial report and one per trial end.

A driver-side Tune callback; the runner keeps Ray's own output (its tables, its warnings, the
workers' prints) off unless the sweep is verbose (``sweeps.ray_session.quiet_ray``). Lines::

    trial blc10-h16-fixed-s42 (7c650_00000): epoch 8, 2048 env steps, eval/score 0.0169, eval/fall_rate 1.00
    trial blc10-h16-fixed-s42 (7c650_00000) ended OK: finished: its whole budget (4096 env steps, 16 epochs)
    trial blc1-h16-learned-s42 (7c650_00002) errored (InjectedFailure: ...); retrying, attempt 2 of 2
    trial blc1-h16-learned-s42 (7c650_00002) restarted from its checkpoint at epoch 1
"""

from __future__ import annotations

import math

from ray.tune import Callback

from sweeps.callback import ending, error_line
from sweeps.space import trial_label
from sweeps.trial import trial_params

#: Shown beside the sweep's metric on every report line when the trial reports it.
ALSO_SHOWN = ("eval/fall_rate",)


def _num(v, fmt: str) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return format(v, fmt) if math.isfinite(v) else str(v)


class ConsoleReporter(Callback):
    def __init__(self, metric: str):
        self.metric = metric

    @staticmethod
    def name(trial) -> str:
        """``blc10-h16-fixed-s42 (7c650_00000)``: the trial's values and its id (the final table's)."""
        label = trial_label(trial_params(trial.config or {}))
        return f"{label} ({trial.trial_id})" if label else trial.trial_id

    @staticmethod
    def say(line: str) -> None:
        print(line, flush=True)

    def report_line(self, trial, result: dict) -> str:
        parts = [f"epoch {int(result.get('epoch') or 0)}", f"{int(result.get('timesteps_total') or 0)} env steps"]
        for k in (self.metric, *(k for k in ALSO_SHOWN if k != self.metric)):
            if k in result:
                parts.append(f"{k} {_num(result[k], '.2f' if k.endswith('fall_rate') else '.4g')}")
        return f"trial {self.name(trial)}: " + ", ".join(parts)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not result.get("trial_failed"):  # a diverged trial's last report: its end line says why
            self.say(self.report_line(trial, result))

    def on_trial_start(self, iteration, trials, trial, **info):
        if getattr(trial, "checkpoint", None) is not None:  # a retry, a resumed sweep, a PBT exploit
            epoch = int((getattr(trial, "last_result", None) or {}).get("epoch") or 0)
            self.say(f"trial {self.name(trial)} restarted from its checkpoint at epoch {epoch}")

    def on_trial_recover(self, iteration, trials, trial, **info):
        why = error_line(trial)[:300] or "see the Ray log"
        failures = int(getattr(trial.run_metadata, "num_failures", 0) or 0)
        limit = int(getattr(trial, "max_failures", 0) or 0)
        self.say(f"trial {self.name(trial)} errored ({why}); retrying, attempt {failures + 1} of {limit + 1}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        status, why = ending(trial)
        self.say(f"trial {self.name(trial)} ended {status}: {why}")

    def on_trial_error(self, iteration, trials, trial, **info):
        status, why = ending(trial, errored=True)
        self.say(f"trial {self.name(trial)} ended {status}: {why}")
