"""Promote the best trial of a sweep to the MLflow model registry (``make promote``).

    python -m sweeps.promote [sweep=default] [metric=eval/motion_nn_dist] [mode=min|max] [force=1]
                             [storage=sweeps_out] [uri=TRACKING_URI] [video=0]

1. The sweep: ``<storage>/<sweep>/sweep.json`` (written by ``make sweep``) names its MLflow parent run,
   tracking URI, experiment, metric and mode. Everything else comes from MLflow, so trials that ran
   on other nodes count the same.
2. The best configuration: the parent's FINISHED child runs grouped by their point in the search
   space without the seed; the configuration with the best mean latest ``metric`` over its seeds
   (default: the sweep's, with its mode; another metric ranks by ``min`` unless ``mode=max``; never
   ``disc/*`` or ``reward/*``: discriminator logits and rewards are not comparable between runs),
   and of it the seed with the best value. A trial with a non-finite number or a simulator blow-up
   in its final evaluation is refused, naming why (``force=1`` does not change that).
3. Its checkpoint artifact (``checkpoints/best.pth``, else ``latest.pth``) is exported
   (``isaacgymenvs.export``: four files and their self-check) and registered as a new version of
   ``<task>-policy`` with tags for the sweep, trial, params, metrics and the check. A version is
   identified by (source run, checkpoint sha256): promoting the same checkpoint again registers
   nothing.
   A new version is then evaluated as ``sweeps.sim2sim`` evaluates one (its export in the
   character's evaluation model, MuJoCo C on the CPU, 10 episodes, in a child process): the GIF of
   whole episodes (until it lasts 10 s) and the numbers go to the version's run under
   ``sim2sim/v<version>/``, the numbers and the GIF's path to the version's tags (``sim2sim.*``,
   ``sim2sim.video``), and the GIF into the version's description, so its page in the MLflow UI
   shows it. Without an offscreen OpenGL library that is one warning line naming the package; the
   version stays registered (10-80 s on a 2-core CPU machine, mostly software OpenGL; ``video=0``:
   the numbers without the GIF).
4. The alias ``champion`` moves to that version only if its metric is strictly better than the
   champion's (``force=1``: always), and never from a version that stays up to one that falls in
   every evaluation episode (``eval/fall_rate`` 1; such a version is tagged ``untrained``). A
   checkpoint that fails export or its check is never registered, so the alias cannot point at it.

Prints one JSON object (stdout); the ranking and the decision go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from isaacgymenvs.utils.cli import parse_kv, run_json

USAGE = (
    "usage: python -m sweeps.promote [sweep=NAME] [metric=eval/...] [mode=min|max] [force=1] "
    "[storage=DIR] [uri=TRACKING_URI] [video=0]"
)
DEFAULT_STORAGE = Path(__file__).resolve().parents[1] / "sweeps_out"


class PromoteError(ValueError):
    pass


def _say(msg: str) -> None:
    print(f"promote: {msg}", file=sys.stderr, flush=True)


def load_sweep(name: str, storage=None) -> dict:
    storage = Path(storage or DEFAULT_STORAGE)
    f = storage / name / "sweep.json"
    if not f.is_file():
        known = sorted(p.parent.name for p in storage.glob("*/sweep.json")) if storage.is_dir() else []
        raise PromoteError(
            f"sweep {name!r}: no {f} (sweeps there: {', '.join(known) or 'none'}); run "
            f"`make sweep SWEEP={name}` first, or pass storage=DIR where it ran"
        )
    state = json.loads(f.read_text())
    missing = {"parent_run_id", "uri", "experiment", "spec"} - set(state)
    if missing:
        raise PromoteError(f"{f} lacks {sorted(missing)}: not written by this version of `make sweep`")
    return state


def _trial_params(spec: dict, run) -> dict:
    """The swept keys (and the seed) of a trial run; with ``run=None``, just the keys."""
    keys = list((spec.get("space") or {}).keys())
    for p in spec.get("points") or []:
        keys += [k for k in p if k not in keys]
    keys.append("seed")
    if run is None:
        return dict.fromkeys(keys)
    params = run.data.params
    return {k: params[k] for k in keys if k in params}


def refusal(run) -> str | None:
    """Why a finished trial may not be promoted, or None: a non-finite latest number, or a blow-up."""
    import math

    m = run.data.metrics
    # MLflow stores an infinite value as +-1.8e308
    bad = sorted(
        k
        for k, v in m.items()
        if k.startswith(("eval/", "loss/", "rollout/")) and not (math.isfinite(float(v)) and abs(float(v)) < 1e300)
    )
    if bad:
        return f"non-finite {', '.join(bad)}"
    if float(m.get("eval/unstable_envs", 0.0)) > 0:
        return f"the simulator blew up in {m['eval/unstable_envs']:g} of its final evaluation episodes"
    if run.data.tags.get("error"):
        return f"its run says: {run.data.tags['error'][:200]}"
    return None


def rank_configurations(ranked: list, spec: dict, mode: str) -> list[dict]:
    """``ranked`` (value, run) pairs, best first, grouped by configuration (the swept keys without
    the seed): ``[{"params", "values", "mean", "std", "runs": [(value, run), ...best first]}]``,
    best mean first."""
    import statistics

    keys = [k for k in _trial_params(spec, None) if k != "seed"] if spec else []
    groups: dict[tuple, list] = {}
    for value, run in ranked:
        params = {k: run.data.params.get(k) for k in keys}
        groups.setdefault(tuple(sorted(params.items())), []).append((value, run))
    out = []
    for key, members in groups.items():
        vals = [v for v, _ in members]
        out.append(
            {
                "params": dict(key),
                "values": vals,
                "mean": statistics.fmean(vals),
                "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                "runs": members,
            }
        )
    out.sort(key=lambda c: c["mean"], reverse=(mode == "max"))
    return out


def _flag(v) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "y")


def promote(
    sweep: str = "default",
    metric: str | None = None,
    mode: str | None = None,
    force: bool = False,
    storage=None,
    uri: str | None = None,
    alias: str | None = None,
    video: bool = True,
) -> dict:
    from tracking import registry as reg
    from tracking.store import redact, ui_url

    alias = alias or reg.CHAMPION
    state = load_sweep(sweep, storage)
    spec = state["spec"]
    metric = metric or spec.get("metric") or "eval/score"
    mode = (
        mode
        or (spec.get("mode") if metric == spec.get("metric") else None)
        or ("max" if metric == "eval/score" else "min")
    )
    reg.check_metric(metric)
    from tracking.store import resolve_uri

    # sweep.json holds the URI without credentials: they come from MLFLOW_TRACKING_URI / _USERNAME / _PASSWORD
    given = resolve_uri(uri or "") if (uri or os.environ.get("MLFLOW_TRACKING_URI")) else None
    r = reg.Registry(given if uri else state["uri"])
    ranked = r.rank(r.sweep_trials(state["experiment"], state["parent_run_id"]), metric, mode, sweep)
    configs = rank_configurations(ranked, spec, mode)
    _say(
        f"sweep {sweep!r} (parent run {state['parent_run_id']}): configurations by mean {metric} over their seeds ({mode}):"
    )
    for c in configs:
        _say(
            f"  {c['mean']:12.5g} +- {c['std']:.3g} ({len(c['values'])} seed(s))  "
            + " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in c["params"].items())
        )
    candidates = [
        (c, value, run) for c in configs for value, run in c["runs"]
    ]  # best configuration first, best seed first
    refused = []
    with tempfile.TemporaryDirectory(prefix="promote-") as tmp:
        for config, value, run in candidates:  # noqa: B007 (the first that may be promoted and has a checkpoint: used below)
            why = refusal(run)
            if why is None:
                try:
                    ckpt, art = r.download_checkpoint(run, Path(tmp) / "download")
                    break
                except reg.MissingCheckpointError as e:
                    why = str(e)
            refused.append(f"{run.info.run_name}: {why}")
            _say(f"skipped {run.info.run_name}: {why}")
        else:
            raise PromoteError(f"no finished trial of sweep {sweep!r} can be promoted: " + "; ".join(refused))
        rid = run.info.run_id
        task = run.data.tags.get("task")  # every training run has it (tracking.params.run_tags)
        if not task:
            raise PromoteError(f"run {rid} has no task tag: not a training run of this project")
        name = reg.model_name(task)
        digest = reg.sha256(ckpt)
        mv = r.find_version(name, rid, digest)
        registered = mv is None
        check = None
        evaluation, evaluation_warning = {}, None
        if mv is not None:
            _say(f"{art} of run {rid} is already version {mv.version} of {name}: nothing new registered")
        else:
            from isaacgymenvs.export import ExportError, export
            from isaacgymenvs.learning.learner import CheckpointError

            out = Path(tmp) / reg.POLICY_DIR
            try:
                check = export(ckpt, out)
            except (ExportError, CheckpointError) as e:
                msg = str(e).replace(str(ckpt), f"runs:/{rid}/{art}")  # the artifact, not the temporary download
                raise PromoteError(f"trial {run.info.run_name}: {msg}; nothing registered, {alias} unchanged") from e
            info = json.loads((out / "policy.json").read_text())
            info.update(source_checkpoint=f"runs:/{rid}/{art}", source_run_id=rid)
            (out / "policy.json").write_text(json.dumps(info, indent=2))
            epoch = run.data.tags.get(f"checkpoint.{Path(art).stem}_epoch", str(info.get("epoch", "")))
            tags = {
                "task": task,
                "sweep": sweep,
                "sweep_parent_run_id": state["parent_run_id"],
                "trial_id": run.data.tags.get("ray_trial_id", ""),
                "trial_name": run.info.run_name or "",
                "source_run_id": rid,
                "source_experiment": state["experiment"],
                "checkpoint": art,
                "checkpoint_epoch": epoch,
                "checkpoint_sha256": digest,
                "promote.metric": metric,
                "promote.mode": mode,
                "promote.value": repr(value),
                "config.mean": repr(config["mean"]),
                "config.std": repr(config["std"]),
                "config.seeds": str(len(config["values"])),
                **(
                    {"untrained": "falls in every evaluation episode (eval/fall_rate 1)"}
                    if float(run.data.metrics.get("eval/fall_rate", 0.0)) >= 1.0
                    else {}
                ),
                "export.check": check["check"],
                "export.max_abs_err_onnx": repr(check["max_abs_err_policy_onnx"]),
                "export.max_abs_err_pt": repr(check["max_abs_err_policy_pt"]),
                **{f"metric.{k}": repr(v) for k, v in sorted(run.data.metrics.items()) if k.startswith("eval/")},
                **{f"param.{k}": v for k, v in _trial_params(spec, run).items()},
            }
            desc = (
                f"sweep {sweep}, trial {run.info.run_name}: {metric} = {value:.5g} ({mode}); its configuration "
                f"{config['mean']:.5g} +- {config['std']:.3g} over {len(config['values'])} seed(s); {art} (epoch {epoch}) "
                f"of run {rid}"
            )
            mv = r.register(name, out, run, tags, desc)
            _say(f"registered {name} version {mv.version} from {art} of run {rid} ({metric} = {value:.5g})")
            evaluation, evaluation_warning = _evaluate_version(r, mv, out, Path(tmp), video)

    moved, reason, champ_value = _champion_rule(r, name, alias, mv, metric, mode, value, force)
    champion = r.alias_version(name, alias)
    _say(f"@{alias}: {'moved to' if moved else 'stays at'} version {champion.version if champion else None} ({reason})")
    url = ui_url(r.uri, f"models/{name}/versions/{mv.version}")
    if url:
        _say(f"open version {mv.version} in the MLflow UI: {url}")
    return {
        "ui_url": url,
        "model": name,
        "version": int(mv.version),
        "registered": registered,
        "alias": alias,
        "champion_version": int(champion.version) if champion else None,
        "alias_moved": moved,
        "reason": reason,
        "metric": metric,
        "mode": mode,
        "value": value,
        "champion_value_before": champ_value,
        "configuration": config["params"],
        "configuration_mean": config["mean"],
        "configuration_std": config["std"],
        "configuration_seeds": len(config["values"]),
        "refused": refused,
        "sweep": sweep,
        "source_run_id": rid,
        "trial": run.info.run_name,
        "tracking_uri": redact(r.uri),
        "model_uri": f"models:/{name}@{alias}",
        **(
            {"export_check": check["check"], "export_max_abs_err_onnx": check["max_abs_err_policy_onnx"]}
            if check
            else {}
        ),
        **({"sim2sim": evaluation} if evaluation else {}),
        **({"sim2sim_warning": evaluation_warning} if evaluation_warning else {}),
    }


def _evaluate_version(r, mv, export_dir: Path, tmp: Path, video: bool = True) -> tuple[dict, str | None]:
    """sim2sim of a new version's export (:func:`sweeps.sim2sim.evaluate_export`), logged to the
    version (``Registry.log_evaluation``: its run's artifacts, its tags, the GIF in its description;
    ``video`` False: the numbers only). Returns (its numbers and the GIF's artifact path, a warning
    or None); never raises."""
    from sweeps.sim2sim import evaluate_export
    from tracking import TrackingError
    from tracking.registry import SIM2SIM_NUMBERS

    gif = tmp / f"sim2sim_v{mv.version}.gif" if video else None
    _say(
        f"sim2sim of version {mv.version} in its evaluation model{', with a GIF of its episodes' if video else ''} ..."
    )
    res, why = evaluate_export(export_dir, gif)
    out: dict = {}
    if res is not None:
        res.pop("video", None)  # the temporary file: the logged artifact remains
        res["policy"] = f"models:/{mv.name}/{mv.version}"
        if why is None and gif is not None:
            res["video_artifact"] = f"sim2sim/v{mv.version}/{gif.name}"
        try:
            r.log_evaluation(mv, res, [gif] if why is None and gif is not None else [])
            out = {k: res[k] for k in (*SIM2SIM_NUMBERS, "video_artifact", "video_s") if k in res}
        except TrackingError as e:
            why = f"the store did not take its evaluation ({str(e).splitlines()[0][:200]})"
    if why:
        _say(
            f"warning: no GIF of version {mv.version} ({why}); the version is registered; render it later with "
            f"MUJOCO_GL=egl python -m sweeps.sim2sim policy=models:/{mv.name}/{mv.version}"
        )
    elif out:
        _say(
            f"sim2sim of version {mv.version}: fall_rate {out['fall_rate']:.3g}, score {out['score']:.3g}"
            + (
                f"; its GIF ({out['video_s']:g} s) is on the version's page"
                if "video_artifact" in out
                else "; no GIF (video=0)"
            )
        )
    return out, why


def _champion_rule(r, name, alias, mv, metric, mode, value, force) -> tuple[bool, str, float | None]:
    """Move ``alias`` to ``mv`` if it is strictly better than the current holder (or ``force``);
    never to a version whose export check did not pass. Returns (moved, reason, champion's value)."""
    from tracking import registry as reg

    if mv.tags.get("export.check") != "passed":
        return False, f"version {mv.version} has no passed export check", None
    cur = r.alias_version(name, alias)
    if cur is None:
        r.set_alias(name, mv.version, alias)
        return True, f"{name} had no {alias}", None
    if str(cur.version) == str(mv.version):
        return False, f"version {mv.version} already is the {alias}", value
    if mv.tags.get("untrained") and not cur.tags.get("untrained"):  # force=1 cannot do this either
        return (
            False,
            (
                f"version {mv.version} falls in every evaluation episode and the {alias} (version {cur.version}) "
                "does not"
            ),
            None,
        )
    champ = None
    if cur.tags.get("promote.metric") == metric:
        champ = float(cur.tags["promote.value"])
    elif cur.tags.get("source_run_id"):  # promoted by another metric: read it from its run
        champ = r.run_metric(cur.tags["source_run_id"], metric)
    if force:
        r.set_alias(name, mv.version, alias)
        return True, f"force=1 (the {alias} was version {cur.version}, {metric} = {champ})", champ
    if champ is None:
        return (
            False,
            f"the {alias} (version {cur.version}) has no value of {metric} to compare with; force=1 moves it",
            None,
        )
    if reg.better(value, champ, mode):
        r.set_alias(name, mv.version, alias)
        return True, f"{metric} {value:.5g} beats the {alias} version {cur.version} ({champ:.5g}, {mode})", champ
    return (
        False,
        (
            f"{metric} {value:.5g} does not beat the {alias} version {cur.version} ({champ:.5g}, {mode}); "
            "force=1 moves it anyway"
        ),
        champ,
    )


def main(argv=None) -> int:
    args = parse_kv(
        sys.argv[1:] if argv is None else argv, {"sweep", "metric", "mode", "force", "storage", "uri", "video"}, set()
    )
    if args is None:
        print(USAGE, file=sys.stderr)
        return 2
    from isaacgymenvs.export import ExportError
    from isaacgymenvs.learning.learner import CheckpointError
    from tracking import TrackingError

    return run_json(
        lambda: promote(
            args.get("sweep") or "default",
            args.get("metric") or None,
            args.get("mode") or None,
            _flag(args.get("force", "")),
            args.get("storage") or None,
            args.get("uri") or None,
            video=args.get("video", "1").lower() not in ("0", "no", "false"),
        ),
        (PromoteError, TrackingError, ExportError, CheckpointError, FileNotFoundError),
    )


if __name__ == "__main__":
    sys.exit(main())
