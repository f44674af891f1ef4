"""Is a clip safe to train on? Joint limits, joint speeds, and every reference state stepped in MuJoCo.

``python -m isaacgymenvs.motion check CLIP`` runs these on top of its kinematic checks:

* **limits**: the largest excess of any joint past its MJCF range (the worst joint, frame and
  radians), and how many frame x joint entries exceed ``limit_tol``. Mocap has genuine small
  excursions (the dance's neck goes 0.11 rad past its range, IsaacGymEnvs' hop 0.22 rad); a wrong
  Euler branch or a 2 pi offset is radians, so the default tolerance (0.3 rad) tells them apart.
* **speeds**: the fastest hinge of the clip's own rates (rad/s); above ``max_joint_speed`` fails.
* **step**: every frame is written into the simulator as a reference-state reset does (the same
  ground correction as training), the reference angles are held as PD targets for one control
  step, and the largest joint speed afterwards is reported with MuJoCo's instability warnings. A
  state the physics cannot take (deep penetration, a joint far past its limit) shows here as a
  speed of tens or hundreds of rad/s, or as a warning; above ``max_step_speed`` fails.

It also holds the command line ``python -m isaacgymenvs.motion {info,check,obs,convert,retarget}``
(:func:`main`; ``motion/__main__.py`` forwards to it): its commands need the task's model
(``characters``, ``task_registry``), the simulator and the task (``obs``), which the ``motion``
package does not import. The kinematic work of each command is :mod:`isaacgymenvs.motion.clip_tools`.

Imports: ``motion``, ``sim`` (``actuators``; ``make_backend`` for ``obs``), ``characters``,
``task_registry`` and ``tasks`` (``obs``); it sits above all of them (the CLI and tests call it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import mujoco
import numpy as np

from isaacgymenvs.motion.joint_angles import limit_excess
from isaacgymenvs.sim.actuators import actuator_dof_index

#: Radians a joint may lie past its range before ``check`` fails (genuine mocap excursions pass).
LIMIT_TOL = 0.3
#: Largest hinge rate of a clip (rad/s) that ``check`` accepts.
MAX_JOINT_SPEED = 30.0
#: Largest joint speed (rad/s) one control step after a reference state was written.
MAX_STEP_SPEED = 30.0

_BAD_STATE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQPOS,
)


@dataclass
class Worst:
    """The largest value of a check, where it happened, and the bound it is held to."""

    value: float
    frame: int
    joint: str
    bound: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.value) and self.value <= self.bound)

    def as_dict(self, unit: str) -> dict:
        return {
            "max": round(float(self.value), 6),
            "unit": unit,
            "frame": self.frame,
            "joint": self.joint,
            "bound": self.bound,
            "ok": self.ok,
        }


def _worst(values: np.ndarray, dof_names, bound: float) -> Worst:
    """``values [T, D]``: the largest entry, with its frame and joint."""
    if values.size == 0:
        return Worst(0.0, 0, "", bound)
    v = np.where(np.isfinite(values), values, np.inf)
    t, d = np.unravel_index(int(np.argmax(v)), v.shape)
    return Worst(float(v[t, d]), int(t), dof_names[d], bound)


def limit_report(dof_pos: np.ndarray, limits: np.ndarray, dof_names, tol: float = LIMIT_TOL) -> dict:
    """The worst excess past the joint ranges and the count of entries past ``tol``."""
    ex = limit_excess(dof_pos, np.asarray(limits, dtype=np.float64))
    out = _worst(ex, dof_names, tol).as_dict("rad")
    out["entries_past_tol"] = int((ex > tol).sum())
    out["entries_past_range"] = int((ex > 1e-6).sum())
    return out


def speed_report(dof_vel: np.ndarray, dof_names, bound: float = MAX_JOINT_SPEED) -> dict:
    """The fastest hinge rate of the clip."""
    return _worst(np.abs(dof_vel), dof_names, bound).as_dict("rad/s")


def step_report(
    model: mujoco.MjModel,
    qpos: np.ndarray,
    qvel: np.ndarray,
    control_dt: float,
    dof_names,
    bound: float = MAX_STEP_SPEED,
) -> dict:
    """Write each state (``qpos [T, nq]``, ``qvel [T, nv]``: free joint velocity in MuJoCo's
    convention) and hold its joint angles as PD targets for one control step of ``control_dt``;
    report the largest joint speed afterwards and the frames MuJoCo flagged as unstable."""
    substeps = max(1, round(control_dt / model.opt.timestep))
    act_dof = actuator_dof_index(model)
    data = mujoco.MjData(model)
    speeds = np.zeros((len(qpos), model.nv - 6))
    flagged = []
    for t in range(len(qpos)):
        mujoco.mj_resetData(model, data)
        data.qpos[:] = qpos[t]
        data.qvel[:] = qvel[t]
        data.ctrl[:] = qpos[t, 7:][act_dof]
        mujoco.mj_step(model, data, nstep=substeps)
        if any(data.warning[w].number for w in _BAD_STATE_WARNINGS):
            flagged.append(t)
            speeds[t] = np.inf
        else:
            speeds[t] = np.abs(data.qvel[6:])
    out = _worst(speeds, dof_names, bound).as_dict("rad/s")
    out.update(control_dt_s=substeps * model.opt.timestep, unstable_frames=flagged[:20], unstable_count=len(flagged))
    out["ok"] = out["ok"] and not flagged
    return out


def clip_states(clip) -> tuple[np.ndarray, np.ndarray]:
    """``qpos [T, nq]`` and ``qvel [T, nv]`` of a :class:`MotionClip`, as a reset writes them
    (root angular velocity turned into the free joint's body frame)."""
    q = clip.root_quat_wxyz / np.linalg.norm(clip.root_quat_wxyz, axis=-1, keepdims=True)
    w, u = q[:, :1], -q[:, 1:]  # conjugate: world -> body
    v = clip.root_ang_vel
    t = 2.0 * np.cross(u, v)
    ang_b = v + w * t + np.cross(u, t)
    return clip.qpos(), np.concatenate((clip.root_lin_vel, ang_b, clip.dof_vel), axis=1)


def check_clip(
    clip,
    model: mujoco.MjModel,
    skeleton,
    control_dt: float,
    limit_tol: float = LIMIT_TOL,
    max_joint_speed: float = MAX_JOINT_SPEED,
    max_step_speed: float = MAX_STEP_SPEED,
) -> dict:
    """The three reports of the module docstring for a clip in the model's coordinates."""
    names = list(skeleton.dof_names)
    qpos, qvel = clip_states(clip)
    return {
        "limits": limit_report(clip.dof_pos, np.asarray(skeleton.dof_limits), names, limit_tol),
        "speeds": speed_report(clip.dof_vel, names, max_joint_speed),
        "step": step_report(model, qpos, qvel, control_dt, names, max_step_speed),
    }


def failure_line(path, report: dict) -> str | None:
    """One line naming the first failed check, the joint, the frame and the amount; None if all pass."""
    what = {
        "limits": "past its range by",
        "speeds": "moves at",
        "step": "reaches, one control step after the reference state,",
    }
    for key in ("limits", "speeds", "step"):
        r = report[key]
        if not r["ok"]:
            if key == "step" and r.get("unstable_count"):
                return (
                    f"{path}: {r['unstable_count']} reference states make MuJoCo unstable (first at frame "
                    f"{r['unstable_frames'][0]}); the clip is not usable as it is"
                )
            return (
                f"{path}: joint {r['joint']} {what[key]} {r['max']:.3g} {r['unit']} at frame {r['frame']} "
                f"(bound {r['bound']:g}); see README 'Motion clips'"
            )
    return None


# ---------------------------------------------------------------------------------------
# The command line: python -m isaacgymenvs.motion
# ---------------------------------------------------------------------------------------
# Every command prints JSON on stdout. Errors are one line on stderr naming the file and the
# problem, with exit code 2. ``check`` exits 1 when the clip fails a check, with one line on stderr
# naming the check, the worst joint, the frame and the amount (:func:`failure_line`).
#
# A ``.csv`` clip is a Unitree G1 clip (``unitree_g1/motions/FORMAT.md``): ``info`` and ``check``
# read it with :mod:`isaacgymenvs.motion.g1` (fps from the motion manifest or ``--fps``).
# ``retarget SOURCE --robot g1 --out OUT.csv`` turns an AMP humanoid clip into a G1 clip
# (:mod:`isaacgymenvs.motion.retarget`).

CLI_DESCRIPTION = (
    "``python -m isaacgymenvs.motion {info,check,obs,convert,retarget} CLIP``: inspect, convert and retarget clips."
)


def _model_and_skeleton(character: str):
    from isaacgymenvs import characters
    from isaacgymenvs.motion.skeleton import skeleton_from_model

    model = characters.load_model(character)
    return model, skeleton_from_model(model)


def _physics_checks(clip, task: str, args) -> dict:
    """Limits, speeds and the one-step simulation of every reference state (:func:`check_clip`)."""
    from isaacgymenvs.motion.skeleton import skeleton_from_model
    from isaacgymenvs.task_registry import task_control_dt, task_model

    model = task_model(task)
    if getattr(args, "timestep", None):  # the one-step check at another physics timestep
        model.opt.timestep = float(args.timestep)
    return check_clip(
        clip,
        model,
        skeleton_from_model(model),
        task_control_dt(task),
        args.limit_tol,
        args.max_joint_speed,
        args.max_step_speed,
    )


def cmd_info(args) -> dict:
    from isaacgymenvs.motion import clip_tools

    if clip_tools.is_g1_csv(args.clip):
        return clip_tools.g1_info(args.clip, args.fps)
    from isaacgymenvs.motion.poselib import load_skeleton_motion

    sm = load_skeleton_motion(args.clip, trust=args.trust)
    model, skeleton = _model_and_skeleton(args.character)
    return clip_tools.poselib_info(args.clip, sm, model, skeleton)


def cmd_check(args) -> tuple[dict, int]:
    from isaacgymenvs.motion import clip_tools
    from isaacgymenvs.task_registry import task_for_clip

    if clip_tools.is_g1_csv(args.clip):
        out, _ = clip_tools.g1_check(args.clip, args.fps, args.tol, args.ground_tol)
        from isaacgymenvs.motion import g1

        out.update(_physics_checks(g1.load_g1_csv(args.clip, fps=args.fps), task_for_clip(args.clip).name, args))
        out["ok"] = bool(out["ok"] and all(out[k]["ok"] for k in ("limits", "speeds", "step")))
        return out, 0 if out["ok"] else 1
    from isaacgymenvs.motion.clip import clip_from_skeleton_motion
    from isaacgymenvs.motion.poselib import load_skeleton_motion

    sm = load_skeleton_motion(args.clip, trust=args.trust)
    model, skeleton = _model_and_skeleton(args.character)
    clip = clip_from_skeleton_motion(sm, skeleton, model, ground="none")
    fk = clip_tools.poselib_fk_errors(sm, clip, model, skeleton)
    # the reference states as training writes them: with the task's ground correction
    grounded = clip_from_skeleton_motion(sm, skeleton, model, ground=args.ground) if args.ground != "none" else clip
    physics = _physics_checks(grounded, task_for_clip(args.clip).name, args)
    out = {
        "file": str(args.clip),
        "frames": clip.num_frames,
        "fps": clip.fps,
        **fk,
        "joint_limit_violations": clip.joint_limit_violations,
        "tol_m": args.tol,
        **physics,
    }
    out["ok"] = bool(fk["max_err_m"] <= args.tol and all(physics[k]["ok"] for k in ("limits", "speeds", "step")))
    return out, 0 if out["ok"] else 1


def cmd_obs(args) -> dict:
    from isaacgymenvs.motion import clip_tools

    clip_tools.reject_csv(args.clip, "obs")
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
    sim.write_state(
        torch.tensor([0]), st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel
    )
    obs = task._sim_obs()[0]
    return {
        "file": str(args.clip),
        "frame": args.frame,
        "time_s": args.frame / clip.fps,
        "layout": [{"name": n, "size": s} for n, s in task.obs_layout],
        "obs": [round(float(x), 7) for x in obs],
    }


def cmd_convert(args) -> dict:
    from isaacgymenvs.motion import clip_tools

    return clip_tools.convert_clip(args.clip, args.out, args.bundled, args.trust)


def cmd_retarget(args) -> dict:
    from isaacgymenvs.motion import clip_tools

    return clip_tools.retarget_clip(
        args.clip,
        args.out,
        args.robot,
        args.trust,
        dedup=not args.no_dedup,
        foot_clearance=not args.no_foot_clearance,
        min_distance=args.min_distance,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m isaacgymenvs.motion", description=CLI_DESCRIPTION)
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, help_):
        s = sub.add_parser(name, help=help_)
        s.add_argument("clip", help="a .npy (poselib) or .npz (converted) AMP humanoid clip, or a .csv G1 clip")
        s.add_argument(
            "--trust",
            action="store_true",
            help="allow loading a .npy pickle whose checksum is not a pinned upstream clip",
        )
        s.add_argument("--character", default="amp_humanoid")
        return s

    i = add("info", "frames, fps, duration, joints, root height range")
    i.add_argument("--fps", type=float, help="G1 CSV: frame rate, when the file is not in the motion manifest")
    c = add(
        "check",
        "compare MuJoCo body positions with the clip's own FK (G1 CSV: with the MotionLib's torch FK, plus "
        "ground, manifest); joint limits, joint speeds, and every reference state stepped in MuJoCo",
    )
    c.add_argument("--tol", type=float, default=0.01, help="largest allowed body position error (m)")
    c.add_argument(
        "--limit-tol",
        type=float,
        default=LIMIT_TOL,
        help="radians a joint may lie past its range (genuine mocap excursions pass; branch errors are radians)",
    )
    c.add_argument(
        "--max-joint-speed", type=float, default=MAX_JOINT_SPEED, help="largest hinge rate of the clip (rad/s)"
    )
    c.add_argument(
        "--max-step-speed",
        type=float,
        default=MAX_STEP_SPEED,
        help="largest joint speed one control step after a reference state is written (rad/s)",
    )
    c.add_argument(
        "--ground",
        choices=("rolling_min", "none"),
        default="rolling_min",
        help="ground correction of the reference states stepped in the simulator (training's default)",
    )
    c.add_argument(
        "--timestep",
        type=float,
        help="physics timestep (s) of the one-step simulation (default: the task's, task.sim.mujoco_timestep)",
    )
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
    r.add_argument(
        "--no-dedup", action="store_true", help="keep every frame of a 60 fps clip that holds each pose twice"
    )
    r.add_argument(
        "--no-foot-clearance",
        action="store_true",
        help="scale the ankle heights instead of keeping the source sole clearance",
    )
    r.add_argument(
        "--min-distance", type=float, default=0.01, help="self-collision distance kept by the IK (m); 0: off"
    )
    return p


def main(argv=None) -> int:
    """Entry point of ``python -m isaacgymenvs.motion``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        from isaacgymenvs.task_registry import find_clip

        clip, args.bundled = find_clip(args.clip)
        args.clip = str(clip)
        if args.cmd == "check":
            out, code = cmd_check(args)
            if code:
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
