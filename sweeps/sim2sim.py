"""sim2sim of a local export or of a registered model version (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``).

    python -m sweeps.sim2sim policy=EXPORT_DIR|models:/HumanoidAMP-policy@champion [episodes=10]
                             [motion=CLIP] [video=out.gif|none] [seed=0] [model=eval|train]
    amp-sim2sim ...  (the same)

A local export runs as ``python -m isaacgymenvs.sim2sim`` runs it. A registered version's export
folder is downloaded from the MLflow store (``MLFLOW_TRACKING_URI``, else the embedded one) into a
temporary folder and run the same way; the result JSON and the video (rendered by default,
``video=none`` skips it) are logged to the version's run under ``sim2sim/v<version>/``, and the
numbers become ``sim2sim.*`` tags of the version; the GIF becomes the version's tag ``sim2sim.video``
and the image at the end of its description (the version's page in the MLflow UI shows it). It sits
above ``tracking`` (which downloads and logs) and ``isaacgymenvs.sim2sim`` (which runs the policy
without torch).

Two more callers render an export in a child process (:func:`evaluate_export`): ``make promote``,
for each version it registers, and the end of a GPU sweep (:func:`best_trial_videos`), for the best
trial of each configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from isaacgymenvs import sim2sim

USAGE = (
    "usage: python -m sweeps.sim2sim policy=EXPORT_DIR|models:/NAME@ALIAS [episodes=N] [motion=CLIP] "
    "[video=out.gif|none] [seed=S] [model=eval|train]"
)
#: The evaluation that promotion and the end of a GPU sweep run: episodes, seed, and a bound on its process
EVAL_EPISODES, EVAL_SEED, EVAL_TIMEOUT_S = 10, 0, 900


def run_registered(
    model_uri: str,
    episodes: int = 10,
    motion: str | None = None,
    video: str | None = "",
    seed: int = 0,
    tracking_uri: str | None = None,
    model: str = "eval",
) -> dict:
    """:func:`isaacgymenvs.sim2sim.run` on a registered model version; ``video=""``: rendered into the
    temporary folder and logged; None: none."""
    from tracking import resolve_uri
    from tracking.registry import Registry, parse_models_uri
    from tracking.store import redact

    parse_models_uri(model_uri)  # a malformed URI is an error before any store is opened
    reg = Registry(resolve_uri(tracking_uri or ""))
    mv = reg.resolve(model_uri)
    with tempfile.TemporaryDirectory(prefix="sim2sim-") as tmp:
        policy_dir = reg.download_policy(mv, Path(tmp) / "model")
        out_video = (str(Path(tmp) / f"sim2sim_v{mv.version}.gif") if video == "" else video) or None
        res = sim2sim.run(policy_dir, episodes, motion, out_video, seed, model=model)
        res.update(policy=model_uri, model=mv.name, model_version=int(mv.version), tracking_uri=redact(reg.uri))
        if out_video:
            res["video_artifact"] = f"sim2sim/v{mv.version}/{Path(out_video).name}"
            if video == "":
                res.pop("video", None)  # the temporary file: only the logged artifact remains
        res["logged_to_run"] = reg.log_evaluation(mv, res, [out_video] if out_video else [])
    return res


def _child_sim2sim(
    policy_dir, gif, episodes: int, seed: int, gl: str | None, timeout_s: float
) -> tuple[dict | None, str]:
    """``python -m isaacgymenvs.sim2sim`` in a child process with ``MUJOCO_GL=gl`` (None: unset):
    (its JSON result, "") or (None, its one-line error)."""
    import isaacgymenvs

    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    if gl:
        env["MUJOCO_GL"] = gl
    root = str(Path(isaacgymenvs.__file__).resolve().parents[1])  # the child imports this checkout's package
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "isaacgymenvs.sim2sim", f"policy={policy_dir}", f"episodes={episodes}", f"seed={seed}"]
    cmd.append(f"video={gif}" if gif else "video=none")
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"sim2sim took more than {timeout_s:.0f} s"
    if r.returncode == 0:
        try:  # the JSON object is what it prints last (a library may print before it)
            return json.loads(r.stdout[r.stdout.find("\n{") + 1 if not r.stdout.startswith("{") else 0 :]), ""
        except ValueError:
            return None, f"sim2sim printed no JSON result: {r.stdout.strip()[-300:]!r}"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    last = lines[-1].removeprefix("error: ") if lines else ""
    return None, (last or f"sim2sim exited with {r.returncode}")[:500]


def evaluate_export(
    policy_dir, gif, episodes: int = EVAL_EPISODES, seed: int = EVAL_SEED, timeout_s: float = EVAL_TIMEOUT_S
) -> tuple[dict | None, str | None]:
    """:func:`isaacgymenvs.sim2sim.run` of an export folder in the character's evaluation model, in a
    child process that renders ``gif`` with the offscreen OpenGL backend
    :func:`isaacgymenvs.video.offscreen_gl` picks (``MUJOCO_GL`` is read when mujoco is imported,
    and a failed OpenGL context can abort a process: the caller's is never at risk). ``gif=None``:
    the numbers only, nothing rendered (``make promote VIDEO=0``).

    Returns ``(result, None)``; ``(result without a video, why)`` when it cannot render (no
    display and no offscreen library: ``why`` names the package); ``(None, why)`` when the
    evaluation itself failed."""
    if gif is None:
        res, err = _child_sim2sim(policy_dir, None, episodes, seed, None, timeout_s)
        return res, (None if res is not None else err)
    from isaacgymenvs.video import RENDER_ERROR, offscreen_gl

    gl, why = offscreen_gl()
    if why is None:
        res, err = _child_sim2sim(policy_dir, gif, episodes, seed, gl, timeout_s)
        if res is not None:
            return res, None
        if RENDER_ERROR not in err:
            return None, err
        why = err
    res, err = _child_sim2sim(policy_dir, None, episodes, seed, None, timeout_s)  # the numbers without a video
    return res, (why if res is not None else f"{why}; the evaluation without a video failed too: {err}")


def is_gpu_sweep(spec: dict) -> bool:
    return "sim=mujoco_warp" in [str(o).replace(" ", "") for o in spec.get("overrides") or []]


def best_trial_videos(spec: dict, result: dict, uri: str, say=print) -> list[dict]:
    """At the end of a GPU sweep (``sim=mujoco_warp`` among its overrides): for each ranked
    configuration (its trials ended, by their budget or by the scheduler), its best trial's last
    checkpoint (``checkpoints/latest.pth`` of its run) exported and run by :func:`evaluate_export`
    (MuJoCo C on the CPU, the character's evaluation model), the GIF and the numbers logged to that
    trial's run (``sim2sim/latest/``, tag ``sim2sim.video``, the image in its description). A trial
    that cannot be exported or evaluated is one line; nothing here fails the sweep.
    Returns one entry per configuration: run id, trial, video artifact path or the reason there is none.

    Off for CPU sweeps: on the 2-core CPU machine one 10 s GIF takes 40-80 s (software OpenGL,
    0.25-0.5 s a 480x360 frame with shadows, 150 frames, measured under the load of other jobs),
    so the default sweep's 4 configurations would add 3-5 minutes to its 9-minute budget; there
    ``make promote`` renders the one that is registered. A GPU machine renders with EGL on the GPU."""
    if not is_gpu_sweep(spec) or result.get("interrupted"):
        return []
    from isaacgymenvs.export import ExportError, export
    from isaacgymenvs.learning.learner import CheckpointError
    from tracking import TrackingError
    from tracking.registry import MissingCheckpointError, Registry

    name = spec["name"]
    todo = [c for c in result.get("configurations") or [] if c.get("best_mlflow_run_id")]
    if not todo:
        return []
    try:
        reg = Registry(uri)
    except TrackingError as e:
        say(f"sweep {name}: no sim2sim GIFs of the best trials: {str(e).splitlines()[0][:300]}")
        return []
    done = []
    for c in todo:
        rid = c["best_mlflow_run_id"]
        entry = {"run_id": rid, "trial": c.get("best_trial"), "video": None}
        try:
            with tempfile.TemporaryDirectory(prefix="sweep-video-") as tmp:
                run = reg._call(reg.client.get_run, rid)
                ckpt, art = reg.download_checkpoint(run, Path(tmp) / "ckpt", ("checkpoints/latest.pth",))
                out = Path(tmp) / "export"
                export(ckpt, out)
                label = run.info.run_name or rid
                res, why = evaluate_export(out, Path(tmp) / f"{label}.gif")
                if res is not None:
                    res.update(source_checkpoint=f"runs:/{rid}/{art}")
                    res.pop("video", None)  # the temporary file: the logged artifact remains
                    res.pop("policy", None)
                    entry["video"] = reg.log_run_evaluation(rid, res, [Path(tmp) / f"{label}.gif"] if not why else [])
                entry["reason"] = why
        except (ExportError, CheckpointError, MissingCheckpointError, TrackingError, OSError, ValueError) as e:
            entry["reason"] = str(e).splitlines()[0][:300]
        done.append(entry)
        say(
            f"sweep {name}: sim2sim GIF of trial {entry['trial']} logged to its run ({entry['video']})"
            if entry["video"]
            else f"sweep {name}: no sim2sim GIF of trial {entry['trial']}: {entry['reason']}"
        )
    return done


def main(argv=None) -> int:
    from isaacgymenvs.utils.cli import parse_kv, run_json
    from isaacgymenvs.video import RenderUnavailableError
    from tracking import TrackingError

    argv = sys.argv[1:] if argv is None else argv
    args = parse_kv(argv, {"policy", "episodes", "motion", "video", "seed", "model"}, {"policy"})
    if args is None:
        print(USAGE, file=sys.stderr)
        return 2
    if not args["policy"].startswith("models:/"):
        return sim2sim.main(argv)
    video = args.get("video")
    if video is not None and video.strip().lower() in ("", "none", "0", "false", "no"):
        video = None

    def go() -> dict:
        return run_registered(
            args["policy"],
            int(args.get("episodes", 10)),
            args.get("motion"),
            "" if "video" not in args else video,
            int(args.get("seed", 0)),
            model=args.get("model", "eval"),
        )

    return run_json(go, (FileNotFoundError, ValueError, RenderUnavailableError, TrackingError))


if __name__ == "__main__":
    sys.exit(main())
