"""The sweep driver: check the space, create the MLflow parent run, run (or restore) the Tuner, print the table.

python -m sweeps default            # cfg/sweep/default.yaml
python -m sweeps default --resume   # continue an interrupted sweep (same MLflow runs)
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import yaml

from isaacgymenvs.utils.secrets import strip_credentials
from sweeps import analysis
from sweeps.callback import MlflowStatusCallback
from sweeps.console import ConsoleReporter
from sweeps.errors import SweepError
from sweeps.lock import SweepLock
from sweeps.ray_session import STOP_SIGNAL, init_ray, quiet_ray
from sweeps.space import REPO, SANITY, TIME_ATTRS, check_spec, seeds_of
from sweeps.trial import run_trial, to_ray_key, trial_params

DEFAULT_STORAGE = REPO / "sweeps_out"


def _distribution(kind: str, v):
    from ray import tune

    return (
        {"grid": tune.grid_search, "choice": tune.choice}[kind](list(v))
        if kind in ("grid", "choice")
        else (tune.uniform(*v) if kind == "uniform" else tune.loguniform(*v))
    )


def param_space(spec: dict) -> dict:
    from ray import tune

    space = {}
    points = [{to_ray_key(k): v for k, v in p.items()} for p in spec.get("points") or []]
    if points:
        space["point"] = tune.grid_search(points)
    dims = {}
    for k, d in (spec.get("space") or {}).items():
        kind, v = next(iter(d.items()))
        dims[to_ray_key(k)] = _distribution(
            kind if not (kind == "grid" and spec["search"] == "optuna") else "choice", v
        )
    for k, d in (spec.get("pbt_mutations") or {}).items():  # PBT needs a starting value in the config
        if to_ray_key(k) not in dims and not any(k in p for p in spec.get("points") or []):
            kind, v = next(iter(d.items()))
            dims[to_ray_key(k)] = _distribution("choice" if kind == "grid" else kind, v)
    seeds = seeds_of(spec)  # every configuration with every seed: a grid dimension of its own
    dims["seed"] = tune.grid_search(seeds) if len(seeds) > 1 else seeds[0]
    space["p"] = dims
    return space


def max_time(spec: dict, time_attr: str, max_reports: int) -> float:
    """The largest value of ``time_attr`` (env_steps, wall_s or reports) a trial can reach."""
    b = spec.get("budget") or {}
    if time_attr == "env_steps":
        if b.get("env_steps"):
            return float(b["env_steps"])
        from sweeps.space import combinations, compose

        most = 0  # max_iterations x num_envs x horizon_length of the longest combination
        for combo in combinations(spec):
            c = compose(spec["overrides"] + [f"{k}={v}" for k, v in combo.items()]).train.params.config
            most = max(most, int(c.max_epochs) * int(c.num_actors) * int(c.horizon_length))
        return float(most)
    if time_attr == "wall_s":
        return float(b.get("wall_s") or spec.get("time_budget_s") or 1e9)
    return float(max(1, max_reports))


def _scheduler(spec: dict, max_reports: int):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    if spec["scheduler"] == "asha":
        a = dict(spec.get("asha") or {})
        unit = a.get("time_attr", "reports")
        max_t = max_time(spec, unit, max_reports)
        grace = float(a.get("grace_period", 1))
        if grace > max_t:  # a shortened run (less than the grace period): no early stopping
            print(
                f"sweep: asha.grace_period={grace:g} {unit} > the {max_t:g} {unit} of a trial; using {max_t:g}",
                flush=True,
            )
            grace = max_t
        return ASHAScheduler(
            time_attr=TIME_ATTRS[unit],
            max_t=max_t,
            grace_period=grace,
            reduction_factor=float(a.get("reduction_factor", 2)),
        )
    if spec["scheduler"] == "pbt":
        p = dict(spec.get("pbt") or {})
        unit = p.get("time_attr", "reports")
        muts = {}
        for k, d in (spec.get("pbt_mutations") or {}).items():
            kind, v = next(iter(d.items()))
            muts[to_ray_key(k)] = _distribution("choice" if kind == "grid" else kind, v)
        # checkpoints come with every report, whatever the time attribute counts (ray#27170)
        return PopulationBasedTraining(
            time_attr=TIME_ATTRS[unit],
            perturbation_interval=float(p.get("perturbation_interval", 2)),
            hyperparam_mutations={"p": muts},
            quantile_fraction=float(p.get("quantile_fraction", 0.25)),
            resample_probability=float(p.get("resample_probability", 0.25)),
            synch=bool(p.get("synch", False)),
        )
    return FIFOScheduler()


def _search(spec: dict):
    if spec["search"] != "optuna":
        return None
    try:
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(**dict(spec.get("optuna") or {}))
    except (ImportError, AssertionError) as e:
        raise SystemExit(
            f"search: optuna needs the optuna package (installed by `make install`; or pip install optuna==5.0.0): {e}"
        ) from None


def _trainable(spec: dict, sweep_cfg: dict):
    from ray import tune
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    res = dict(spec.get("resources") or {"cpu": 1})
    bundle = {"CPU": float(res.pop("cpu", 1)), "GPU": float(res.pop("gpu", 0))}
    bundle.update({k: float(v) for k, v in res.items()})
    return tune.with_resources(tune.with_parameters(run_trial, sweep=sweep_cfg), PlacementGroupFactory([bundle]))


def trial_dirname(trial) -> str:
    """Short trial folders (Ray's default spells the whole config into the name)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def _fmt_params(p: dict) -> str:
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in p.items())


def run_sweep(
    name: str = "default",
    resume: bool = False,
    storage_path: str | os.PathLike | None = None,
    set_: dict | None = None,
    tracking_uri: str | None = None,
    verbose: bool = False,
) -> dict:
    """Run (or resume) sweep ``name``; returns {"rows": [...], "best": row, "parent_run_id": ..., "path": ...}.
    The console: one line per trial report and per trial end (``sweeps.console``), then the table;
    ``verbose``: Ray's own output too (its tables and warnings, the trials' prints)."""
    from sweeps.space import load, normalize
    from tracking import resolve_uri

    spec = load(name) if isinstance(name, str) else normalize(dict(name))
    for k, v in (set_ or {}).items():
        spec[k] = v
    combos = check_spec(spec)  # before Ray starts: every bad combination in one error
    uri = resolve_uri(tracking_uri or spec.get("tracking_uri") or "")
    storage = Path(storage_path or spec.get("storage_path") or DEFAULT_STORAGE).resolve()
    exp_dir = storage / spec["name"]
    state_file = exp_dir / "sweep.json"
    t0 = time.monotonic()
    state = None
    if resume:
        if not state_file.exists():
            raise SweepError(f"nothing to resume in {exp_dir} (run the sweep without RESUME=1 first)")
        state = json.loads(state_file.read_text())
        uri = resolve_uri(tracking_uri or None) if tracking_uri else state["uri"]
    # before anything is moved, created or started: the store answers, and no other driver runs this sweep
    require_store(uri, spec["experiment"] if state is None else state["experiment"])
    lock = SweepLock(storage, spec["name"] if state is None else state["spec"]["name"]).acquire()
    try:
        result = _run_locked(spec, combos, uri, storage, exp_dir, state_file, state, t0, verbose)
    finally:
        lock.release()
    return result


def require_store(uri: str, experiment: str) -> None:
    """One line (SweepError) when the tracking store does not answer."""
    from tracking import TrackingError, sweep_runs
    from tracking.store import redact

    try:
        sweep_runs.tracker(uri, experiment)
    except TrackingError as e:
        raise SweepError(
            f"the tracking store {redact(uri)} does not answer ({str(e).splitlines()[0][:200]}): start it, "
            "or pass --tracking-uri (MLFLOW_TRACKING_URI) for one that runs; nothing was started or moved"
        ) from None


def _run_locked(spec, combos, uri, storage, exp_dir, state_file, state, t0, verbose) -> dict:
    from ray import tune

    from sweeps.space import normalize
    from sweeps.trial import trial_work_root
    from tracking import sweep_runs

    init_ray(num_cpus=None, verbose=verbose)
    from ray.tune import Tuner

    every = max(1, int(spec["report_every"]))
    resume = state is not None
    if resume:
        if not Tuner.can_restore(str(exp_dir)):
            raise SweepError(f"nothing to resume in {exp_dir} (run the sweep without RESUME=1 first)")
        parent, spec = state["parent_run_id"], normalize(state["spec"])  # the sweep as it started
        print(f"sweep {spec['name']}: resuming {exp_dir} (MLflow parent run {parent})", flush=True)
        _sync_pending(spec, storage, uri)  # what an outage or a killed driver left: sent, orphans closed
        tuner = Tuner.restore(
            str(exp_dir),
            _trainable(spec, _sweep_cfg(spec, parent, uri, trial_work_root(exp_dir))),
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )
        _restored_console(tuner, spec["metric"], verbose)
    else:
        if exp_dir.exists():
            old = exp_dir.with_name(f"{exp_dir.name}.{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.move(str(exp_dir), old)
            print(f"sweep {spec['name']}: the previous sweep moved to {old}", flush=True)
        exp_dir.mkdir(parents=True)
        n_trials = len(combos) * int(spec["num_samples"]) * len(seeds_of(spec))  # every configuration, every seed
        (exp_dir.parent / f"{spec['name']}.sweep.yaml").write_text(
            strip_credentials(yaml.safe_dump(spec, sort_keys=False))
        )
        parent = sweep_runs.start_parent(
            uri,
            spec["experiment"],
            spec["name"],
            f"{spec['name']}-{time.strftime('%Y%m%d-%H%M%S')}",
            {
                "metric": spec["metric"],
                "mode": spec["mode"],
                "search": spec["search"],
                "scheduler": spec["scheduler"],
                "trials": n_trials,
                "overrides": strip_credentials(" ".join(spec["overrides"])),
            },
            {"storage_path": str(exp_dir), "command": user_command(), "mlflow.source.name": "python -m sweeps"},
        )
        _write_private(
            state_file,
            strip_credentials(
                json.dumps(
                    {
                        "parent_run_id": parent,
                        "uri": uri,
                        "experiment": spec["experiment"],
                        "spec": spec,
                        "trial_work_dir": str(trial_work_root(exp_dir)),
                    }
                )
            ),
        )
        max_epochs = _max_epochs(spec)
        tuner = Tuner(
            _trainable(spec, _sweep_cfg(spec, parent, uri, trial_work_root(exp_dir))),
            param_space=param_space(spec),
            tune_config=tune.TuneConfig(
                metric=spec["metric"],
                mode=spec["mode"],
                num_samples=int(spec["num_samples"]),
                max_concurrent_trials=int(spec["max_concurrent_trials"]),
                time_budget_s=float(spec["time_budget_s"]) or None,
                scheduler=_scheduler(spec, math.ceil(max_epochs / every)),
                search_alg=_search(spec),
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=spec["name"],
                storage_path=str(storage),
                failure_config=tune.FailureConfig(max_failures=int(spec["max_failures"])),
                # PBT exploits older checkpoints of other trials: keep them all (ray#9036)
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None if spec["scheduler"] == "pbt" else 2),
                callbacks=[MlflowStatusCallback(uri, spec["experiment"], parent), ConsoleReporter(spec["metric"])],
                verbose=1 if verbose else 0,
            ),
        )
        print(
            f"sweep {spec['name']}: {n_trials} trial(s), {spec['max_concurrent_trials']} at a time; "
            f"MLflow experiment {spec['experiment']!r}, parent run {parent}; storage {exp_dir}",
            flush=True,
        )
    with quiet_ray(verbose):
        grid = tuner.fit()
    result = _summarize(spec, grid, uri, parent, exp_dir, time.monotonic() - t0)
    if not result.get("interrupted"):
        _sync_pending(spec, storage, uri)  # trials that ended during an outage: their spools and runs
        from sweeps.sim2sim import best_trial_videos

        result["videos"] = best_trial_videos(spec, result, uri)  # GPU sweeps only (its docstring says why)
    return result


def _restored_console(tuner, metric: str, verbose: bool) -> None:
    """``Tuner.restore`` brings back the RunConfig the sweep started with: its Ray verbosity follows
    this run's instead, and a sweep started before the console reporter existed gets one."""
    get = getattr(getattr(tuner, "_local_tuner", None), "get_run_config", None)
    rc = get() if get is not None else None
    if rc is None:
        return
    rc.verbose = 1 if verbose else 0
    rc.callbacks = [c for c in rc.callbacks or [] if not isinstance(c, ConsoleReporter)] + [ConsoleReporter(metric)]


def _sync_pending(spec: dict, storage: Path, uri: str) -> None:
    """Send what trials spooled while the store was down, close child runs whose process is gone,
    and finish the parent run if the store did not answer at the end; say what is still pending."""
    from tracking.sync import sync_sweep

    lines = []
    code = sync_sweep(spec["name"], storage, uri, timeout_s=20, say=lines.append)
    for ln in lines:
        print(f"sweep {spec['name']}: {ln}", flush=True)
    if code:
        print(
            f"sweep {spec['name']}: the tracking store did not take everything yet; it is kept on this host and sent by "
            f"`make sweep SWEEP={spec['name']} RESUME=1` or `python -m tracking sync --sweep {spec['name']}`",
            flush=True,
        )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (0600), in place of ``path``, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _sweep_cfg(spec: dict, parent: str, uri: str, work_root: Path) -> dict:
    from sweeps.space import budget_overrides

    cfg = {k: spec[k] for k in ("name", "experiment", "metric", "mode", "report_every", "fail", "pbt_mutations")}
    cfg.update(
        parent_run_id=parent,
        tracking_uri=uri,
        overrides=list(spec["overrides"]) + budget_overrides(spec),
        sanity={**SANITY, **(spec.get("sanity") or {})},
        work_root=str(work_root),
        command=user_command(),
    )
    return cfg


def user_command() -> str:
    """The command the user typed, as far as this process knows it (``python -m sweeps NAME ...``;
    ``make sweep`` runs exactly that), credentials stripped."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "sweeps":
        argv = ["python", "-m", "sweeps", *argv[1:]]
    return strip_credentials(shlex.join(argv))


def _max_epochs(spec: dict) -> int:
    for o in spec["overrides"]:
        if o.startswith("max_iterations="):
            return int(o.split("=", 1)[1])
    return 5000


def _status(r, m: dict, max_epochs: int) -> tuple[str, str]:
    """(status, reason) of one trial: OK, STOPPED (early, by the scheduler), FAILED (diverged: a
    result, never ranked) or ERROR (crashed after its retries)."""
    if m.get("trial_failed"):
        return "FAILED", str(m.get("failure_reason") or "diverged")
    if r.error:
        return "ERROR", str(r.error).strip().splitlines()[-1][:300]
    return ("OK" if m.get("trial_done") or (m.get("epoch") or 0) >= max_epochs else "STOPPED"), ""


def _close_interrupted(uri: str, spec: dict, row: dict) -> None:
    """End KILLED the run of a trial that Ctrl+C stopped (its trial leaves the status to the driver),
    saying how to go on; resuming the sweep reopens it."""
    from tracking import sweep_runs

    if not row["mlflow_run_id"]:
        return
    why = (
        f"the sweep was interrupted after epoch {row['epochs']}; continue it with: "
        f"make sweep SWEEP={spec['name']} RESUME=1 (python -m sweeps {spec['name']} --resume)"
    )
    try:
        # a run the scheduler stopped before the interrupt has its status and reason already
        sweep_runs.end_if_running(
            uri, spec["experiment"], row["mlflow_run_id"], "KILLED", {"stop_reason": why}, retag_ended=False
        )
    except Exception as e:  # the store may be what failed; resuming closes orphans first
        print(f"sweep {spec['name']}: could not close the run of trial {row['trial']}: {e}", flush=True)


def _summarize(spec, grid, uri, parent, exp_dir, wall_s) -> dict:
    from tracking import sweep_runs

    metric, mode = spec["metric"], spec["mode"]
    max_epochs = _max_epochs(spec)
    interrupted = STOP_SIGNAL.seen  # Ctrl+C: Tune saved its state and fit() returned normally
    rows = []
    for r in grid:
        m = r.metrics or {}
        tid = m.get("trial_id") or (r.path and Path(r.path).name)
        params = trial_params(r.config or {})
        val = m.get(metric, float("nan"))
        status, reason = _status(r, m, max_epochs)
        run_id = m.get("mlflow_run_id") or ""
        if not run_id:
            try:
                run_id = sweep_runs.find_child(uri, spec["experiment"], parent, m.get("trial_id", "")) or ""
            except Exception:
                run_id = ""
        rows.append(
            {
                "trial": m.get("trial_id", tid),
                "params": params,
                "metric": float(val) if val is not None else float("nan"),
                "epochs": m.get("epoch"),
                "env_steps": m.get("timesteps_total"),
                "status": status,
                "reason": reason,
                "mlflow_run_id": run_id,
            }
        )
    configs = analysis.configurations(rows, mode)
    best_cfg = configs[0] if configs else None
    best = next((r for r in rows if best_cfg and r["trial"] == best_cfg["best_trial"]), None)
    lines = [f"{'trial':<14} {'status':<7} {'epochs':>6} {'env steps':>10} {metric:>18}  {'mlflow run id':<32}  params"]
    for r in rows:
        lines.append(
            f"{r['trial']:<14} {r['status']:<7} {str(r['epochs']):>6} {str(r['env_steps']):>10} {r['metric']:>18.4f}  "
            f"{r['mlflow_run_id']:<32}  {_fmt_params(r['params'])}"
        )
    table = "\n".join(lines)
    if interrupted:
        for r in rows:
            if r["status"] == "STOPPED" and (r["epochs"] or 0) < max_epochs:
                r["status"] = "PAUSED?"
                _close_interrupted(uri, spec, r)
        print(
            f"\nsweep {spec['name']} INTERRUPTED after {wall_s:.0f} s ({grid.num_terminated} of {len(grid)} trials ended); "
            f"continue it with: make sweep SWEEP={spec['name']} RESUME=1 (python -m sweeps {spec['name']} --resume)",
            flush=True,
        )
        return {
            "rows": rows,
            "best": None,
            "parent_run_id": parent,
            "path": str(exp_dir),
            "interrupted": True,
            "wall_s": wall_s,
        }
    dims = [k for k in dict.fromkeys(k for r in rows for k in r["params"]) if k != "seed"]
    effects = analysis.dimension_effects(rows, dims) if spec["scheduler"] != "pbt" else []
    importances = (
        analysis.optuna_importances(rows, spec.get("space") or {}, mode) if spec["search"] == "optuna" else None
    )
    failed = [r for r in rows if r["status"] in ("FAILED", "ERROR")]
    parts = [
        table,
        "",
        f"configurations by mean {metric} over their seeds ({mode}):",
        analysis.configurations_table(configs, metric),
    ]
    if effects:
        parts += [
            "",
            "what each dimension did (difference of means from the first value, 95% bootstrap interval):",
            analysis.effects_table(effects, metric),
        ]
    elif spec["scheduler"] == "pbt":
        parts += ["", "what each dimension did: not computed for PBT (its hyperparameters change during a trial)"]
    if importances:
        parts += [
            "",
            "Optuna parameter importances: "
            + ", ".join(f"{k.rsplit('.', 1)[-1]} {v:.2f}" for k, v in importances.items()),
        ]
    if failed:
        parts += ["", f"{len(failed)} trial(s) failed (never ranked):"] + [
            f"  {r['trial']} {r['status']}: {r['reason']}  ({_fmt_params(r['params'])})" for r in failed
        ]
    best_line = (
        (
            f"best configuration: {_fmt_params(best_cfg['params'])}: {metric} {best_cfg['mean']:.4f} +- {best_cfg['std']:.4f} "
            f"over {best_cfg['n']} seed(s); its best seed: trial {best_cfg['best_trial']} ({best_cfg['best_value']:.4f}), "
            f"mlflow run {best['mlflow_run_id'] if best else ''}"
        )
        if best_cfg
        else "best configuration: none (no trial finished with the metric)"
    )
    report = "\n".join(parts + ["", best_line])
    url = sweep_runs.run_url(uri, spec["experiment"], parent)
    print(
        "\n"
        + report
        + f"\nsweep {spec['name']} done in {wall_s:.0f} s; parent MLflow run {parent}"
        + (f"\nopen it in the MLflow UI: {url}" if url else ""),
        flush=True,
    )
    (exp_dir / "results.txt").write_text(report + "\n")
    (exp_dir / "results.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "configurations": [{k: v for k, v in c.items() if k != "key"} for c in configs],
                "effects": effects,
                "importances": importances,
                "best": best,
                "best_configuration": best_cfg and {k: v for k, v in best_cfg.items() if k != "key"},
            },
            indent=1,
            default=str,
        )
    )
    arts = [exp_dir / "results.txt", exp_dir / "results.json", exp_dir.parent / f"{spec['name']}.sweep.yaml"]
    for png in (
        analysis.plot_parallel(configs, metric, exp_dir / "parallel_coordinates.png"),
        analysis.plot_effects(rows, effects, metric, exp_dir / "effects.png"),
    ):
        if png:
            arts.append(png)
    status = "FINISHED" if best_cfg else "FAILED"
    tags = {
        "best_trial": best["trial"] if best else "",
        "best_run_id": best["mlflow_run_id"] if best else "",
        "failed_trials": str(len(failed)),
        "mlflow.note.content": _description(spec, report),
    }
    metrics = {f"best/{metric}": best_cfg["mean"], f"best/{metric}_std": best_cfg["std"]} if best_cfg else None
    try:
        sweep_runs.finish_parent(
            uri, spec["experiment"], parent, status, [a for a in arts if a.exists()], tags=tags, metrics=metrics
        )
    except Exception as e:
        (exp_dir / "parent_pending.json").write_text(
            json.dumps(
                {"status": status, "artifacts": [str(a) for a in arts], "tags": tags, "metrics": metrics}, indent=1
            )
        )
        print(
            f"sweep {spec['name']}: the tracking store did not answer ({str(e).splitlines()[0][:200]}); the results are in "
            f"{exp_dir} and go to the parent run {parent} with `make sweep SWEEP={spec['name']} RESUME=1` or "
            f"`python -m tracking sync --sweep {spec['name']}`",
            flush=True,
        )
    return {
        "rows": rows,
        "best": best,
        "configurations": configs,
        "effects": effects,
        "importances": importances,
        "parent_run_id": parent,
        "path": str(exp_dir),
        "table": table,
        "wall_s": wall_s,
    }


def _description(spec: dict, report: str) -> str:
    """The parent run's description (MLflow shows it on the run page): the sweep's summary, its
    best configuration first (the run page shows a description's first lines until "Show more")."""
    from tracking.params import MAX_TAG_VALUE

    best = next((line for line in report.splitlines() if line.startswith("best configuration:")), "")
    best = f" **Best configuration**{best.split('; its best seed')[0][len('best configuration') :]}." if best else ""
    text = f"Sweep **{spec['name']}** ({spec['metric']}, {spec['mode']}).{best}\n\n```\n{report}\n```"
    return text[:MAX_TAG_VALUE]
