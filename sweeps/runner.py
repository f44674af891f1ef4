"""The sweep driver: check the space, create the MLflow parent run, run (or restore) the Tuner, print the table.

    python -m sweeps default            # cfg/sweep/default.yaml
    python -m sweeps default --resume   # continue an interrupted sweep (same MLflow runs)
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import yaml

from sweeps.callback import MlflowStatusCallback
from sweeps.space import REPO, check_spec
from sweeps.trial import run_trial, to_ray_key, trial_params

DEFAULT_STORAGE = REPO / "sweeps_out"


def _distribution(kind: str, v):
    from ray import tune

    return {"grid": tune.grid_search, "choice": tune.choice}[kind](list(v)) if kind in ("grid", "choice") else (
        tune.uniform(*v) if kind == "uniform" else tune.loguniform(*v))


def param_space(spec: dict) -> dict:
    from ray import tune

    space = {}
    points = [{to_ray_key(k): v for k, v in p.items()} for p in spec.get("points") or []]
    if points:
        space["point"] = tune.grid_search(points)
    dims = {}
    for k, d in (spec.get("space") or {}).items():
        kind, v = next(iter(d.items()))
        dims[to_ray_key(k)] = _distribution(kind if not (kind == "grid" and spec["search"] == "optuna") else "choice", v)
    for k, d in (spec.get("pbt_mutations") or {}).items():  # PBT needs a starting value in the config
        if to_ray_key(k) not in dims and not any(k in p for p in spec.get("points") or []):
            kind, v = next(iter(d.items()))
            dims[to_ray_key(k)] = _distribution("choice" if kind == "grid" else kind, v)
    if dims:
        space["p"] = dims
    return space


def _scheduler(spec: dict, max_reports: int):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    if spec["scheduler"] == "asha":
        a = dict(spec.get("asha") or {})
        max_t = max(1, max_reports)
        grace = int(a.get("grace_period", 1))
        if grace > max_t:  # a shortened run (fewer epochs than the grace period): no early stopping
            print(f"sweep: asha.grace_period={grace} reports > the {max_t} reports of a trial; using {max_t}", flush=True)
            grace = max_t
        return ASHAScheduler(time_attr="training_iteration", max_t=max_t,
                             grace_period=grace, reduction_factor=float(a.get("reduction_factor", 2)))
    if spec["scheduler"] == "pbt":
        p = dict(spec.get("pbt") or {})
        muts = {}
        for k, d in (spec.get("pbt_mutations") or {}).items():
            kind, v = next(iter(d.items()))
            muts[to_ray_key(k)] = _distribution("choice" if kind == "grid" else kind, v)
        # time_attr=training_iteration: checkpoints come with every report (ray#27170)
        return PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=int(p.get("perturbation_interval", 2)),
                                       hyperparam_mutations={"p": muts}, quantile_fraction=float(p.get("quantile_fraction", 0.25)),
                                       resample_probability=float(p.get("resample_probability", 0.25)), synch=bool(p.get("synch", False)))
    return FIFOScheduler()


def _search(spec: dict):
    if spec["search"] != "optuna":
        return None
    try:
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(**dict(spec.get("optuna") or {}))
    except (ImportError, AssertionError) as e:
        raise SystemExit(f"search: optuna needs the optuna package (installed by `make install`; or pip install optuna==5.0.0): {e}") from None


def init_ray(num_cpus: int | None = None):
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if address:
        ray.init(address=address, log_to_driver=True)  # a cluster started with `ray start`
    else:
        # a private local Ray: no dashboard, ports on the loopback interface only
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                 configure_logging=True, logging_level="WARNING")


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


def run_sweep(name: str = "default", resume: bool = False, storage_path: str | os.PathLike | None = None,
              set_: dict | None = None, tracking_uri: str | None = None, verbose: int = 1) -> dict:
    """Run (or resume) sweep ``name``; returns {"rows": [...], "best": row, "parent_run_id": ..., "path": ...}."""
    from ray import tune

    from sweeps.space import load, normalize
    from tracking import resolve_uri, sweep_runs

    spec = load(name) if isinstance(name, str) else normalize(dict(name))
    for k, v in (set_ or {}).items():
        spec[k] = v
    combos = check_spec(spec)  # before Ray starts: every bad combination in one error
    uri = resolve_uri(tracking_uri or spec.get("tracking_uri") or "")
    storage = Path(storage_path or spec.get("storage_path") or DEFAULT_STORAGE).resolve()
    exp_dir = storage / spec["name"]
    state_file = exp_dir / "sweep.json"
    t0 = time.monotonic()
    init_ray(num_cpus=None)
    from ray.tune import Tuner

    every = max(1, int(spec["report_every"]))
    if resume:
        if not (state_file.exists() and Tuner.can_restore(str(exp_dir))):
            raise SystemExit(f"nothing to resume in {exp_dir} (run the sweep without RESUME=1 first)")
        state = json.loads(state_file.read_text())
        parent, uri, spec = state["parent_run_id"], state["uri"], normalize(state["spec"])  # the sweep as it started
        print(f"sweep {spec['name']}: resuming {exp_dir} (MLflow parent run {parent})", flush=True)
        tuner = Tuner.restore(str(exp_dir), _trainable(spec, _sweep_cfg(spec, parent, uri)), resume_unfinished=True,
                              resume_errored=False, restart_errored=False)
    else:
        if exp_dir.exists():
            old = exp_dir.with_name(f"{exp_dir.name}.{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.move(str(exp_dir), old)
            print(f"sweep {spec['name']}: the previous sweep moved to {old}", flush=True)
        exp_dir.mkdir(parents=True)
        (exp_dir.parent / f"{spec['name']}.sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        parent = sweep_runs.start_parent(uri, spec["experiment"], spec["name"],
                                         {"metric": spec["metric"], "mode": spec["mode"], "search": spec["search"],
                                          "scheduler": spec["scheduler"], "trials": len(combos) * int(spec["num_samples"]),
                                          "overrides": " ".join(spec["overrides"])},
                                         {"storage_path": str(exp_dir)})
        state_file.write_text(json.dumps({"parent_run_id": parent, "uri": uri, "experiment": spec["experiment"], "spec": spec}))
        max_epochs = _max_epochs(spec)
        tuner = Tuner(
            _trainable(spec, _sweep_cfg(spec, parent, uri)),
            param_space=param_space(spec),
            tune_config=tune.TuneConfig(metric=spec["metric"], mode=spec["mode"], num_samples=int(spec["num_samples"]),
                                        max_concurrent_trials=int(spec["max_concurrent_trials"]),
                                        time_budget_s=float(spec["time_budget_s"]) or None,
                                        scheduler=_scheduler(spec, math.ceil(max_epochs / every)), search_alg=_search(spec),
                                        trial_dirname_creator=trial_dirname),
            run_config=tune.RunConfig(name=spec["name"], storage_path=str(storage),
                                      failure_config=tune.FailureConfig(max_failures=int(spec["max_failures"])),
                                      # PBT exploits older checkpoints of other trials: keep them all (ray#9036)
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=None if spec["scheduler"] == "pbt" else 2),
                                      callbacks=[MlflowStatusCallback(uri, spec["experiment"], parent)], verbose=verbose),
        )
        print(f"sweep {spec['name']}: {len(combos) * int(spec['num_samples'])} trial(s), {spec['max_concurrent_trials']} at a time; "
              f"MLflow experiment {spec['experiment']!r}, parent run {parent}; storage {exp_dir}", flush=True)
    logging.getLogger("ray.tune.tune").addHandler(_STOP)
    grid = tuner.fit()
    return _summarize(spec, grid, uri, parent, exp_dir, time.monotonic() - t0)


def _sweep_cfg(spec: dict, parent: str, uri: str) -> dict:
    cfg = {k: spec[k] for k in ("name", "experiment", "metric", "overrides", "report_every", "fail", "pbt_mutations")}
    cfg.update(parent_run_id=parent, tracking_uri=uri)
    return cfg


def _max_epochs(spec: dict) -> int:
    for o in spec["overrides"]:
        if o.startswith("max_iterations="):
            return int(o.split("=", 1)[1])
    return 5000


class _StopSignalSeen(logging.Handler):
    """Tune catches Ctrl+C/SIGUSR1 inside ``fit()``, saves its state and returns normally; the only
    outside trace is its "Stop signal received" warning, which this handler notices."""

    seen = False

    def emit(self, record):
        if str(record.msg).startswith("Stop signal received"):
            _StopSignalSeen.seen = True


_STOP = _StopSignalSeen()


def _summarize(spec, grid, uri, parent, exp_dir, wall_s) -> dict:
    from tracking import sweep_runs

    metric, mode = spec["metric"], spec["mode"]
    max_epochs = _max_epochs(spec)
    interrupted = _STOP.seen  # Ctrl+C: Tune saved its state and fit() returned normally
    rows = []
    for r in grid:
        m = r.metrics or {}
        tid = m.get("trial_id") or (r.path and Path(r.path).name)
        params = trial_params(r.config or {})
        val = m.get(metric, float("nan"))
        rows.append({"trial": m.get("trial_id", tid), "params": params, "metric": float(val) if val is not None else float("nan"),
                     "epochs": m.get("epoch"),
                     "status": "ERROR" if r.error else ("STOPPED" if (m.get("epoch") or 0) < max_epochs else "OK"),
                     "mlflow_run_id": m.get("mlflow_run_id") or (sweep_runs.find_child(uri, spec["experiment"], parent, m.get("trial_id", "")) or "")})
    ok = [r for r in rows if math.isfinite(r["metric"]) and r["status"] != "ERROR"] or [r for r in rows if math.isfinite(r["metric"])]
    best = (min if mode == "min" else max)(ok, key=lambda r: r["metric"]) if ok else None
    lines = [f"{'trial':<14} {'status':<6} {'epochs':>6} {metric:>22}  {'mlflow run id':<32}  params"]
    for r in rows:
        lines.append(f"{r['trial']:<14} {r['status']:<6} {str(r['epochs']):>6} {r['metric']:>22.4f}  {r['mlflow_run_id']:<32}  {_fmt_params(r['params'])}")
    table = "\n".join(lines)
    best_line = (f"best trial: {best['trial']} {metric}={best['metric']:.4f} ({mode}) mlflow run {best['mlflow_run_id']} "
                 f"params: {_fmt_params(best['params'])}") if best else "best trial: none (no trial reported the metric)"
    if interrupted:
        for r in rows:
            if r["status"] == "STOPPED" and (r["epochs"] or 0) < max_epochs:
                r["status"] = "PAUSED?"
        print(f"\nsweep {spec['name']} INTERRUPTED after {wall_s:.0f} s ({grid.num_terminated} of {len(grid)} trials ended); "
              f"continue it with: make sweep SWEEP={spec['name']} RESUME=1 (python -m sweeps {spec['name']} --resume)", flush=True)
        return {"rows": rows, "best": None, "parent_run_id": parent, "path": str(exp_dir), "interrupted": True, "wall_s": wall_s}
    print("\n" + table + "\n" + best_line + f"\nsweep {spec['name']} done in {wall_s:.0f} s; parent MLflow run {parent}", flush=True)
    (exp_dir / "results.txt").write_text(table + "\n" + best_line + "\n")
    (exp_dir / "results.json").write_text(json.dumps({"rows": rows, "best": best}, indent=1, default=str))
    arts = [exp_dir / "results.txt", exp_dir / "results.json", exp_dir.parent / f"{spec['name']}.sweep.yaml"]
    png = _plot(rows, metric, exp_dir / "parallel_coordinates.png")
    if png:
        arts.append(png)
    try:
        status = "FINISHED" if all(r["status"] != "ERROR" for r in rows) else "FAILED"
        sweep_runs.finish_parent(uri, spec["experiment"], parent, status, [a for a in arts if a.exists()],
                                 tags={"best_trial": best["trial"] if best else "", "best_run_id": best["mlflow_run_id"] if best else ""},
                                 metrics={f"best/{metric}": best["metric"]} if best else None)
    except Exception as e:
        print(f"sweep: could not finish the parent run {parent}: {e}")
    return {"rows": rows, "best": best, "parent_run_id": parent, "path": str(exp_dir), "table": table, "wall_s": wall_s}


def _plot(rows, metric, path: Path):
    """A parallel-coordinates style plot: one line per trial over its parameters and the metric."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in rows if math.isfinite(r["metric"])]
    if not rows:
        return None
    keys = sorted({k for r in rows for k in r["params"]})
    axes = keys + [metric]

    def col(k):
        vals = [r["params"].get(k) if k != metric else r["metric"] for r in rows]
        try:
            nums = [float(v) for v in vals]
        except (TypeError, ValueError):
            cats = sorted({str(v) for v in vals})
            nums = [float(cats.index(str(v))) for v in vals]
        lo, hi = min(nums), max(nums)
        return [(x - lo) / (hi - lo) if hi > lo else 0.5 for x in nums]

    cols = [col(k) for k in axes]
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(axes), 4))
    for i, r in enumerate(rows):
        ax.plot(range(len(axes)), [c[i] for c in cols], marker="o", label=f"{r['trial']} ({r['metric']:.3f})")
    ax.set_xticks(range(len(axes)), [a.rsplit(".", 1)[-1] for a in axes], rotation=20)
    ax.set_yticks([])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
