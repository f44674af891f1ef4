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

The code follows the steps: :mod:`~isaacgymenvs.motion.retarget_targets` (1-3, the targets),
:mod:`~isaacgymenvs.motion.ik` (4, the generic damped least-squares solver), this module (4's G1
set-up, 5, the pipeline :func:`retarget_to_g1`) and :mod:`~isaacgymenvs.motion.retarget_report`
(the reported quality). The names of those modules that callers used from here are re-exported.

Imports: numpy, scipy, mujoco and ``isaacgymenvs.motion`` (``g1_csv``, ``g1_model``, ``ik``, ``poselib``,
``retarget_targets``, ``retarget_report``) only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from isaacgymenvs.motion.g1_csv import CSV_DECIMALS, G1_MOTIONS_DIR
from isaacgymenvs.motion.g1_model import (
    collision_model,
    foot_sole_heights,
    ground_offset,
    joint_limits,
    keypoint_body_ids,
    load_g1_model,
    stand_qpos,
)
from isaacgymenvs.motion.ik import IKSolverOptions, KeypointIK, quat_error_rotvec, solve_frames
from isaacgymenvs.motion.poselib import SkeletonMotion
from isaacgymenvs.motion.retarget_report import (
    TRACKED,
    compare_with,
    foot_slip,
    keypoint_errors,
    quality_report,
    self_penetration,
)
from isaacgymenvs.motion.retarget_targets import (
    AMP_BODY,
    AMP_FOOT_CORNERS,
    ORI_WEIGHTS,
    POS_WEIGHTS,
    Targets,
    build_targets,
    check_source,
    held_pairs,
    source_fk,
    source_floor,
)

__all__ = [
    # this module: the G1 pipeline
    "IKOptions",
    "RetargetResult",
    "g1_ik",
    "solve_sequence",
    "retarget_to_g1",
    "shipped_retarget_for",
    # re-exported: targets (retarget_targets), solver (ik), report (retarget_report), model (g1_model)
    "AMP_BODY",
    "AMP_FOOT_CORNERS",
    "POS_WEIGHTS",
    "ORI_WEIGHTS",
    "Targets",
    "source_fk",
    "held_pairs",
    "check_source",
    "source_floor",
    "build_targets",
    "IKSolverOptions",
    "KeypointIK",
    "quat_error_rotvec",
    "solve_frames",
    "TRACKED",
    "keypoint_errors",
    "foot_slip",
    "compare_with",
    "self_penetration",
    "quality_report",
    "collision_model",
]


@dataclass
class IKOptions(IKSolverOptions):
    """Options of :func:`retarget_to_g1`: the solver's (:class:`~isaacgymenvs.motion.ik.IKSolverOptions`:
    ``prev_weight``, ``nominal_weight``, ``damping``, ``first_iters``, ``iters``, ``tol``,
    ``min_distance_m``, ``collision_weight``) and the pipeline's below."""

    foot_clearance: bool = True  # foot target heights from the source sole clearance (build_targets)
    dedup: bool = True  # keep only distinct poses of a clip that holds each pose two frames
    ground_window_s: float = 0.8
    ground_sigma_s: float = 0.15
    contact_height_m: float = 0.02
    planted_speed_m_s: float = 0.2  # source contact-point speed (scaled frame) below which a foot is planted


@dataclass
class RetargetResult:
    qpos: np.ndarray  # [T, 36] grounded, quaternion wxyz
    fps: float
    report: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# IK on the G1
# ---------------------------------------------------------------------------------------


def g1_ik(model: mujoco.MjModel, targets: Targets, opts: IKSolverOptions) -> KeypointIK:
    """The solver for ``targets`` on the G1: keypoint bodies (:data:`~isaacgymenvs.motion.g1_model.G1_KEYPOINTS`),
    :data:`POS_WEIGHTS` / :data:`ORI_WEIGHTS`, the joint limits rounded inward to the CSV's decimals,
    and the ``stand`` keyframe as the nominal pose."""
    _, pos_ids = keypoint_body_ids(model, targets.pos_names)
    _, ori_ids = keypoint_body_ids(model, targets.ori_names)
    lim = joint_limits(model)
    # clamp to limits rounded inward to the CSV precision, so a written value stays inside
    lo = np.ceil(lim[:, 0] * 10**CSV_DECIMALS - 1e-6) / 10**CSV_DECIMALS
    hi = np.floor(lim[:, 1] * 10**CSV_DECIMALS + 1e-6) / 10**CSV_DECIMALS
    return KeypointIK(
        model,
        pos_ids,
        [POS_WEIGHTS[n] for n in targets.pos_names],
        ori_ids,
        [ORI_WEIGHTS[n] for n in targets.ori_names],
        lo,
        hi,
        stand_qpos(model)[7:],
        opts,
    )


def solve_sequence(model: mujoco.MjModel, targets: Targets, opts: IKSolverOptions) -> np.ndarray:
    """Frame-by-frame IK, warm-started; returns qpos ``[T, 36]`` (wxyz, not grounded). Frame 0
    starts from the ``stand`` keyframe at the source root pose."""
    ik = g1_ik(model, targets, opts)
    q = stand_qpos(model)
    q[:3] = targets.pos[0, targets.pos_names.index("pelvis")]
    q[3:7] = targets.quat_wxyz[0, targets.ori_names.index("pelvis")]
    return solve_frames(ik, q, targets.pos, targets.quat_wxyz, opts.first_iters, opts.iters)


# ---------------------------------------------------------------------------------------
# The whole pipeline
# ---------------------------------------------------------------------------------------


def retarget_to_g1(
    sm: SkeletonMotion, model: mujoco.MjModel | None = None, opts: IKOptions | None = None
) -> RetargetResult:
    """Retarget an AMP humanoid clip to the G1 (module docstring); returns grounded qpos and a report."""
    t0 = time.perf_counter()
    opts = opts or IKOptions()
    model = model if model is not None else load_g1_model()
    ik_model = collision_model(max(0.02, 2 * opts.min_distance_m)) if opts.min_distance_m > 0 else model
    check_source(sm)
    dedup = opts.dedup and held_pairs(sm)
    src = sm
    fps = float(sm.fps)
    if dedup:
        src = SkeletonMotion(
            path=sm.path,
            fps=fps / 2,
            node_names=sm.node_names,
            parents=sm.parents,
            local_translation=sm.local_translation,
            rotation_xyzw=sm.rotation_xyzw[::2],
            root_translation=sm.root_translation[::2],
            source_dtype=sm.source_dtype,
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
        lift = np.maximum(-foot_sole_heights(model, qpos).min(axis=1), 0.0)
        lift = np.maximum(lift, gaussian_filter1d(maximum_filter1d(lift, 3), 1.0, mode="nearest"))
        qpos[:, 2] += lift
        floor -= lift
    else:
        floor = ground_offset(model, qpos, fps, opts.ground_window_s, opts.ground_sigma_s)
        qpos[:, 2] -= floor
    penetration_model = ik_model if ik_model is not model else collision_model()
    report = quality_report(
        model, qpos, fps, sm, dedup, targets, err, floor, opts.contact_height_m, penetration_model, t0
    )
    return RetargetResult(qpos=qpos, fps=fps, report=report)


def shipped_retarget_for(source_path) -> str | None:
    """Manifest path of the shipped retarget of an AMP clip (``amp_humanoid_walk`` -> ``g1_from_amp_walk``)."""
    stem = Path(source_path).stem
    if not stem.startswith("amp_humanoid_"):
        return None
    return f"{G1_MOTIONS_DIR}/amp_retarget/g1_from_amp_{stem[len('amp_humanoid_') :]}.csv"
