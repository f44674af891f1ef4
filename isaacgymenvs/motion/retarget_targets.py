"""Retargeting, step 1-3: the G1 keypoint targets of an AMP humanoid clip (positions and rotations per frame).

The method is :mod:`isaacgymenvs.motion.retarget`'s docstring (source poses, scaled keypoint targets
anchored on G1 geometry, foot heights from the source sole clearance). :data:`POS_WEIGHTS` and
:data:`ORI_WEIGHTS` name the targets and weigh them in the IK (:mod:`isaacgymenvs.motion.ik`).

Imports: numpy, scipy, mujoco and ``isaacgymenvs.motion`` (``g1_csv``, ``g1_model``, ``poselib``) only.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d
from scipy.spatial.transform import Rotation

from isaacgymenvs.motion.g1_csv import xyzw_to_wxyz
from isaacgymenvs.motion.g1_model import foot_geom_ids, g1_keypoints
from isaacgymenvs.motion.poselib import ClipError, SkeletonMotion

#: keypoint -> AMP humanoid body (the G1 body is g1_model.G1_KEYPOINTS[keypoint]).
AMP_BODY: dict[str, str] = {
    "pelvis": "pelvis",
    "torso": "torso",
    "head": "head",
    "right_shoulder": "right_upper_arm",
    "right_elbow": "right_lower_arm",
    "right_hand": "right_hand",
    "left_shoulder": "left_upper_arm",
    "left_elbow": "left_lower_arm",
    "left_hand": "left_hand",
    "right_hip": "right_thigh",
    "right_knee": "right_shin",
    "right_foot": "right_foot",
    "left_hip": "left_thigh",
    "left_knee": "left_shin",
    "left_foot": "left_foot",
}

#: Corners of the AMP humanoid foot box in the foot (ankle) frame: amp_humanoid.xml, geom
#: ``*_foot``: box at pos (0.045, 0, -0.0225), half sizes (0.0885, 0.045, 0.0275).
AMP_FOOT_CORNERS = np.array(
    [[0.045 + sx * 0.0885, sy * 0.045, -0.0225 + sz * 0.0275] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
)

#: Position-task weights (residual scale per metre) and orientation-task weights (per rad).
POS_WEIGHTS: dict[str, float] = {
    "pelvis": 5.0,
    "left_hip": 1.0,
    "right_hip": 1.0,
    "left_knee": 1.0,
    "right_knee": 1.0,
    "left_foot": 5.0,
    "right_foot": 5.0,
    "left_shoulder": 1.0,
    "right_shoulder": 1.0,
    "left_elbow": 1.0,
    "right_elbow": 1.0,
    "left_hand": 1.0,
    "right_hand": 1.0,
}
ORI_WEIGHTS: dict[str, float] = {"pelvis": 5.0, "torso": 2.0, "left_foot": 2.0, "right_foot": 2.0}


@dataclass
class Targets:
    """Per-frame IK targets (world): positions ``[T, K, 3]`` and rotations ``[T, M, 4]`` wxyz."""

    pos_names: list[str]
    pos: np.ndarray
    ori_names: list[str]
    quat_wxyz: np.ndarray
    scale_leg: float
    scale_arm: float
    root_z_offset: float
    #: [T] floor height the foot targets stand on (``foot_clearance``), else None
    floor: np.ndarray | None = None
    #: [T, 2] horizontal speed of the scaled source feet's lowest box corner (``foot_clearance``)
    source_contact_speed: np.ndarray | None = None
    #: [T, 2] vertical shift of the left/right foot targets by the clearance rule (``foot_clearance``)
    foot_shift: np.ndarray | None = None


# ---------------------------------------------------------------------------------------
# Source
# ---------------------------------------------------------------------------------------


def source_fk(sm: SkeletonMotion) -> tuple[np.ndarray, np.ndarray]:
    """World positions ``[T, J, 3]`` and rotations ``[T, J, 4]`` (xyzw) of the clip's nodes."""
    return sm.global_transforms()


def held_pairs(sm: SkeletonMotion) -> bool:
    """True when frame 2k+1 repeats frame 2k throughout (60 fps files with 30 Hz content)."""
    T = sm.num_frames
    if T < 4:
        return False
    n = T // 2
    a, b = slice(0, 2 * n, 2), slice(1, 2 * n, 2)
    return bool(
        np.array_equal(sm.rotation_xyzw[a], sm.rotation_xyzw[b])
        and np.array_equal(sm.root_translation[a], sm.root_translation[b])
    )


def check_source(sm: SkeletonMotion) -> None:
    """Raise :class:`ClipError` unless ``sm`` has the 15 bodies of the IsaacGymEnvs AMP humanoid."""
    missing = sorted(set(AMP_BODY.values()) - set(sm.node_names))
    if missing:
        raise ClipError(
            sm.path,
            f"not an AMP humanoid clip: bodies {missing} are missing (it has {sm.node_names}); "
            f"retarget needs the 15-body IsaacGymEnvs AMP skeleton",
        )


# ---------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------


def _g1_rest_geometry(model: mujoco.MjModel) -> dict:
    """G1 keypoints at the zero pose with the pelvis at the origin, and the derived offsets."""
    q = np.zeros(model.nq)
    q[3] = 1.0
    names, kp = g1_keypoints(model, q)
    p = dict(zip(names, kp[0]))
    d = mujoco.MjData(model)
    d.qpos[:] = q
    mujoco.mj_kinematics(model, d)
    torso = d.xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso_link")].copy()
    out = {"torso_origin": torso, "kp": p}
    for s in ("left", "right"):
        out[f"{s}_hip_off"] = p[f"{s}_hip"] - p["pelvis"]
        out[f"{s}_shoulder_off"] = p[f"{s}_shoulder"] - torso
        out[f"{s}_leg_len"] = np.linalg.norm(p[f"{s}_knee"] - p[f"{s}_hip"]) + np.linalg.norm(
            p[f"{s}_foot"] - p[f"{s}_knee"]
        )
        out[f"{s}_arm_len"] = np.linalg.norm(p[f"{s}_elbow"] - p[f"{s}_shoulder"]) + np.linalg.norm(
            p[f"{s}_hand"] - p[f"{s}_elbow"]
        )
    out["pelvis_above_ankle"] = p["pelvis"][2] - 0.5 * (p["left_foot"][2] + p["right_foot"][2])
    return out


def _source_rest_lengths(sm: SkeletonMotion) -> dict:
    idx = {n: i for i, n in enumerate(sm.node_names)}
    L = lambda n: float(np.linalg.norm(sm.local_translation[idx[n]]))  # noqa: E731
    leg = 0.5 * sum(L(f"{s}_shin") + L(f"{s}_foot") for s in ("left", "right"))
    arm = 0.5 * sum(L(f"{s}_lower_arm") + L(f"{s}_hand") for s in ("left", "right"))
    # pelvis height above the ankles with straight legs (the thighs hang from the pelvis)
    above = 0.5 * sum(
        -sm.local_translation[idx[f"{s}_thigh"]][2] + L(f"{s}_shin") + L(f"{s}_foot") for s in ("left", "right")
    )
    return {"leg": leg, "arm": arm, "pelvis_above_ankle": above}


def _rolling_floor(low: np.ndarray, fps: float, window_s: float, sigma_s: float) -> np.ndarray:
    win = max(1, int(round(window_s * fps)) | 1)
    floor = minimum_filter1d(low, size=win, mode="nearest")
    return gaussian_filter1d(floor, sigma=max(1e-6, sigma_s * fps), mode="nearest")


def source_floor(
    low: np.ndarray, speed: np.ndarray, fps: float, planted_speed: float, fallback: np.ndarray, sigma_s: float
) -> np.ndarray:
    """``[T]`` floor height under one source foot (scaled frame).

    The floor is sampled where the foot is planted (its lowest point moves slower than
    ``planted_speed``):
    there it is the foot's lowest point. Between samples it is interpolated (held at the ends),
    then smoothed (``sigma_s``). With fewer than 2 planted frames ``fallback`` is used (the
    rolling minimum of both feet). The rolling minimum alone is pulled down by heel-strike and
    toe-off frames, where the pitched source foot dips below its stance height (and the AMP
    clips' feet sink into their uneven floor), which leaves flat stance feet hovering."""
    planted = speed < planted_speed
    if planted.sum() < 2:
        return fallback
    t = np.arange(len(low))
    floor = np.interp(t, t[planted], low[planted])
    return gaussian_filter1d(floor, sigma=max(1e-6, sigma_s * fps), mode="nearest")


def _g1_ankle_above_sole(model: mujoco.MjModel, body: str, R_foot: Rotation) -> np.ndarray:
    """``[T]`` height of the ankle_roll origin above the foot's lowest contact-sphere bottom
    when the foot has world rotation ``R_foot``."""
    b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
    geoms = [g for g in foot_geom_ids(model) if model.geom_bodyid[g] == b]
    pts = model.geom_pos[geoms]  # sphere centres in the body frame
    r = model.geom_size[geoms, 0]
    z = np.einsum("tj,kj->tk", R_foot.as_matrix()[:, 2], pts) - r
    return -z.min(axis=1)


def build_targets(
    sm: SkeletonMotion,
    model: mujoco.MjModel,
    foot_clearance: bool = True,
    window_s: float = 0.8,
    sigma_s: float = 0.15,
    planted_speed: float = 0.2,
) -> Targets:
    """Scaled G1 keypoint targets for every frame of ``sm`` (:mod:`isaacgymenvs.motion.retarget`, steps 1-3).

    ``foot_clearance``: set the height of each foot target so that the G1 sole keeps the
    (scaled) clearance of the source foot above the source's local floor, instead of
    keeping the scaled ankle height; the G1 foot is long for its legs, so scaled ankles put a
    pitched toe or heel through the floor and let flat stance feet hover."""
    check_source(sm)
    pos, quat = source_fk(sm)
    idx = {n: i for i, n in enumerate(sm.node_names)}
    P = lambda k: pos[:, idx[AMP_BODY[k]]]  # noqa: E731
    R = lambda k: Rotation.from_quat(quat[:, idx[AMP_BODY[k]]])  # noqa: E731
    geo = _g1_rest_geometry(model)
    src = _source_rest_lengths(sm)
    s_leg = 0.5 * (geo["left_leg_len"] + geo["right_leg_len"]) / src["leg"]
    s_arm = 0.5 * (geo["left_arm_len"] + geo["right_arm_len"]) / src["arm"]
    c = geo["pelvis_above_ankle"] - s_leg * src["pelvis_above_ankle"]

    R_pelvis, R_torso = R("pelvis"), R("torso")
    t: dict[str, np.ndarray] = {}
    t["pelvis"] = s_leg * P("pelvis") + np.array([0.0, 0.0, c])
    torso_origin = t["pelvis"] + R_pelvis.apply(geo["torso_origin"] - geo["kp"]["pelvis"])
    for s in ("left", "right"):
        hip = t["pelvis"] + R_pelvis.apply(geo[f"{s}_hip_off"])
        t[f"{s}_hip"] = hip
        t[f"{s}_knee"] = hip + s_leg * (P(f"{s}_knee") - P(f"{s}_hip"))
        t[f"{s}_foot"] = hip + s_leg * (P(f"{s}_foot") - P(f"{s}_hip"))
        sh = torso_origin + R_torso.apply(geo[f"{s}_shoulder_off"])
        t[f"{s}_shoulder"] = sh
        t[f"{s}_elbow"] = sh + s_arm * (P(f"{s}_elbow") - P(f"{s}_shoulder"))
        t[f"{s}_hand"] = sh + s_arm * (P(f"{s}_hand") - P(f"{s}_shoulder"))
    floor = None
    shift: list = []
    if foot_clearance:
        fps = float(sm.fps)
        low, speed, hspeed, h_g1 = {}, {}, {}, {}
        for s in ("left", "right"):
            R_foot = R(f"{s}_foot")
            # the source foot box corners, scaled with the leg and hung from the ankle target
            C = t[f"{s}_foot"][:, None] + s_leg * np.einsum("tij,kj->tki", R_foot.as_matrix(), AMP_FOOT_CORNERS)
            k = C[..., 2].argmin(axis=1)
            low[s] = C[np.arange(len(k)), k, 2]
            # speed of the lowest corner (the contact point): small while the foot rolls heel to toe
            dC = np.gradient(C, axis=0)[np.arange(len(k)), k] * fps
            speed[s] = np.linalg.norm(dC, axis=-1)
            hspeed[s] = np.linalg.norm(dC[:, :2], axis=-1)
            h_g1[s] = _g1_ankle_above_sole(model, f"{s}_ankle_roll_link", R_foot)
        floor = _rolling_floor(np.minimum(low["left"], low["right"]), fps, window_s, sigma_s)
        shift = []
        for s in ("left", "right"):
            own = source_floor(low[s], speed[s], fps, planted_speed, floor, sigma_s)
            clearance = np.maximum(low[s] - own, 0.0)
            new_z = floor + clearance + h_g1[s]
            shift.append(new_z - t[f"{s}_foot"][:, 2])
            t[f"{s}_foot"][:, 2] = new_z
    pos_names = list(POS_WEIGHTS)
    ori_names = list(ORI_WEIGHTS)
    q_xyzw = np.stack([quat[:, idx[AMP_BODY[k]]] for k in ori_names], axis=1)
    return Targets(
        pos_names=pos_names,
        pos=np.stack([t[k] for k in pos_names], axis=1),
        ori_names=ori_names,
        quat_wxyz=xyzw_to_wxyz(q_xyzw),
        scale_leg=float(s_leg),
        scale_arm=float(s_arm),
        root_z_offset=float(c),
        floor=floor,
        source_contact_speed=np.stack([hspeed["left"], hspeed["right"]], axis=1) if foot_clearance else None,
        foot_shift=np.stack(shift, axis=1) if shift else None,
    )
