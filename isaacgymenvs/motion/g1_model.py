"""The Unitree G1 model: ``g1.xml`` loaded and checked, joint limits, keypoint forward kinematics, foot heights.

Keypoint FK (:func:`g1_keypoints`) runs ``mujoco.mj_kinematics`` frame by frame on the kinematic
model (:func:`load_g1_model`, ``g1.xml`` with its mesh geoms dropped: the body tree, joints,
limits and the foot contact spheres are unchanged, and it compiles in milliseconds instead of
about a second). The 15 keypoints mirror the 15 AMP humanoid bodies (:data:`G1_KEYPOINTS`); the
G1 has no head body, so ``head`` is the centroid of the ``head_link`` mesh, a fixed point of
``torso_link`` (:data:`HEAD_OFFSET_IN_TORSO`). The feet are measured by their contact spheres
(:func:`foot_sole_heights`, :func:`ground_offset`); :func:`collision_model` is the full model with
mesh collision geoms and a contact margin (self-collision distances).

Imports: mujoco, numpy, scipy, :mod:`isaacgymenvs.assets` and ``isaacgymenvs.motion.g1_csv`` (the
joint order of the CSV format) only.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d

from isaacgymenvs import assets
from isaacgymenvs.motion.g1_csv import G1_JOINT_NAMES, NUM_COLUMNS

G1_MJCF = "unitree_g1/g1.xml"

#: Keypoint name -> G1 body whose origin is the keypoint (``head``: see HEAD_OFFSET_IN_TORSO).
#: The order mirrors the AMP humanoid bodies (pelvis, torso, head, right arm, left arm, right
#: leg, left leg); hips are the hip_roll origins, shoulders the shoulder_roll origins (where
#: the joint axes nearly meet), hands the wrist_yaw origins (the wrist), feet the ankle_roll
#: origins (0.035 m above the sole).
G1_KEYPOINTS: dict[str, str] = {
    "pelvis": "pelvis",
    "torso": "torso_link",
    "head": "torso_link",
    "right_shoulder": "right_shoulder_roll_link",
    "right_elbow": "right_elbow_link",
    "right_hand": "right_wrist_yaw_link",
    "left_shoulder": "left_shoulder_roll_link",
    "left_elbow": "left_elbow_link",
    "left_hand": "left_wrist_yaw_link",
    "right_hip": "right_hip_roll_link",
    "right_knee": "right_knee_link",
    "right_foot": "right_ankle_roll_link",
    "left_hip": "left_hip_roll_link",
    "left_knee": "left_knee_link",
    "left_foot": "left_ankle_roll_link",
}
#: ``head`` keypoint in the ``torso_link`` frame: the centroid of the head_link mesh (MuJoCo's
#: compiled geom position of that mesh in g1.xml), about 1.22 m above the floor when standing.
HEAD_OFFSET_IN_TORSO = np.array([0.0076509, 0.0000248, 0.3851318])
#: The sole is this far below the ankle_roll_link origin (foot contact spheres at z = -0.03, r 0.005).
SOLE_BELOW_ANKLE_M = 0.035


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _load_model_cached(path: str, kinematic: bool) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(path)
    if kinematic:
        for g in list(spec.geoms):
            if g.type == mujoco.mjtGeom.mjGEOM_MESH:
                spec.delete(g)
        for m in list(spec.meshes):
            spec.delete(m)
    model = spec.compile()
    check_g1_model(model)
    return model


def load_g1_model(kinematic: bool = True, mjcf: str | os.PathLike | None = None) -> mujoco.MjModel:
    """The G1 ``MjModel`` from the asset folder (``unitree_g1/g1.xml``), cached per process.

    ``kinematic=True`` drops the mesh geoms (visual and collision meshes): bodies, joints,
    limits, inertials and the foot contact spheres stay. Treat the returned model as read-only.
    """
    path = Path(mjcf) if mjcf is not None else assets.asset_path(G1_MJCF)
    return _load_model_cached(str(path), kinematic)


def collision_model(margin: float = 0.02) -> mujoco.MjModel:
    """Full ``g1.xml`` (mesh collision geoms) with a contact margin, so that pairs closer than
    ``margin`` are reported by ``mj_collision``; same bodies and joints as the kinematic model.
    Cached per margin for the process; treat it as read-only."""
    key = ("collision", margin)
    if key not in _MODELS:
        spec = mujoco.MjSpec.from_file(str(assets.asset_path(G1_MJCF)))
        for geom in spec.geoms:
            geom.margin = margin
        _MODELS[key] = spec.compile()
    return _MODELS[key]


_MODELS: dict = {}


def model_joint_names(model: mujoco.MjModel) -> list[str]:
    return [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]


def check_g1_model(model: mujoco.MjModel) -> None:
    """Raise ``ValueError`` unless the model is a free root + the 29 G1 hinges in CSV order."""
    if model.njnt == 0 or model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError("the G1 model must start with a free root joint")
    names = model_joint_names(model)
    if model.nq != NUM_COLUMNS or names != list(G1_JOINT_NAMES):
        raise ValueError(
            f"the model has nq={model.nq} and hinges {names}; the G1 CSV format needs nq={NUM_COLUMNS} and the 29 "
            f"hinges {list(G1_JOINT_NAMES)} in that order (unitree_g1/g1.xml)"
        )


def joint_limits(model: mujoco.MjModel) -> np.ndarray:
    """``[29, 2]`` lower/upper hinge limits (rad) in qpos order."""
    return np.array(model.jnt_range[1:], dtype=np.float64)


def count_limit_violations(dof_pos: np.ndarray, limits: np.ndarray, tol: float = 1e-6) -> int:
    """Number of frames x joints outside ``limits`` by more than ``tol`` (rad)."""
    return int(np.sum((dof_pos < limits[:, 0] - tol) | (dof_pos > limits[:, 1] + tol)))


# ---------------------------------------------------------------------------------------
# Feet
# ---------------------------------------------------------------------------------------


def foot_geom_ids(model: mujoco.MjModel) -> np.ndarray:
    """The foot contact spheres: collision geoms on the two ankle_roll links."""
    feet = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"{s}_ankle_roll_link") for s in ("left", "right")}
    ids = [
        g
        for g in range(model.ngeom)
        if model.geom_bodyid[g] in feet
        and (model.geom_contype[g] or model.geom_conaffinity[g])
        and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE
    ]
    if not ids:
        raise ValueError("the model has no foot contact spheres on *_ankle_roll_link (use unitree_g1/g1.xml)")
    return np.array(ids)


def foot_sphere_bottoms(model: mujoco.MjModel, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bottom points of the foot contact spheres per frame ``[T, S, 3]`` and each sphere's side
    ``[S]`` (0 left, 1 right)."""
    data = mujoco.MjData(model)
    geoms = foot_geom_ids(model)
    side = np.array([0 if model.body(model.geom_bodyid[g]).name.startswith("left") else 1 for g in geoms])
    r = model.geom_size[geoms, 0]
    out = np.empty((len(qpos), len(geoms), 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = data.geom_xpos[geoms]
    out[..., 2] -= r
    return out, side


def foot_sole_heights(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """``[T, 2]`` lowest contact-sphere bottom of the left and right foot per frame (m)."""
    pts, side = foot_sphere_bottoms(model, qpos)
    return np.stack([pts[:, side == k, 2].min(axis=1) for k in (0, 1)], axis=1)


def foot_contact_speed(model: mujoco.MjModel, qpos: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per foot and frame: the lowest sphere bottom height ``[T, 2]`` and the horizontal speed
    of that sphere (central differences of its own track) ``[T, 2]``, in m and m/s."""
    pts, side = foot_sphere_bottoms(model, qpos)
    vel = np.linalg.norm(np.gradient(pts[..., :2], axis=0), axis=-1) * fps  # [T, S]
    T = len(qpos)
    height = np.empty((T, 2))
    speed = np.empty((T, 2))
    for k in (0, 1):
        idx = np.flatnonzero(side == k)
        low = idx[np.argmin(pts[:, idx, 2], axis=1)]
        height[:, k] = pts[np.arange(T), low, 2]
        speed[:, k] = vel[np.arange(T), low]
    return height, speed


def ground_offset(
    model: mujoco.MjModel, qpos: np.ndarray, fps: float, window_s: float = 0.8, sigma_s: float = 0.15
) -> np.ndarray:
    """``[T]`` local floor height under the feet: the lowest foot point per frame, its rolling
    minimum over ``window_s`` (flight phases stay in the air) and a Gaussian smoothing (``sigma_s``).
    Subtracting it from the root height puts the lowest sole at z = 0."""
    low = foot_sole_heights(model, qpos).min(axis=1)
    win = max(1, int(round(window_s * fps)) | 1)
    floor = minimum_filter1d(low, size=win, mode="nearest")
    return gaussian_filter1d(floor, sigma=max(1e-6, sigma_s * fps), mode="nearest")


# ---------------------------------------------------------------------------------------
# Keypoint forward kinematics
# ---------------------------------------------------------------------------------------


def keypoint_body_ids(model: mujoco.MjModel, names=None) -> tuple[list[str], np.ndarray]:
    names = list(G1_KEYPOINTS) if names is None else list(names)
    unknown = [n for n in names if n not in G1_KEYPOINTS]
    if unknown:
        raise ValueError(f"unknown G1 keypoints {unknown}; known: {list(G1_KEYPOINTS)}")
    ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, G1_KEYPOINTS[n]) for n in names])
    if (ids < 0).any():
        raise ValueError(f"the model lacks bodies {[G1_KEYPOINTS[n] for n, i in zip(names, ids) if i < 0]}")
    return names, ids


def g1_keypoints(model: mujoco.MjModel, qpos: np.ndarray, names=None) -> tuple[list[str], np.ndarray]:
    """World keypoint positions ``[T, K, 3]`` for MuJoCo qpos rows ``[T, 36]`` (wxyz), by ``mj_kinematics``.

    ``names``: a subset of :data:`G1_KEYPOINTS` (default: all 15, in that order)."""
    names, ids = keypoint_body_ids(model, names)
    head = [k for k, n in enumerate(names) if n == "head"]
    qpos = np.atleast_2d(np.asarray(qpos, dtype=np.float64))
    data = mujoco.MjData(model)
    out = np.empty((len(qpos), len(names), 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = data.xpos[ids]
        for k in head:
            out[t, k] = data.xpos[ids[k]] + data.xmat[ids[k]].reshape(3, 3) @ HEAD_OFFSET_IN_TORSO
    return names, out


def stand_qpos(model: mujoco.MjModel) -> np.ndarray:
    """The ``stand`` keyframe's qpos (root z 0.79, elbows 1.28 rad), or zeros with z 0.79."""
    k = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand")
    if k >= 0:
        return np.array(model.key_qpos[k], dtype=np.float64)
    q = np.zeros(model.nq)
    q[2], q[3] = 0.79, 1.0
    return q
