"""sim2sim of a local export or of a registered model version (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``).

    python -m sweeps.sim2sim policy=EXPORT_DIR|models:/HumanoidAMP-policy@champion [episodes=10]
                             [motion=CLIP] [video=out.gif|none] [seed=0] [model=eval|train]
    amp-sim2sim ...  (the same)

A local export runs as ``python -m isaacgymenvs.sim2sim`` runs it. A registered version's export
folder is downloaded from the MLflow store (``MLFLOW_TRACKING_URI``, else the embedded one) into a
temporary folder and run the same way; the result JSON and the video (rendered by default,
``video=none`` skips it) are logged to the version's run under ``sim2sim/v<version>/``, and the
numbers become ``sim2sim.*`` tags of the version. It sits above ``tracking`` (which downloads and
logs) and ``isaacgymenvs.sim2sim`` (which runs the policy without torch).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from isaacgymenvs import sim2sim

USAGE = (
    "usage: python -m sweeps.sim2sim policy=EXPORT_DIR|models:/NAME@ALIAS [episodes=N] [motion=CLIP] "
    "[video=out.gif|none] [seed=S] [model=eval|train]"
)


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
