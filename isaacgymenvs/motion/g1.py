"""Unitree G1 clips as :class:`~isaacgymenvs.motion.clip.MotionClip`: a CSV read onto the G1 model.

:func:`load_g1_csv` returns the same :class:`~isaacgymenvs.motion.clip.MotionClip` as the
humanoid clips, so the MotionLib handles both alike: ``root_quat_wxyz`` is **wxyz** (MuJoCo's
``qpos[3:7]`` order, the order of every torch quaternion in this project), made sign-consistent
over time; velocities are central finite differences at the clip's fps (root linear and angular
velocity in the world frame, as in ``clip.py``).

The G1 is split by idea: the file format (read, validate, write, the manifest's fps) is
:mod:`~isaacgymenvs.motion.g1_csv`, the model (``g1.xml``, limits, keypoints, foot heights) is
:mod:`~isaacgymenvs.motion.g1_model`; this module joins them, and re-exports both so that
``from isaacgymenvs.motion import g1`` gives the whole G1 namespace (``g1.read_g1_csv``,
``g1.load_g1_model``, ...).

Imports: numpy, mujoco and ``isaacgymenvs.motion`` (``clip``, ``g1_csv``, ``g1_model``) only.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from isaacgymenvs.motion.clip import MotionClip, angular_velocity_world
from isaacgymenvs.motion.g1_csv import (
    CSV_COLUMNS,
    CSV_DECIMALS,
    G1_JOINT_NAMES,
    G1_MOTION_MANIFEST,
    G1_MOTIONS_DIR,
    NUM_COLUMNS,
    NUM_JOINTS,
    ROOT_COLUMNS,
    G1ClipError,
    g1_csv_fps,
    manifest_entry,
    read_g1_csv,
    write_g1_csv,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from isaacgymenvs.motion.g1_model import (
    G1_KEYPOINTS,
    G1_MJCF,
    HEAD_OFFSET_IN_TORSO,
    SOLE_BELOW_ANKLE_M,
    check_g1_model,
    collision_model,
    count_limit_violations,
    foot_contact_speed,
    foot_geom_ids,
    foot_sole_heights,
    foot_sphere_bottoms,
    g1_keypoints,
    ground_offset,
    joint_limits,
    keypoint_body_ids,
    load_g1_model,
    model_joint_names,
    stand_qpos,
)

__all__ = [
    # the clip (this module)
    "clip_from_qpos",
    "load_g1_csv",
    "write_g1_clip",
    # the CSV format (g1_csv)
    "G1_MOTIONS_DIR",
    "G1_MOTION_MANIFEST",
    "G1_JOINT_NAMES",
    "NUM_JOINTS",
    "NUM_COLUMNS",
    "ROOT_COLUMNS",
    "CSV_COLUMNS",
    "CSV_DECIMALS",
    "G1ClipError",
    "manifest_entry",
    "read_g1_csv",
    "g1_csv_fps",
    "write_g1_csv",
    "xyzw_to_wxyz",
    "wxyz_to_xyzw",
    # the model (g1_model)
    "G1_MJCF",
    "G1_KEYPOINTS",
    "HEAD_OFFSET_IN_TORSO",
    "SOLE_BELOW_ANKLE_M",
    "load_g1_model",
    "collision_model",
    "model_joint_names",
    "check_g1_model",
    "joint_limits",
    "count_limit_violations",
    "foot_geom_ids",
    "foot_sphere_bottoms",
    "foot_sole_heights",
    "foot_contact_speed",
    "ground_offset",
    "keypoint_body_ids",
    "g1_keypoints",
    "stand_qpos",
]


def _sign_consistent(q: np.ndarray) -> np.ndarray:
    q = q.copy()
    for t in range(1, len(q)):
        if np.dot(q[t], q[t - 1]) < 0:
            q[t] = -q[t]
    return q


def clip_from_qpos(
    name: str,
    qpos: np.ndarray,
    fps: float,
    model: mujoco.MjModel | None = None,
    ground: str = "none",
    ground_window_s: float = 1.0,
) -> MotionClip:
    """A :class:`MotionClip` from MuJoCo qpos rows ``[T, 36]`` (quaternion wxyz)."""
    if ground not in ("none", "rolling_min"):
        raise ValueError(f"ground must be 'none' or 'rolling_min', got {ground!r}")
    model = model if model is not None else load_g1_model()
    qpos = np.asarray(qpos, dtype=np.float64)
    root_pos = qpos[:, :3].copy()
    quat = qpos[:, 3:7] / np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
    quat = _sign_consistent(quat)
    dof_pos = qpos[:, 7:].copy()
    offset = None
    if ground == "rolling_min":
        offset = ground_offset(
            model, np.concatenate((root_pos, quat, dof_pos), axis=1), fps, window_s=ground_window_s, sigma_s=0.25
        )
        root_pos[:, 2] -= offset
    return MotionClip(
        name=name,
        fps=float(fps),
        root_pos=root_pos,
        root_quat_wxyz=quat,
        dof_pos=dof_pos,
        root_lin_vel=np.gradient(root_pos, axis=0) * fps,
        root_ang_vel=angular_velocity_world(quat, fps),
        dof_vel=np.gradient(dof_pos, axis=0) * fps,
        joint_limit_violations=count_limit_violations(dof_pos, joint_limits(model)),
        ground_offset_m=offset,
    )


def load_g1_csv(
    path,
    fps: float | None = None,
    model: mujoco.MjModel | None = None,
    ground: str = "none",
    ground_window_s: float = 1.0,
) -> MotionClip:
    """Load a G1 CSV clip as a :class:`MotionClip` (root quaternion **wxyz**, SI units).

    Args:
        path: the CSV file.
        fps: frame rate; default: the file's entry in ``unitree_g1/motions/manifest.json``
            (an error when the file is not there).
        model: the G1 model to validate against (default :func:`load_g1_model`); its hinges
            must be the 29 of ``g1.xml`` in CSV order.
        ground: ``"none"`` (default: the files already put the floor at z = 0) or
            ``"rolling_min"``: subtract the smoothed rolling minimum of the lowest foot point.
        ground_window_s: rolling-minimum window for ``ground="rolling_min"``.
    """
    path = Path(path)
    model = model if model is not None else load_g1_model()
    try:
        check_g1_model(model)
    except ValueError as e:
        raise G1ClipError(path, str(e)) from None
    a = read_g1_csv(path)
    rate, _ = g1_csv_fps(path, fps)
    qpos = np.concatenate((a[:, :3], xyzw_to_wxyz(a[:, 3:7]), a[:, 7:]), axis=1)
    return clip_from_qpos(path.stem, qpos, rate, model, ground=ground, ground_window_s=ground_window_s)


def write_g1_clip(path, clip: MotionClip, header: bool = False) -> Path:
    return write_g1_csv(path, clip.root_pos, clip.root_quat_wxyz, clip.dof_pos, header=header)
