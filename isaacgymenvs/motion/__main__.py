"""``python -m isaacgymenvs.motion {info,check,obs,convert,retarget} CLIP``: inspect, convert and retarget clips.

Every command prints JSON on stdout. Errors are one line on stderr naming the file and the
problem, with exit code 2. ``check`` exits 1 when the clip fails a check, with one line on stderr
naming the check, the worst joint, the frame and the amount (``isaacgymenvs.motion_check``).

A ``.csv`` clip is a Unitree G1 clip (``unitree_g1/motions/FORMAT.md``): ``info`` and ``check``
read it with :mod:`isaacgymenvs.motion.g1` (fps from the motion manifest or ``--fps``).
``retarget SOURCE --robot g1 --out OUT.csv`` turns an AMP humanoid clip into a G1 clip
(:mod:`isaacgymenvs.motion.retarget`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _model_and_skeleton(character: str):
    from isaacgymenvs import characters
    from isaacgymenvs.motion.skeleton import skeleton_from_model

    model = characters.load_model(character)
    return model, skeleton_from_model(model)


def _is_g1_csv(args) -> bool:
    return Path(args.clip).suffix.lower() == ".csv"


def _root_travel(root_pos: np.ndarray) -> float:
    return float(np.linalg.norm(root_pos[-1, :2] - root_pos[0, :2]))


def g1_info(path, fps=None) -> dict:
    from isaacgymenvs.motion import g1

    clip = g1.load_g1_csv(path, fps=fps)
    _, source = g1.g1_csv_fps(path, fps)
    z = clip.root_pos[:, 2]
    return {
        "file": str(path),
        "robot": "g1",
        "frames": clip.num_frames,
        "fps": clip.fps,
        "fps_source": source,
        "duration_s": clip.duration_s,
        "quat_order_in_file": "xyzw",
        "model_dof_names": list(g1.G1_JOINT_NAMES),
        "root_height_range_m": [float(z.min()), float(z.max())],
        "root_travel_xy_m": _root_travel(clip.root_pos),
        "joint_limit_violations": clip.joint_limit_violations,
    }


def g1_check(path, fps=None, tol: float = 0.01, ground_tol: float = 0.02) -> tuple[dict, int]:
    """Check a G1 CSV: the file reads and validates (columns, order, NaN, unit quaternions), no
    joint outside its range, the torch FK the MotionLib uses reproduces MuJoCo's body positions
    (``fk_max_err_m`` <= ``tol``), the feet do not sink more than ``ground_tol`` into the floor,
    and, for a file in the motion manifest, frames/fps/sha256 match it."""
    import mujoco
    import torch

    from isaacgymenvs.motion import g1
    from isaacgymenvs.motion.skeleton import skeleton_from_model

    model = g1.load_g1_model()
    a = g1.read_g1_csv(path)
    clip = g1.load_g1_csv(path, fps=fps, model=model)
    _, fps_source = g1.g1_csv_fps(path, fps)
    skeleton = skeleton_from_model(model)
    pos, _ = skeleton.forward_kinematics(
        torch.tensor(clip.root_pos), torch.tensor(clip.root_quat_wxyz), torch.tensor(clip.dof_pos)
    )
    data = mujoco.MjData(model)
    errs = np.empty((clip.num_frames, skeleton.num_bodies))
    for t, q in enumerate(clip.qpos()):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        errs[t] = np.linalg.norm(data.xpos[1:] - pos[t].numpy(), axis=-1)
    worst = np.unravel_index(np.argmax(errs), errs.shape)
    sole = g1.foot_sole_heights(model, clip.qpos())
    qerr = float(np.max(np.abs(np.linalg.norm(a[:, 3:7], axis=1) - 1.0)))
    found = g1.manifest_entry(path)
    manifest = None
    if found is not None:
        key, entry = found
        manifest = {
            "key": key,
            "frames_match": entry.get("frames") == clip.num_frames,
            "fps_match": float(entry.get("fps", clip.fps)) == clip.fps,
            "sha256_match": entry.get("sha256") == g1._sha256(Path(path)),
        }
    checks = {
        "fk": bool(errs.max() <= tol),
        "joint_limits": clip.joint_limit_violations == 0,
        "quat_normalized": qerr < 1e-4,
        "ground": bool(sole.min() >= -ground_tol),
        "manifest": manifest is None or all(v for k, v in manifest.items() if k != "key"),
    }
    out = {
        "file": str(path),
        "robot": "g1",
        "frames": clip.num_frames,
        "fps": clip.fps,
        "fps_source": fps_source,
        "duration_s": clip.duration_s,
        "fk_max_err_m": float(errs.max()),
        "fk_worst_frame": int(worst[0]),
        "fk_worst_body": skeleton.body_names[worst[1]],
        "joint_limit_violations": clip.joint_limit_violations,
        "quat_norm_max_err": qerr,
        "lowest_sole_m": float(sole.min()),
        "max_joint_speed_rad_s": float(np.abs(clip.dof_vel).max()),
        "max_root_speed_m_s": float(np.linalg.norm(clip.root_lin_vel, axis=1).max()),
        "manifest": manifest,
        "checks": checks,
        "tol_m": tol,
        "ground_tol_m": ground_tol,
        "ok": all(checks.values()),
    }
    return out, 0 if out["ok"] else 1


def cmd_retarget(args) -> dict:
    from isaacgymenvs import assets
    from isaacgymenvs.motion import g1
    from isaacgymenvs.motion import retarget as rt
    from isaacgymenvs.motion.poselib import load_skeleton_motion

    if Path(args.out).suffix.lower() != ".csv":
        raise ValueError(f"{args.out}: --out must be a .csv file (the G1 clip format)")
    sm = load_skeleton_motion(args.clip, trust=args.trust)
    opts = rt.IKOptions(dedup=not args.no_dedup, foot_clearance=not args.no_foot_clearance, min_distance_m=args.min_distance)
    res = rt.retarget_to_g1(sm, opts=opts)
    out = g1.write_g1_csv(args.out, res.qpos[:, :3], res.qpos[:, 3:7], res.qpos[:, 7:])
    back = g1.load_g1_csv(out, fps=res.fps)  # what was written, at the written precision
    report = dict(res.report)
    report["joint_limit_violations"] = max(report["joint_limit_violations"], back.joint_limit_violations)
    shipped = rt.shipped_retarget_for(args.clip)
    comparison = None
    if shipped is not None:
        try:
            ship_path = assets.asset_path(shipped)
        except assets.AssetError:
            ship_path = None
        if ship_path is not None:
            other = g1.load_g1_csv(ship_path)
            comparison = rt.compare_with(back.qpos(), back.fps, other.qpos(), other.fps, shipped)
    return {"file": str(args.clip), "out": str(out), "robot": args.robot, **report, "shipped_comparison": comparison}


def cmd_info(args) -> dict:
    if _is_g1_csv(args):
        return g1_info(args.clip, args.fps)
    from isaacgymenvs.motion.clip import clip_from_skeleton_motion
    from isaacgymenvs.motion.poselib import load_skeleton_motion

    sm = load_skeleton_motion(args.clip, trust=args.trust)
    model, skeleton = _model_and_skeleton(args.character)
    clip = clip_from_skeleton_motion(sm, skeleton, model, ground="none")
    z = sm.root_translation[:, 2]
    return {
        "file": str(args.clip),
        "frames": sm.num_frames,
        "fps": sm.fps,
        "duration_s": sm.duration_s,
        "dtype": sm.source_dtype,
        "joint_names": sm.node_names,
        "model_dof_names": skeleton.dof_names,
        "root_height_range_m": [float(z.min()), float(z.max())],
        "root_travel_xy_m": float(np.linalg.norm(sm.root_translation[-1, :2] - sm.root_translation[0, :2])),
        "joint_limit_violations": clip.joint_limit_violations,
    }


def _physics_checks(clip, task: str, args) -> dict:
    """Limits, speeds and the one-step simulation of every reference state (motion_check)."""
    from isaacgymenvs import motion_check
    from isaacgymenvs.motion.skeleton import skeleton_from_model
    from isaacgymenvs.task_registry import task_control_dt, task_model

    model = task_model(task)
    return motion_check.check_clip(clip, model, skeleton_from_model(model), task_control_dt(task), args.limit_tol,
                                   args.max_joint_speed, args.max_step_speed)


def cmd_check(args) -> tuple[dict, int]:
    if _is_g1_csv(args):
        out, _ = g1_check(args.clip, args.fps, args.tol, args.ground_tol)
        from isaacgymenvs.motion import g1

        out.update(_physics_checks(g1.load_g1_csv(args.clip, fps=args.fps), "G1AMP", args))
        out["ok"] = bool(out["ok"] and all(out[k]["ok"] for k in ("limits", "speeds", "step")))
        return out, 0 if out["ok"] else 1
    import mujoco

    from isaacgymenvs.motion.clip import clip_from_skeleton_motion
    from isaacgymenvs.motion.poselib import load_skeleton_motion

    sm = load_skeleton_motion(args.clip, trust=args.trust)
    model, skeleton = _model_and_skeleton(args.character)
    clip = clip_from_skeleton_motion(sm, skeleton, model, ground="none")
    ref = sm.global_positions()
    order = [sm.node_names.index(n) for n in skeleton.body_names]
    data = mujoco.MjData(model)
    errs = np.empty((clip.num_frames, skeleton.num_bodies))
    for t, q in enumerate(clip.qpos()):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        errs[t] = np.linalg.norm(data.xpos[1:] - ref[t, order], axis=-1)
    worst = np.unravel_index(np.argmax(errs), errs.shape)
    # the reference states as training writes them: with the task's ground correction
    grounded = clip_from_skeleton_motion(sm, skeleton, model, ground=args.ground) if args.ground != "none" else clip
    physics = _physics_checks(grounded, "HumanoidAMP", args)
    out = {
        "file": str(args.clip),
        "frames": clip.num_frames,
        "fps": clip.fps,
        "max_err_m": float(errs.max()),
        "mean_err_m": float(errs.mean()),
        "worst_frame": int(worst[0]),
        "worst_body": skeleton.body_names[worst[1]],
        "joint_limit_violations": clip.joint_limit_violations,
        "tol_m": args.tol,
        **physics,
    }
    out["ok"] = bool(errs.max() <= args.tol and all(physics[k]["ok"] for k in ("limits", "speeds", "step")))
    return out, 0 if out["ok"] else 1


def _no_csv(args, what: str) -> None:
    if _is_g1_csv(args):
        raise ValueError(f"{args.clip}: `{what}` works on AMP humanoid clips (.npy/.npz), not on G1 CSVs")


def cmd_obs(args) -> dict:
    _no_csv(args, "obs")
    import torch

    from isaacgymenvs.motion.motion_lib import MotionLib
    from isaacgymenvs.sim import make_backend
    from isaacgymenvs.tasks.amp_task import AMPTask, AMPTaskConfig

    model, skeleton = _model_and_skeleton(args.character)
    lib = MotionLib.from_file(args.clip, skeleton, model, AMPTaskConfig.keyBodies, trust=args.trust, ground=args.ground)
    clip = lib.clips[0]
    if not 0 <= args.frame < clip.num_frames:
        raise ValueError(f"{args.clip}: --frame must lie in [0, {clip.num_frames - 1}], got {args.frame}")
    sim = make_backend("mujoco", model, 1, 1.0 / 30.0)
    task = AMPTask(AMPTaskConfig(numEnvs=1), sim, lib, skeleton)
    st = lib.get_motion_state(torch.zeros(1, dtype=torch.long), torch.tensor([args.frame / clip.fps]))
    sim.write_state(torch.tensor([0]), st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel)
    obs = task._sim_obs()[0]
    return {
        "file": str(args.clip),
        "frame": args.frame,
        "time_s": args.frame / clip.fps,
        "layout": [{"name": n, "size": s} for n, s in task.obs_layout],
        "obs": [round(float(x), 7) for x in obs],
    }


def cmd_convert(args) -> dict:
    _no_csv(args, "convert")
    from isaacgymenvs.motion.poselib import load_skeleton_motion, save_npz

    sm = load_skeleton_motion(args.clip, trust=args.trust)
    # a bundled clip converts into the working directory, not into the asset folder
    out = Path(args.out) if args.out else Path(Path(args.clip).name if args.bundled else args.clip).with_suffix(".npz")
    if out.resolve() == Path(args.clip).resolve():
        raise ValueError(f"{args.clip}: refusing to overwrite the source clip; pass --out")
    save_npz(sm, out)
    return {"file": str(args.clip), "out": str(out), "frames": sm.num_frames, "fps": sm.fps}


def build_parser() -> argparse.ArgumentParser:
    from isaacgymenvs import motion_check

    p = argparse.ArgumentParser(prog="python -m isaacgymenvs.motion", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, help_):
        s = sub.add_parser(name, help=help_)
        s.add_argument("clip", help="a .npy (poselib) or .npz (converted) AMP humanoid clip, or a .csv G1 clip")
        s.add_argument("--trust", action="store_true", help="allow loading a .npy pickle whose checksum is not a pinned upstream clip")
        s.add_argument("--character", default="amp_humanoid")
        return s

    i = add("info", "frames, fps, duration, joints, root height range")
    i.add_argument("--fps", type=float, help="G1 CSV: frame rate, when the file is not in the motion manifest")
    c = add("check", "compare MuJoCo body positions with the clip's own FK (G1 CSV: with the MotionLib's torch FK, plus "
                     "ground, manifest); joint limits, joint speeds, and every reference state stepped in MuJoCo")
    c.add_argument("--tol", type=float, default=0.01, help="largest allowed body position error (m)")
    c.add_argument("--limit-tol", type=float, default=motion_check.LIMIT_TOL,
                   help="radians a joint may lie past its range (genuine mocap excursions pass; branch errors are radians)")
    c.add_argument("--max-joint-speed", type=float, default=motion_check.MAX_JOINT_SPEED, help="largest hinge rate of the clip (rad/s)")
    c.add_argument("--max-step-speed", type=float, default=motion_check.MAX_STEP_SPEED,
                   help="largest joint speed one control step after a reference state is written (rad/s)")
    c.add_argument("--ground", choices=("rolling_min", "none"), default="rolling_min",
                   help="ground correction of the reference states stepped in the simulator (training's default)")
    c.add_argument("--fps", type=float, help="G1 CSV: frame rate, when the file is not in the motion manifest")
    c.add_argument("--ground-tol", type=float, default=0.02, help="G1 CSV: largest allowed foot depth below z = 0 (m)")
    o = add("obs", "the task observation of a reference state written into the simulator")
    o.add_argument("--frame", type=int, required=True)
    o.add_argument("--ground", choices=("rolling_min", "none"), default="rolling_min")
    v = add("convert", "write a pickle-free .npz")
    v.add_argument("--out", help="output .npz (default: the clip's name with .npz)")
    r = add("retarget", "retarget an AMP humanoid clip to a robot by keypoint IK; writes a CSV, prints quality JSON")
    r.add_argument("--robot", choices=("g1",), default="g1")
    r.add_argument("--out", required=True, help="output .csv (G1 CSV format, see unitree_g1/motions/FORMAT.md)")
    r.add_argument("--no-dedup", action="store_true", help="keep every frame of a 60 fps clip that holds each pose twice")
    r.add_argument("--no-foot-clearance", action="store_true",
                   help="scale the ankle heights instead of keeping the source sole clearance")
    r.add_argument("--min-distance", type=float, default=0.01, help="self-collision distance kept by the IK (m); 0: off")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from isaacgymenvs.task_registry import find_clip

        clip, args.bundled = find_clip(args.clip)
        args.clip = str(clip)
        if args.cmd == "check":
            out, code = cmd_check(args)
            if code:
                from isaacgymenvs.motion_check import failure_line

                line = failure_line(args.clip, out) if all(k in out for k in ("limits", "speeds", "step")) else None
                print(f"check failed: {line or str(args.clip) + ': see the JSON (fk, checks)'}", file=sys.stderr)
        else:
            cmds = {"info": cmd_info, "obs": cmd_obs, "convert": cmd_convert, "retarget": cmd_retarget}
            out, code = cmds[args.cmd](args), 0
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=None if args.cmd == "obs" else 2))
    return code


if __name__ == "__main__":
    sys.exit(main())
