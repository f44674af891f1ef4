"""``python -m isaacgymenvs.motion {info,check,obs,convert} CLIP``: inspect and convert reference clips.

Every command prints JSON on stdout. Errors are one line on stderr naming the file and the
problem, with exit code 2 (``check`` exits 1 when the clip is over tolerance).
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


def cmd_info(args) -> dict:
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


def cmd_check(args) -> tuple[dict, int]:
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
    out = {
        "file": str(args.clip),
        "frames": clip.num_frames,
        "max_err_m": float(errs.max()),
        "mean_err_m": float(errs.mean()),
        "worst_frame": int(worst[0]),
        "worst_body": skeleton.body_names[worst[1]],
        "joint_limit_violations": clip.joint_limit_violations,
        "tol_m": args.tol,
        "ok": bool(errs.max() <= args.tol),
    }
    return out, 0 if out["ok"] else 1


def cmd_obs(args) -> dict:
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
    from isaacgymenvs.motion.poselib import load_skeleton_motion, save_npz

    sm = load_skeleton_motion(args.clip, trust=args.trust)
    out = Path(args.out) if args.out else Path(args.clip).with_suffix(".npz")
    if out.resolve() == Path(args.clip).resolve():
        raise ValueError(f"{args.clip}: refusing to overwrite the source clip; pass --out")
    save_npz(sm, out)
    return {"file": str(args.clip), "out": str(out), "frames": sm.num_frames, "fps": sm.fps}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m isaacgymenvs.motion", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, help_):
        s = sub.add_parser(name, help=help_)
        s.add_argument("clip", help="a .npy (poselib) or .npz (converted) clip")
        s.add_argument("--trust", action="store_true", help="allow loading a .npy pickle whose checksum is not a pinned upstream clip")
        s.add_argument("--character", default="amp_humanoid")
        return s

    add("info", "frames, fps, duration, joints, root height range")
    c = add("check", "compare MuJoCo body positions with the clip's own forward kinematics")
    c.add_argument("--tol", type=float, default=0.01, help="largest allowed body position error (m)")
    o = add("obs", "the task observation of a reference state written into the simulator")
    o.add_argument("--frame", type=int, required=True)
    o.add_argument("--ground", choices=("rolling_min", "none"), default="rolling_min")
    v = add("convert", "write a pickle-free .npz")
    v.add_argument("--out", help="output .npz (default: the clip's name with .npz)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "check":
            out, code = cmd_check(args)
        else:
            out, code = {"info": cmd_info, "obs": cmd_obs, "convert": cmd_convert}[args.cmd](args), 0
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=None if args.cmd == "obs" else 2))
    return code


if __name__ == "__main__":
    sys.exit(main())
