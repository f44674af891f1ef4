"""Retargeting, the report: how well the G1 clip follows its targets, foot slip, self-penetration, comparison.

Keypoint errors are distances between the G1 keypoints and their targets, over the tracked set
:data:`TRACKED`. ``foot_slip_m_s`` is the **median** horizontal speed of a foot's lowest contact
sphere over the frames where that sphere is within ``contact_height_m`` of the floor;
``source_foot_slip_m_s`` is the same for the scaled source foot box over the same frames
(:mod:`isaacgymenvs.motion.retarget`'s docstring, "Reported quality").

Imports: numpy, mujoco and ``isaacgymenvs.motion`` (``g1_csv``, ``g1_model``, ``poselib``,
``retarget_targets``) only.
"""

from __future__ import annotations

import time

import mujoco
import numpy as np

from isaacgymenvs.motion.g1_csv import G1_JOINT_NAMES
from isaacgymenvs.motion.g1_model import count_limit_violations, foot_contact_speed, g1_keypoints, joint_limits
from isaacgymenvs.motion.poselib import SkeletonMotion
from isaacgymenvs.motion.retarget_targets import Targets

#: Keypoints in the error statistics (median_err_m, max_err_m).
TRACKED: tuple[str, ...] = (
    "pelvis",
    "left_knee",
    "right_knee",
    "left_foot",
    "right_foot",
    "left_elbow",
    "right_elbow",
    "left_hand",
    "right_hand",
)


def keypoint_errors(model: mujoco.MjModel, qpos: np.ndarray, targets: Targets) -> np.ndarray:
    """``[T, K]`` distances between the G1 keypoints and their targets (``targets.pos_names``)."""
    _, kp = g1_keypoints(model, qpos, targets.pos_names)
    return np.linalg.norm(kp - targets.pos, axis=-1)


def foot_slip(model: mujoco.MjModel, qpos: np.ndarray, fps: float, contact_height_m: float) -> dict:
    """Horizontal speed of each foot's lowest contact sphere over the frames where that sphere is
    within ``contact_height_m`` of z = 0 (median and mean over feet and frames)."""
    height, speed = foot_contact_speed(model, qpos, fps)
    contact = height < contact_height_m
    v = speed[contact]
    return {
        "foot_slip_m_s": float(np.median(v)) if v.size else float("nan"),
        "foot_slip_mean_m_s": float(np.mean(v)) if v.size else float("nan"),
        "contact_frames": int(contact.sum()),
        "contact": contact,
        "lowest_sole_m": float(height.min()),
    }


def compare_with(qpos: np.ndarray, fps: float, other: np.ndarray, other_fps: float, name: str) -> dict:
    """Per-joint RMS difference (rad) and root position RMS (m) against another G1 clip."""
    if other.shape != qpos.shape or abs(other_fps - fps) > 1e-9:
        return {
            "file": name,
            "comparable": False,
            "reason": f"{other.shape[0]} frames at {other_fps} fps vs {qpos.shape[0]} at {fps} fps",
        }
    dj = qpos[:, 7:] - other[:, 7:]
    rms = np.sqrt(np.mean(dj**2, axis=0))
    return {
        "file": name,
        "comparable": True,
        "per_joint_rms_rad": {n[:-6]: round(float(x), 4) for n, x in zip(G1_JOINT_NAMES, rms)},
        "mean_joint_rms_rad": float(rms.mean()),
        "max_joint_rms_rad": float(rms.max()),
        "root_pos_rms_m": float(np.sqrt(np.mean(np.sum((qpos[:, :3] - other[:, :3]) ** 2, axis=1)))),
    }


def self_penetration(model: mujoco.MjModel, qpos: np.ndarray, depth_m: float = 0.005) -> dict:
    """Deepest self-penetration over the clip and the frames deeper than ``depth_m`` (``mj_collision``
    on a model with collision meshes, e.g. :func:`~isaacgymenvs.motion.g1_model.collision_model`)."""
    d = mujoco.MjData(model)
    worst, frames = 0.0, 0
    for q in qpos:
        d.qpos[:] = q
        mujoco.mj_kinematics(model, d)
        mujoco.mj_collision(model, d)
        deepest = min([c.dist for c in d.contact[: d.ncon]], default=0.0)
        worst = min(worst, deepest)
        frames += deepest < -depth_m
    return {"self_penetration_max_m": max(0.0, -float(worst)), "self_penetration_frames": int(frames)}


def quality_report(
    model: mujoco.MjModel,
    qpos: np.ndarray,
    fps: float,
    source: SkeletonMotion,
    dedup: bool,
    targets: Targets,
    err: np.ndarray,
    floor: np.ndarray,
    contact_height_m: float,
    penetration_model: mujoco.MjModel,
    t0: float,
) -> dict:
    """``RetargetResult.report`` of the grounded G1 ``qpos [T, 36]`` (wxyz) retargeted from ``source``.

    ``err [T, K]``: :func:`keypoint_errors` before grounding; ``floor [T]``: the height taken off the
    root; ``penetration_model``: a model with collision meshes (:func:`self_penetration`); ``t0``: the
    ``time.perf_counter()`` the retarget started at (``wall_s``)."""
    tracked = [targets.pos_names.index(k) for k in TRACKED]
    e = err[:, tracked]
    slip = foot_slip(model, qpos, fps, contact_height_m)
    # the source's own slip over the same frames: its scaled contact-point speed
    src_v = targets.source_contact_speed[slip["contact"]] if targets.source_contact_speed is not None else np.array([])
    dq = np.abs(np.gradient(qpos[:, 7:], axis=0)) * fps
    return {
        "frames": int(qpos.shape[0]),
        "fps": fps,
        "source_frames": source.num_frames,
        "source_fps": float(source.fps),
        "dedup_held_frames": dedup,
        "scale_leg": round(targets.scale_leg, 4),
        "scale_arm": round(targets.scale_arm, 4),
        "root_z_offset_m": round(targets.root_z_offset, 4),
        "median_err_m": float(np.median(e)),
        "max_err_m": float(e.max()),
        "mean_err_m": float(e.mean()),
        "err_keypoints": list(TRACKED),
        "per_keypoint_median_m": {k: round(float(np.median(err[:, i])), 4) for i, k in enumerate(targets.pos_names)},
        "foot_target_shift_m": None
        if targets.foot_shift is None
        else {
            "median_abs": float(np.median(np.abs(targets.foot_shift))),
            "max_abs": float(np.abs(targets.foot_shift).max()),
        },
        "joint_limit_violations": count_limit_violations(qpos[:, 7:], joint_limits(model)),
        "foot_slip_m_s": slip["foot_slip_m_s"],
        "foot_slip_mean_m_s": slip["foot_slip_mean_m_s"],
        "source_foot_slip_m_s": float(np.median(src_v)) if src_v.size else float("nan"),
        "foot_contact_height_m": contact_height_m,
        "foot_contact_frames": slip["contact_frames"],
        "lowest_sole_m": slip["lowest_sole_m"],
        "ground_offset_range_m": [float(floor.min()), float(floor.max())],
        "max_joint_speed_rad_s": float(dq.max()),
        "root_z_range_m": [float(qpos[:, 2].min()), float(qpos[:, 2].max())],
        **self_penetration(penetration_model, qpos),
        "wall_s": time.perf_counter() - t0,
    }
