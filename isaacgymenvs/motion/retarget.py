"""Retarget an AMP humanoid clip onto the Unitree G1 by keypoint inverse kinematics.

The method follows ``shared/assets/unitree_g1/motions/amp_retarget/PROVENANCE.md`` (which made
the shipped ``g1_from_amp_*.csv`` with the mink IK library); here the solver is a small damped
least-squares (Levenberg-Marquardt) loop on the MuJoCo model itself:

1. **Source poses.** The clip's own forward kinematics gives the world position and rotation of
   its 15 bodies. A 60 fps AMP clip that holds every pose for two frames is reduced to its
   distinct poses (every second frame, half the fps), as the shipped retargets are.
2. **Scaled keypoint targets**, anchored on G1 geometry (the scales come from the two skeletons):
   root ``= s_leg * pelvis + (0, 0, c)``; hips ``= root + R_pelvis * hip offset of the G1``;
   knees/feet ``= hip + s_leg * (source joint - source hip)``; shoulders ``= G1 torso origin +
   R_torso * G1 shoulder offset``; elbows/hands ``= shoulder + s_arm * (source - source
   shoulder)``. ``s_leg`` = G1 hip_roll->ankle_roll over AMP hip->ankle (0.750), ``s_arm`` = G1
   shoulder_roll->wrist_yaw over AMP shoulder->hand (0.691), ``c`` puts the scaled pelvis at the
   G1's height above the ankles. Both skeletons have identity body frames in the rest pose
   (x forward, z up), so source rotations are G1 rotation targets directly.
3. **Foot heights** (``foot_clearance``, on by default). The G1 foot is long for its legs, so
   scaled ankle heights would put a pitched toe or heel through the floor and leave flat stance
   feet hovering. Instead each foot target keeps the source sole's *clearance*: the lowest
   corner of the scaled source foot box, measured above that foot's own floor (sampled where
   the foot is planted, i.e. its lowest corner moves slower than 0.2 m/s, interpolated
   between, smoothed), is given to the G1 foot's lowest contact sphere under the same foot
   rotation, above a common floor (rolling minimum of both source feet over 0.8 s, smoothed
   with sigma 0.15 s).
4. **IK per frame.** Weighted residuals (position / orientation weights): pelvis 5/5,
   torso -/2, hips 1/-, knees 1/-, feet 5/2, shoulders 1/-, elbows 1/-, hands 1/-, plus a
   temporal prior pulling the 29 joints toward the previous frame's solution (weight 0.1 per
   rad), a weak prior toward the ``stand`` keyframe (0.02; it holds the wrists, which have no
   target), and one-sided distance residuals keeping collision geoms of g1.xml at least 1 cm
   apart (arms against torso and hips, leg against leg; contacts from ``mj_collision`` with a
   margin, Jacobians from ``mj_jac`` at the contact point). Each iteration takes body Jacobians
   from ``mj_jacBody`` and solves the damped normal equations; joint limits are kept by
   clamping to the limits rounded inward to the CSV's 6 decimals, and a joint at a limit that
   the step pushes outward is frozen for that step (a projected, active-set Gauss-Newton
   step). Frame 0 starts from the ``stand`` keyframe at the source root pose (60
   iterations); each later frame starts from the previous solution (up to 20 iterations,
   stopping when the step is below 1e-6).
5. **Ground.** The common floor of step 3 is subtracted from the root height; frames where the
   IK could not reach a foot target and a sole would be below z = 0 are lifted out. Without
   ``foot_clearance`` the floor is the G1's own lowest foot point per frame, rolling minimum
   over 0.8 s, Gaussian sigma 0.15 s (PROVENANCE.md's rule). The lowest sole ends at z = 0 and
   flight phases stay in the air.

Reported quality (``RetargetResult.report``): keypoint errors are distances between the G1
keypoints and their targets (feet: after the height rule of step 3, whose vertical shift of
the foot targets is reported as ``foot_target_shift_m``), measured before grounding (a
vertical shift of the whole body), over the tracked set pelvis, knees, feet, elbows and hands (hips and shoulders are
also targets but follow from the pelvis and torso poses, so they are left out of the
statistics; per-keypoint medians are given for all). ``foot_slip_m_s`` is the **median**
horizontal speed of a foot's lowest contact sphere over the frames where that sphere is within
``contact_height_m`` (2 cm) of the floor (``foot_slip_mean_m_s``: the mean);
``source_foot_slip_m_s`` is the same for the scaled source foot box over the same frames, so
slip inherited from the mocap shows as equal numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, minimum_filter1d
from scipy.spatial.transform import Rotation

from isaacgymenvs.motion import g1
from isaacgymenvs.motion.poselib import ClipError, SkeletonMotion

#: keypoint -> AMP humanoid body (the G1 body is g1.G1_KEYPOINTS[keypoint]).
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
    "left_hip": 1.0, "right_hip": 1.0,
    "left_knee": 1.0, "right_knee": 1.0,
    "left_foot": 5.0, "right_foot": 5.0,
    "left_shoulder": 1.0, "right_shoulder": 1.0,
    "left_elbow": 1.0, "right_elbow": 1.0,
    "left_hand": 1.0, "right_hand": 1.0,
}
ORI_WEIGHTS: dict[str, float] = {"pelvis": 5.0, "torso": 2.0, "left_foot": 2.0, "right_foot": 2.0}
#: Keypoints in the error statistics (median_err_m, max_err_m).
TRACKED: tuple[str, ...] = (
    "pelvis", "left_knee", "right_knee", "left_foot", "right_foot",
    "left_elbow", "right_elbow", "left_hand", "right_hand",
)


@dataclass
class IKOptions:
    prev_weight: float = 0.1  # pull toward the previous frame's joint angles (per rad)
    nominal_weight: float = 0.02  # pull toward the stand keyframe (per rad)
    damping: float = 1e-4  # Levenberg-Marquardt damping on every DoF
    first_iters: int = 60
    iters: int = 20
    tol: float = 1e-6  # stop when the largest step component is below this
    foot_clearance: bool = True  # foot target heights from the source sole clearance (build_targets)
    dedup: bool = True  # keep only distinct poses of a clip that holds each pose two frames
    ground_window_s: float = 0.8
    ground_sigma_s: float = 0.15
    contact_height_m: float = 0.02
    min_distance_m: float = 0.01  # keep collision geoms (arms/torso/legs) this far apart; 0: off
    collision_weight: float = 5.0  # per metre of distance below min_distance_m
    planted_speed_m_s: float = 0.2  # source contact-point speed (scaled frame) below which a foot is planted


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


@dataclass
class RetargetResult:
    qpos: np.ndarray  # [T, 36] grounded, quaternion wxyz
    fps: float
    report: dict = field(default_factory=dict)


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
        np.array_equal(sm.rotation_xyzw[a], sm.rotation_xyzw[b]) and np.array_equal(sm.root_translation[a], sm.root_translation[b])
    )


def _check_source(sm: SkeletonMotion) -> None:
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
    names, kp = g1.g1_keypoints(model, q)
    p = dict(zip(names, kp[0]))
    d = mujoco.MjData(model)
    d.qpos[:] = q
    mujoco.mj_kinematics(model, d)
    torso = d.xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso_link")].copy()
    out = {"torso_origin": torso, "kp": p}
    for s in ("left", "right"):
        out[f"{s}_hip_off"] = p[f"{s}_hip"] - p["pelvis"]
        out[f"{s}_shoulder_off"] = p[f"{s}_shoulder"] - torso
        out[f"{s}_leg_len"] = np.linalg.norm(p[f"{s}_knee"] - p[f"{s}_hip"]) + np.linalg.norm(p[f"{s}_foot"] - p[f"{s}_knee"])
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
    above = 0.5 * sum(-sm.local_translation[idx[f"{s}_thigh"]][2] + L(f"{s}_shin") + L(f"{s}_foot") for s in ("left", "right"))
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
    geoms = [g for g in g1.foot_geom_ids(model) if model.geom_bodyid[g] == b]
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
    """Scaled G1 keypoint targets for every frame of ``sm`` (see the module docstring).

    ``foot_clearance``: set the height of each foot target so that the G1 sole keeps the
    (scaled) clearance of the source foot above the source's local floor, instead of
    keeping the scaled ankle height; the G1 foot is long for its legs, so scaled ankles put a
    pitched toe or heel through the floor and let flat stance feet hover."""
    _check_source(sm)
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
        quat_wxyz=g1.xyzw_to_wxyz(q_xyzw),
        scale_leg=float(s_leg),
        scale_arm=float(s_arm),
        root_z_offset=float(c),
        floor=floor,
        source_contact_speed=np.stack([hspeed["left"], hspeed["right"]], axis=1) if foot_clearance else None,
        foot_shift=np.stack(shift, axis=1) if shift else None,
    )


# ---------------------------------------------------------------------------------------
# IK
# ---------------------------------------------------------------------------------------


def _quat_err_rotvec(q_cur: np.ndarray, q_tgt: np.ndarray) -> np.ndarray:
    """Rotation vectors of ``q_cur * conj(q_tgt)`` (world frame), rows of wxyz quaternions."""
    w1, v1 = q_cur[:, 0], q_cur[:, 1:]
    w2, v2 = q_tgt[:, 0], -q_tgt[:, 1:]
    w = w1 * w2 - np.sum(v1 * v2, axis=1)
    v = w1[:, None] * v2 + w2[:, None] * v1 + np.cross(v1, v2)
    s = np.where(w < 0, -1.0, 1.0)
    w, v = w * s, v * s[:, None]
    n = np.linalg.norm(v, axis=1)
    angle = 2.0 * np.arctan2(n, w)
    scale = np.where(n > 1e-12, angle / np.maximum(n, 1e-12), 2.0)
    return v * scale[:, None]


class KeypointIK:
    """Damped least-squares IK for position and orientation targets of G1 bodies."""

    def __init__(self, model: mujoco.MjModel, pos_names, ori_names, opts: IKOptions):
        self.m = model
        self.d = mujoco.MjData(model)
        self.opts = opts
        _, self.pos_ids = g1.keypoint_body_ids(model, pos_names)
        _, self.ori_ids = g1.keypoint_body_ids(model, ori_names)
        self.pos_w = np.array([POS_WEIGHTS[n] for n in pos_names])
        self.ori_w = np.array([ORI_WEIGHTS[n] for n in ori_names])
        lim = g1.joint_limits(model)
        # clamp to limits rounded inward to the CSV precision, so a written value stays inside
        self.lo = np.ceil(lim[:, 0] * 10**g1.CSV_DECIMALS - 1e-6) / 10**g1.CSV_DECIMALS
        self.hi = np.floor(lim[:, 1] * 10**g1.CSV_DECIMALS + 1e-6) / 10**g1.CSV_DECIMALS
        self.nominal = g1.stand_qpos(model)[7:]
        nv = model.nv
        self.n_res = 3 * (len(self.pos_ids) + len(self.ori_ids))
        self.J = np.zeros((self.n_res, nv))
        self.r = np.zeros(self.n_res)
        self._jp = np.zeros((3, nv))
        self._jr = np.zeros((3, nv))
        self._j1 = np.zeros((3, nv))
        self._j2 = np.zeros((3, nv))
        # self-collision avoidance: needs collision geoms with a margin (collision_model())
        self.collide = opts.min_distance_m > 0 and bool(np.any(model.geom_margin > 0))
        self.Jc = np.zeros((0, nv))
        self.rc = np.zeros(0)

    def _collision_rows(self) -> None:
        """One-sided distance residuals ``w (dist - d_min)`` for geom pairs closer than d_min."""
        m, d, o = self.m, self.d, self.opts
        mujoco.mj_collision(m, d)
        rows, res = [], []
        for c in d.contact[: d.ncon]:
            if c.dist >= o.min_distance_m:
                continue
            b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            mujoco.mj_jac(m, d, self._j1, None, c.pos, b1)
            mujoco.mj_jac(m, d, self._j2, None, c.pos, b2)
            n = c.frame[:3]  # contact normal, from geom1 to geom2
            rows.append(o.collision_weight * (n @ (self._j2 - self._j1)))
            res.append(o.collision_weight * (c.dist - o.min_distance_m))
        self.Jc = np.array(rows).reshape(-1, m.nv)
        self.rc = np.array(res)

    def _linearize(self, q: np.ndarray, tpos: np.ndarray, tquat: np.ndarray) -> None:
        m, d = self.m, self.d
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        row = 0
        for k, b in enumerate(self.pos_ids):
            mujoco.mj_jacBody(m, d, self._jp, None, b)
            w = self.pos_w[k]
            self.J[row:row + 3] = w * self._jp
            self.r[row:row + 3] = w * (d.xpos[b] - tpos[k])
            row += 3
        err = _quat_err_rotvec(d.xquat[self.ori_ids], tquat)
        for k, b in enumerate(self.ori_ids):
            mujoco.mj_jacBody(m, d, None, self._jr, b)
            w = self.ori_w[k]
            self.J[row:row + 3] = w * self._jr
            self.r[row:row + 3] = w * err[k]
            row += 3
        if self.collide:
            self._collision_rows()

    def solve(self, q0: np.ndarray, tpos: np.ndarray, tquat: np.ndarray, q_prev: np.ndarray | None, iters: int) -> np.ndarray:
        m, o = self.m, self.opts
        q = q0.copy()
        q[7:] = np.clip(q[7:], self.lo, self.hi)
        nv = m.nv
        wp = o.prev_weight**2 if q_prev is not None else 0.0
        wn = o.nominal_weight**2
        reg = np.full(nv, o.damping)
        reg[6:] += wp + wn
        for _ in range(iters):
            self._linearize(q, tpos, tquat)
            H = self.J.T @ self.J + np.diag(reg)
            g = self.J.T @ self.r
            if len(self.rc):
                H += self.Jc.T @ self.Jc
                g += self.Jc.T @ self.rc
            dj = q[7:]
            g[6:] += wn * (dj - self.nominal)
            if q_prev is not None:
                g[6:] += wp * (dj - q_prev[7:])
            free = np.ones(nv, dtype=bool)
            for _pass in range(4):
                dv = np.zeros(nv)
                dv[free] = np.linalg.solve(H[np.ix_(free, free)], -g[free])
                new = dj + dv[6:]
                out = ((new < self.lo) & (dj <= self.lo + 1e-12)) | ((new > self.hi) & (dj >= self.hi - 1e-12))
                if not out.any():
                    break
                free[6:][out] = False
            mujoco.mj_integratePos(m, q, dv, 1.0)
            q[7:] = np.clip(q[7:], self.lo, self.hi)
            n = np.linalg.norm(q[3:7])
            q[3:7] /= n
            if np.max(np.abs(dv)) < o.tol:
                break
        return q


def collision_model(margin: float = 0.02) -> mujoco.MjModel:
    """Full ``g1.xml`` (mesh collision geoms) with a contact margin, so that pairs closer than
    ``margin`` are reported by ``mj_collision``; same bodies and joints as the kinematic model."""
    key = ("collision", margin)
    if key not in _MODELS:
        spec = mujoco.MjSpec.from_file(str(g1.assets.asset_path(g1.G1_MJCF)))
        for geom in spec.geoms:
            geom.margin = margin
        _MODELS[key] = spec.compile()
    return _MODELS[key]


_MODELS: dict = {}


def solve_sequence(model: mujoco.MjModel, targets: Targets, opts: IKOptions) -> np.ndarray:
    """Frame-by-frame IK, warm-started; returns qpos ``[T, 36]`` (wxyz, not grounded)."""
    ik = KeypointIK(model, targets.pos_names, targets.ori_names, opts)
    T = targets.pos.shape[0]
    out = np.empty((T, model.nq))
    q = g1.stand_qpos(model)
    q[:3] = targets.pos[0, targets.pos_names.index("pelvis")]
    q[3:7] = targets.quat_wxyz[0, targets.ori_names.index("pelvis")]
    prev = None
    for t in range(T):
        q = ik.solve(q, targets.pos[t], targets.quat_wxyz[t], prev, opts.first_iters if t == 0 else opts.iters)
        out[t] = q
        prev = q
    return out


# ---------------------------------------------------------------------------------------
# Metrics and the whole pipeline
# ---------------------------------------------------------------------------------------


def keypoint_errors(model: mujoco.MjModel, qpos: np.ndarray, targets: Targets) -> np.ndarray:
    """``[T, K]`` distances between the G1 keypoints and their targets (``targets.pos_names``)."""
    _, kp = g1.g1_keypoints(model, qpos, targets.pos_names)
    return np.linalg.norm(kp - targets.pos, axis=-1)


def foot_slip(model: mujoco.MjModel, qpos: np.ndarray, fps: float, contact_height_m: float) -> dict:
    """Horizontal speed of each foot's lowest contact sphere over the frames where that sphere is
    within ``contact_height_m`` of z = 0 (median and mean over feet and frames)."""
    height, speed = g1.foot_contact_speed(model, qpos, fps)
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
        return {"file": name, "comparable": False,
                "reason": f"{other.shape[0]} frames at {other_fps} fps vs {qpos.shape[0]} at {fps} fps"}
    dj = qpos[:, 7:] - other[:, 7:]
    rms = np.sqrt(np.mean(dj**2, axis=0))
    return {
        "file": name,
        "comparable": True,
        "per_joint_rms_rad": {n[:-6]: round(float(x), 4) for n, x in zip(g1.G1_JOINT_NAMES, rms)},
        "mean_joint_rms_rad": float(rms.mean()),
        "max_joint_rms_rad": float(rms.max()),
        "root_pos_rms_m": float(np.sqrt(np.mean(np.sum((qpos[:, :3] - other[:, :3]) ** 2, axis=1)))),
    }


def self_penetration(model: mujoco.MjModel, qpos: np.ndarray, depth_m: float = 0.005) -> dict:
    """Deepest self-penetration over the clip and the frames deeper than ``depth_m`` (``mj_collision``
    on a model with collision meshes, e.g. :func:`collision_model`)."""
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


def retarget_to_g1(sm: SkeletonMotion, model: mujoco.MjModel | None = None, opts: IKOptions | None = None) -> RetargetResult:
    """Retarget an AMP humanoid clip to the G1 (module docstring); returns grounded qpos and a report."""
    t0 = time.perf_counter()
    opts = opts or IKOptions()
    model = model if model is not None else g1.load_g1_model()
    ik_model = collision_model(max(0.02, 2 * opts.min_distance_m)) if opts.min_distance_m > 0 else model
    _check_source(sm)
    dedup = opts.dedup and held_pairs(sm)
    src = sm
    fps = float(sm.fps)
    if dedup:
        src = SkeletonMotion(
            path=sm.path, fps=fps / 2, node_names=sm.node_names, parents=sm.parents,
            local_translation=sm.local_translation, rotation_xyzw=sm.rotation_xyzw[::2],
            root_translation=sm.root_translation[::2], source_dtype=sm.source_dtype,
        )
        fps = fps / 2
    targets = build_targets(
        src, model, opts.foot_clearance, opts.ground_window_s, opts.ground_sigma_s, opts.planted_speed_m_s
    )
    qpos = solve_sequence(ik_model, targets, opts)
    err = keypoint_errors(model, qpos, targets)  # before grounding: the shift moves both alike
    if targets.floor is not None:
        floor = targets.floor.copy()
        qpos[:, 2] -= floor
        # where the IK could not reach a foot target, lift the whole body out of the floor
        lift = np.maximum(-g1.foot_sole_heights(model, qpos).min(axis=1), 0.0)
        lift = np.maximum(lift, gaussian_filter1d(maximum_filter1d(lift, 3), 1.0, mode="nearest"))
        qpos[:, 2] += lift
        floor -= lift
    else:
        floor = g1.ground_offset(model, qpos, fps, opts.ground_window_s, opts.ground_sigma_s)
        qpos[:, 2] -= floor
    tracked = [targets.pos_names.index(k) for k in TRACKED]
    e = err[:, tracked]
    slip = foot_slip(model, qpos, fps, opts.contact_height_m)
    # the source's own slip over the same frames: its scaled contact-point speed
    src_v = targets.source_contact_speed[slip["contact"]] if targets.source_contact_speed is not None else np.array([])
    dq = np.abs(np.gradient(qpos[:, 7:], axis=0)) * fps
    report = {
        "frames": int(qpos.shape[0]),
        "fps": fps,
        "source_frames": sm.num_frames,
        "source_fps": float(sm.fps),
        "dedup_held_frames": dedup,
        "scale_leg": round(targets.scale_leg, 4),
        "scale_arm": round(targets.scale_arm, 4),
        "root_z_offset_m": round(targets.root_z_offset, 4),
        "median_err_m": float(np.median(e)),
        "max_err_m": float(e.max()),
        "mean_err_m": float(e.mean()),
        "err_keypoints": list(TRACKED),
        "per_keypoint_median_m": {k: round(float(np.median(err[:, i])), 4) for i, k in enumerate(targets.pos_names)},
        "foot_target_shift_m": None if targets.foot_shift is None else {
            "median_abs": float(np.median(np.abs(targets.foot_shift))), "max_abs": float(np.abs(targets.foot_shift).max())},
        "joint_limit_violations": g1.count_limit_violations(qpos[:, 7:], g1.joint_limits(model)),
        "foot_slip_m_s": slip["foot_slip_m_s"],
        "foot_slip_mean_m_s": slip["foot_slip_mean_m_s"],
        "source_foot_slip_m_s": float(np.median(src_v)) if src_v.size else float("nan"),
        "foot_contact_height_m": opts.contact_height_m,
        "foot_contact_frames": slip["contact_frames"],
        "lowest_sole_m": slip["lowest_sole_m"],
        "ground_offset_range_m": [float(floor.min()), float(floor.max())],
        "max_joint_speed_rad_s": float(dq.max()),
        "root_z_range_m": [float(qpos[:, 2].min()), float(qpos[:, 2].max())],
        **self_penetration(ik_model if ik_model is not model else collision_model(), qpos),
        "wall_s": time.perf_counter() - t0,
    }
    return RetargetResult(qpos=qpos, fps=fps, report=report)


def shipped_retarget_for(source_path) -> str | None:
    """Manifest path of the shipped retarget of an AMP clip (``amp_humanoid_walk`` -> ``g1_from_amp_walk``)."""
    stem = Path(source_path).stem
    if not stem.startswith("amp_humanoid_"):
        return None
    return f"{g1.G1_MOTIONS_DIR}/amp_retarget/g1_from_amp_{stem[len('amp_humanoid_'):]}.csv"
