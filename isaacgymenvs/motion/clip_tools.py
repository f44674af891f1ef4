"""The kinematic half of ``python -m isaacgymenvs.motion``: what a clip holds and whether its kinematics are right.

Each function returns the JSON-ready dict a command prints: ``info`` of a G1 CSV or of a poselib
clip, the ``check`` of a G1 CSV (validation, FK against MuJoCo, limits, ground, manifest), the FK
comparison of a poselib clip, ``retarget`` and ``convert``. The model a poselib clip is read onto,
the bundled-clip lookup and the physics checks (limits, speeds, one simulated step) are the
caller's: :mod:`isaacgymenvs.motion_check` holds the command line (``motion/__main__.py`` forwards
to it) because those need the task's model and the simulator.

Imports: numpy, mujoco, torch (at use), :mod:`isaacgymenvs.assets` and ``isaacgymenvs.motion`` only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "is_g1_csv",
    "reject_csv",
    "root_travel",
    "g1_info",
    "g1_check",
    "poselib_info",
    "poselib_fk_errors",
    "retarget_clip",
    "convert_clip",
]


def is_g1_csv(clip) -> bool:
    """A ``.csv`` clip is a Unitree G1 clip (``unitree_g1/motions/FORMAT.md``)."""
    return Path(clip).suffix.lower() == ".csv"


def reject_csv(clip, what: str) -> None:
    """``ValueError`` for a command that works on AMP humanoid clips only."""
    if is_g1_csv(clip):
        raise ValueError(f"{clip}: `{what}` works on AMP humanoid clips (.npy/.npz), not on G1 CSVs")


def root_travel(root_pos: np.ndarray) -> float:
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
        "root_travel_xy_m": root_travel(clip.root_pos),
        "joint_limit_violations": clip.joint_limit_violations,
    }


def g1_check(path, fps=None, tol: float = 0.01, ground_tol: float = 0.02) -> tuple[dict, int]:
    """Check a G1 CSV: the file reads and validates (columns, order, NaN, unit quaternions), no
    joint outside its range, the torch FK the MotionLib uses reproduces MuJoCo's body positions
    (``fk_max_err_m`` <= ``tol``), the feet do not sink more than ``ground_tol`` into the floor,
    and, for a file in the motion manifest, frames/fps/sha256 match it."""
    import mujoco
    import torch

    from isaacgymenvs import assets
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
            "sha256_match": entry.get("sha256") == assets.sha256_file(Path(path)),
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


def poselib_info(path, sm, model, skeleton) -> dict:
    """``info`` of a poselib clip ``sm`` (:class:`~isaacgymenvs.motion.poselib.SkeletonMotion`) read
    onto ``model`` / ``skeleton``."""
    from isaacgymenvs.motion.clip import clip_from_skeleton_motion

    clip = clip_from_skeleton_motion(sm, skeleton, model, ground="none")
    z = sm.root_translation[:, 2]
    return {
        "file": str(path),
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


def poselib_fk_errors(sm, clip, model, skeleton) -> dict:
    """MuJoCo's body positions for ``clip`` (the clip in the model's coordinates) against the
    source clip's own FK: ``max_err_m``, ``mean_err_m``, ``worst_frame``, ``worst_body``."""
    import mujoco

    ref = sm.global_positions()
    order = [sm.node_names.index(n) for n in skeleton.body_names]
    data = mujoco.MjData(model)
    errs = np.empty((clip.num_frames, skeleton.num_bodies))
    for t, q in enumerate(clip.qpos()):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        errs[t] = np.linalg.norm(data.xpos[1:] - ref[t, order], axis=-1)
    worst = np.unravel_index(np.argmax(errs), errs.shape)
    return {
        "max_err_m": float(errs.max()),
        "mean_err_m": float(errs.mean()),
        "worst_frame": int(worst[0]),
        "worst_body": skeleton.body_names[worst[1]],
    }


def retarget_clip(
    clip,
    out,
    robot: str,
    trust: bool = False,
    dedup: bool = True,
    foot_clearance: bool = True,
    min_distance: float = 0.01,
) -> dict:
    """``retarget``: an AMP humanoid clip to a G1 CSV ``out``; the quality report, and the comparison
    with the shipped retarget of the same clip when there is one."""
    from isaacgymenvs import assets
    from isaacgymenvs.motion import g1
    from isaacgymenvs.motion import retarget as rt
    from isaacgymenvs.motion.poselib import load_skeleton_motion

    if Path(out).suffix.lower() != ".csv":
        raise ValueError(f"{out}: --out must be a .csv file (the G1 clip format)")
    sm = load_skeleton_motion(clip, trust=trust)
    opts = rt.IKOptions(dedup=dedup, foot_clearance=foot_clearance, min_distance_m=min_distance)
    res = rt.retarget_to_g1(sm, opts=opts)
    written = g1.write_g1_csv(out, res.qpos[:, :3], res.qpos[:, 3:7], res.qpos[:, 7:])
    back = g1.load_g1_csv(written, fps=res.fps)  # what was written, at the written precision
    report = dict(res.report)
    report["joint_limit_violations"] = max(report["joint_limit_violations"], back.joint_limit_violations)
    shipped = rt.shipped_retarget_for(clip)
    comparison = None
    if shipped is not None:
        try:
            ship_path = assets.asset_path(shipped)
        except assets.AssetError:
            ship_path = None
        if ship_path is not None:
            other = g1.load_g1_csv(ship_path)
            comparison = rt.compare_with(back.qpos(), back.fps, other.qpos(), other.fps, shipped)
    return {"file": str(clip), "out": str(written), "robot": robot, **report, "shipped_comparison": comparison}


def convert_clip(clip, out=None, bundled: bool = False, trust: bool = False) -> dict:
    """``convert``: a poselib clip to a pickle-free ``.npz`` (default: the clip's name with ``.npz``;
    a bundled clip converts into the working directory, not into the asset folder)."""
    reject_csv(clip, "convert")
    from isaacgymenvs.motion.poselib import load_skeleton_motion, save_npz

    sm = load_skeleton_motion(clip, trust=trust)
    # a bundled clip converts into the working directory, not into the asset folder
    out = Path(out) if out else Path(Path(clip).name if bundled else clip).with_suffix(".npz")
    if out.resolve() == Path(clip).resolve():
        raise ValueError(f"{clip}: refusing to overwrite the source clip; pass --out")
    save_npz(sm, out)
    return {"file": str(clip), "out": str(out), "frames": sm.num_frames, "fps": sm.fps}
