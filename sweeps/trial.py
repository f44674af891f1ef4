"""One sweep trial: a full AMP training in this process (isaacgymenvs.train.Trainer), one nested MLflow
child run, a Tune report (metrics + a checkpoint directory holding the agent checkpoint) every k epochs.

Restarted trials (``max_failures``, ``Tuner.restore``, PBT exploit) start from ``tune.get_checkpoint()``
and continue the same MLflow run (found by its ``ray_trial_id`` tag), logging only epochs after the last
step already in the store.
"""

from __future__ import annotations

import math
import shutil
import socket
from pathlib import Path

from sweeps.space import MUTABLE, compose, overrides_for, trial_label

CKPT_FILE = "agent.pth"
SEP = "__"  # "train.params.config.x" travels through Ray's config as "train__params__config__x"


def to_ray_key(k: str) -> str:
    return k.replace(".", SEP)


def from_ray_key(k: str) -> str:
    return k.replace(SEP, ".")


def trial_work_root(exp_dir) -> Path:
    """Where the trials of a sweep keep their run folders and spools: ``<storage>/<name>/trials/``
    (beside Ray's trial folders, not inside them: Ray syncs those in the background, a race with
    files that come and go), so the driver (and ``python -m tracking sync --sweep``) finds what a
    trial could not send, and a new run of the sweep moves them aside with the rest."""
    return Path(exp_dir) / "trials"


def trial_params(config: dict) -> dict:
    """The trial's point in the search space, with its real (dotted) keys."""
    out = dict(config.get("point") or {})
    out.update({from_ray_key(k): v for k, v in (config.get("p") or {}).items()})
    return {from_ray_key(k): v for k, v in out.items()}


class InjectedFailure(RuntimeError):
    """Raised by the fault-injection hook of a sweep (``fail:`` in the sweep file; tests only)."""


class _LastReportTaken(Exception):
    """Tune ended the trial at its last epoch's report (see ``report`` in :func:`run_trial`)."""


class _StoppedByTune(Exception):
    """Tune ended the trial at an earlier report: a scheduler's stop, a PBT pause or an interrupted
    sweep. The trial cannot tell which; the driver can (``sweeps.callback``, ``runner._summarize``)."""


class TrialDiverged(RuntimeError):
    """A trial whose numbers cannot be trusted (non-finite, beyond sanity, a blown-up simulator):
    a result (FAILED, with this reason), not a crash to retry."""


def restore_refusal(path) -> str | None:
    """Why a trial must not continue from the checkpoint ``path``, or None."""
    import torch

    if torch.load(path, map_location="cpu", weights_only=True).get("finite") is False:
        return "the checkpoint to continue from has non-finite weights: not retried from it"
    return None


def divergence(metrics: dict, sanity: dict, metric: str, updates_per_epoch: int = 0) -> str | None:
    """Why these epoch metrics mean the trial diverged, or None."""
    skipped = float(metrics.get("loss/nonfinite_updates", 0.0))
    if updates_per_epoch and skipped * 2 > updates_per_epoch:
        return f"{skipped:.0f} of {updates_per_epoch} updates had non-finite gradients"
    for k in ("loss/actor", "loss/critic", "disc/loss", metric):
        if k in metrics and not math.isfinite(float(metrics[k])):
            return f"{k} is {metrics[k]}"
    for k, bound in sanity.items():
        if k in metrics and abs(float(metrics[k])) > float(bound):
            return f"{k} = {float(metrics[k]):.4g}, beyond the sanity bound {float(bound):g}"
    return None


def _fail_rule(sweep: dict, params: dict) -> dict | None:
    for rule in sweep.get("fail") or []:
        if all(str(params.get(k)) == str(v) for k, v in (rule.get("match") or {}).items()):
            return rule
    return None


def run_trial(config: dict, sweep: dict | None = None) -> None:
    """The Tune trainable. ``sweep`` (bound with ``tune.with_parameters``): the sweep's fixed settings
    (overrides, experiment, parent run id, tracking URI, report_every, fault injection rules)."""
    import ray
    import torch
    from ray import tune

    from isaacgymenvs import train as train_mod
    from tracking import open_session, sweep_runs

    sweep = sweep or config["sweep"]
    params = trial_params(config)
    ctx = tune.get_context()
    trial_id, trial_name = ctx.get_trial_id(), ctx.get_trial_name()
    torch.set_num_threads(max(1, int(sweep.get("torch_threads", 1))))
    # Not Ray's trial folder: Ray syncs that to the storage path in the background (a race with files
    # that come and go). Run folders and the checkpoints handed to tune.report live here instead.
    work = Path(sweep["work_root"]) / trial_id
    work.mkdir(parents=True, exist_ok=True)

    overrides = (
        list(sweep["overrides"])
        + overrides_for(params)
        + [
            "tracking=mlflow",
            f"tracking.experiment={sweep['experiment']}",
            "tracking.required=true",
            f"experiment={trial_name}",
        ]
    )
    if sweep.get("tracking_uri"):
        overrides.append(f"tracking.uri={sweep['tracking_uri']}")
    restored = tune.get_checkpoint()
    refused = None
    if restored is not None:
        local = work / "restore"
        local.mkdir(exist_ok=True)
        with restored.as_directory() as d:
            shutil.copy2(Path(d) / CKPT_FILE, local / CKPT_FILE)
        refused = restore_refusal(local / CKPT_FILE)
        if refused is None:
            overrides.append(f"checkpoint={local / CKPT_FILE}")
    cfg = compose(overrides)
    trainer = train_mod.Trainer(cfg, runs_dir=str(work / "runs"), overrides=overrides)
    # a store that does not answer now is no error: the run is created when it does (tracking/session.py)
    session = open_session(trainer.c, defer=True)
    trainer.build()
    agent = trainer.agent
    # PBT: a new config after an exploit applies *after* the weights were loaded (ray#62173)
    for k in sweep.get("pbt_mutations") or {}:
        if k in params:
            agent.set_hyperparameter(MUTABLE[k], float(params[k]))

    uri, exp = sweep.get("tracking_uri"), sweep["experiment"]
    every_epoch_key = "disc/loss"  # logged every epoch (eval/* only at evaluations)

    def find_run() -> tuple[str | None, int]:
        """This trial's run if it has one already (a retry, a restore) and the last epoch it holds."""
        rid = sweep_runs.find_child(uri, exp, sweep["parent_run_id"], trial_id)
        return rid, (sweep_runs.last_step(uri, exp, rid, every_epoch_key) if rid else -1)

    from tracking import TrackingError

    try:
        run_id, last = find_run()
    except TrackingError:  # the store is down: the run is found (or made) when it answers
        run_id, last = None, (int(agent.epoch_num) if restored is not None else -1)
        session.find_run = find_run
    node = ray.get_runtime_context().get_node_id()
    tags = {
        "mlflow.parentRunId": sweep["parent_run_id"],
        sweep_runs.TRIAL_TAG: trial_id,
        "ray_trial_name": trial_name,
        # the user's command (the driver's), not Ray's worker command line
        "command": sweep.get("command", ""),
        "mlflow.source.name": "python -m sweeps",
        "sweep": sweep["name"],
        "ray_node_id": node,
        "hostname": socket.gethostname(),
    }
    if restored is not None:
        tags["restored_from_epoch"] = str(agent.epoch_num)
        print(
            f"sweep trial {trial_id}: restarted from its checkpoint at epoch {agent.epoch_num}; "
            f"MLflow run {run_id} already has steps up to {last}",
            flush=True,
        )
    fail = _fail_rule(sweep, params)
    first_attempt = restored is None
    every = max(1, int(sweep.get("report_every", 1)))
    ckpt_root = work / "tune_ckpt"
    reported: list[Path] = []

    def log_new_epochs(epoch, frame, metrics):
        if epoch > last:  # never log a step twice (retried / restored trials)
            extra = {
                f"config/{MUTABLE[k]}": float(getattr(agent, MUTABLE[k])) for k in sweep.get("pbt_mutations") or {}
            }
            session.on_epoch(epoch, frame, {**metrics, **extra})  # PBT schedules show up as curves

    metric = sweep["metric"]
    sanity = dict(sweep.get("sanity") or {})

    def report(epoch, frame, metrics):
        if fail and epoch == int(fail.get("at_epoch", 2)) and (first_attempt or fail.get("attempts") == "always"):
            if fail.get("kind") == "nan":  # a numerical blow-up, not a crash
                metrics = dict(metrics, **{"loss/critic": float("nan")})
            else:
                raise InjectedFailure(
                    f"injected failure at epoch {epoch} ({'every attempt' if fail.get('attempts') == 'always' else 'first attempt'})"
                )
        why = divergence(metrics, sanity, metric, agent.mini_epochs_num * len(agent.dataset))
        if why is None and not agent.weights_finite():
            why = "the weights are not finite"
        if why is not None:
            raise TrialDiverged(f"diverged at epoch {epoch}: {why}")
        final = bool(getattr(agent, "is_final_epoch", False))
        # a report at every evaluation (the metric is an eval/* number) or every `every` epochs, and at the end
        due = (metric in metrics) if metric.startswith("eval/") else (epoch % every == 0)
        if not (due or final) or metric not in metrics:
            return
        result = {k: float(v) for k, v in metrics.items()}
        result.update(
            epoch=epoch,
            timesteps_total=int(frame),
            node_id=node,
            mlflow_run_id=session.run_id or "",
            trial_done=float(final),
        )
        for k in sweep.get("pbt_mutations") or {}:
            result[f"config/{MUTABLE[k]}"] = float(getattr(agent, MUTABLE[k]))
        d = ckpt_root / f"epoch_{epoch:06d}"
        d.mkdir(parents=True, exist_ok=True)
        agent.save_checkpoint(d / CKPT_FILE)
        # the run gets its checkpoint tags, checkpoints and curves.png now: a scheduler may end the
        # trial at this report, and then its session never reaches its end
        session.on_checkpoint(d / CKPT_FILE, "epoch", epoch)
        session.upload_now()
        try:
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(str(d)))
        except SystemExit:
            # Tune ends a trial whose report it has taken by raising SystemExit in it. At the last
            # epoch's report the training is complete: it returns (its run ends FINISHED, the driver
            # tags why). Earlier, the run's status is the driver's to set: were the trial to end it
            # KILLED, that could land after the driver's FINISHED "stopped early by the scheduler".
            raise (_LastReportTaken if final else _StoppedByTune) from None
        reported.append(d)
        while len(reported) > 3:  # Tune persists a reported checkpoint in the background: keep the recent ones
            shutil.rmtree(reported.pop(0), ignore_errors=True)

    from isaacgymenvs.learning.learner import SimulationUnstableError

    try:
        with session.ending():
            session.start(
                trainer.run_dir,
                trainer.c,
                device=trainer.rl_device,
                tags=tags,
                run_name=trial_label(params) or trial_name,
                run_id=run_id,
                # params: the point, its seed and what the sweep's shared overrides changed (not
                # where a restarted attempt continues from: the run's restored_from_epoch tag)
                changed={k: v for k, v in trainer.changed_settings().items() if k != "checkpoint"},
                point=params,
            )
            if refused:
                raise TrialDiverged(refused)
            agent.observers.extend([log_new_epochs, report])
            agent.checkpoint_observers.append(session.on_checkpoint)
            if agent.epoch_num >= agent.max_epochs:
                return  # restored at the end: nothing left to train
            try:
                agent.train()
            except _LastReportTaken:
                pass
            except _StoppedByTune:
                session.end(None)  # metrics and checkpoints sent; no status (see _StoppedByTune)
                raise SystemExit(0) from None  # Tune's stop goes on
    except (TrialDiverged, SimulationUnstableError) as e:
        # the tracked run ended FAILED with this message; the trial ends as a result, never retried
        reason = str(e)
        print(f"sweep trial {trial_id}: FAILED: {reason}", flush=True)
        tune.report(
            {
                metric: float("nan"),
                "trial_failed": 1.0,
                "failure_reason": reason,
                "epoch": int(agent.epoch_num),
                "timesteps_total": int(agent.frame),
                "mlflow_run_id": session.run_id or "",
            }
        )
