"""Synthetic AMP humanoid clips with known answers: the hinge angles, their rates and the root
motion are smooth functions of time, so the loader's angles, speeds and FK can be checked exactly.

Each clip starts from a standing pose and moves a few joints through a hard case (a hip flexed to
130 degrees, an arm swinging overhead, a joint passing within 3 degrees of gimbal lock, a full
2 pi twist of the root, a tucked backflip), keeping every joint inside its MJCF range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from isaacgymenvs.motion.hinge_chain import ChainAxes, chain_quat, quat_mul
from isaacgymenvs.motion.poselib import SkeletonMotion


@dataclass
class StressClip:
    """A clip and what the loader must recover from it (time along axis 0)."""

    motion: SkeletonMotion
    dof_pos: np.ndarray  # [T, D] the true hinge angles
    dof_vel: np.ndarray  # [T, D] their exact derivatives (rad/s)
    root_ang_vel_w: np.ndarray  # [T, 3] exact world angular velocity of the root


def _smooth_bump(t: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    """0 -> 1 -> 0 over [t0, t1] as ((1 - cos) / 2)^2 of a full period (its first two derivatives
    vanish at the ends, so finite differences see no kink), and its derivative."""
    w = 2 * math.pi / (t1 - t0)
    inside = (t >= t0) & (t <= t1)
    h = 0.5 * (1 - np.cos(w * (t - t0)))
    x = np.where(inside, h * h, 0.0)
    dx = np.where(inside, 2 * h * 0.5 * w * np.sin(w * (t - t0)), 0.0)
    return x, dx


def make_stress_clip(
    skeleton, case: str, fps: float = 60.0, duration: float = 2.0, path: str = "stress.npy"
) -> StressClip:
    """One of :data:`STRESS_CASES`, or ``stand`` (a motionless standing clip, for the evaluation's anchors)."""
    names = list(skeleton.dof_names)
    D = len(names)
    T = int(round(duration * fps)) + 1
    t = np.arange(T) / fps
    pos, vel = np.zeros((T, D)), np.zeros((T, D))
    # a natural stance: slightly bent knees and elbows keep every joint off its limit
    base = {"right_knee": 0.1, "left_knee": 0.1, "right_elbow": -0.3, "left_elbow": -0.3}
    for n, v in base.items():
        pos[:, names.index(n)] = v

    def move(joint: str, amount: float, t0: float = 0.2, t1: float | None = None):
        x, dx = _smooth_bump(t, t0, t1 if t1 is not None else duration - 0.2)
        d = names.index(joint)
        pos[:, d] += amount * x
        vel[:, d] += amount * dx

    yaw, yaw_rate = np.zeros(T), np.zeros(T)
    pitch, pitch_rate = np.zeros(T), np.zeros(T)
    height = np.full(T, 0.95)
    if case == "hip_flex_130":  # the backflip's tuck: hip_y passes -90 deg (the XYZ chain's gimbal lock)
        move("right_hip_y", math.radians(-130))
        move("left_hip_y", math.radians(-125))
        move("right_hip_x", math.radians(-8))
        move("left_hip_z", math.radians(6))
        move("right_knee", math.radians(120))
        move("left_knee", math.radians(110))
    elif case == "arm_overhead":  # a cartwheel's arms: abduction to 170 deg and forward flexion past vertical
        move("right_shoulder_x", math.radians(-170))
        move("left_shoulder_y", math.radians(-160))
        move("left_shoulder_z", math.radians(20))
        move("right_shoulder_z", math.radians(-15))
    elif case == "near_gimbal_lock":  # the abdomen leans to 87 deg about y while the others turn slowly
        move("abdomen_y", math.radians(87))
        move("abdomen_x", math.radians(25))
        move("abdomen_z", math.radians(-20))
        move("right_ankle_y", math.radians(40))
    elif case == "root_twist":  # a full turn of the root about z, at a constant rate
        yaw_rate[:] = 2 * math.pi / duration
        yaw = yaw_rate * t
        move("left_hip_y", math.radians(-40))
    elif case == "backflip":  # a tucked backflip: a full turn about y in the air, hips at 130 deg
        x, dx = _smooth_bump(t, 0.0, duration)
        # the pitch follows the smooth step 0 -> 2 pi (the integral of the bump, normalised)
        w = 2 * math.pi / duration
        u = t / duration
        pitch = -2 * math.pi * (u - (8 * np.sin(w * t) - np.sin(2 * w * t)) / (12 * math.pi))
        pitch_rate = -2 * math.pi / duration * (1 - (8 * np.cos(w * t) - 2 * np.cos(2 * w * t)) / 6)
        height = 1.0 + 0.6 * x
        for side in ("right", "left"):
            move(f"{side}_hip_y", math.radians(-130), 0.0, duration)
            move(f"{side}_knee", math.radians(130), 0.0, duration)
            move(f"{side}_shoulder_y", math.radians(-150), 0.0, duration)
    elif case == "stand":  # nothing moves: a clip whose every state is the same standing pose
        pass
    else:
        raise ValueError(f"unknown stress case {case!r}")

    lim = np.asarray(skeleton.dof_limits)
    assert np.all(pos >= lim[:, 0] - 1e-9) and np.all(pos <= lim[:, 1] + 1e-9), "a stress clip must stay in range"
    # local rotations body by body (the humanoid's rest rotations are the identity)
    B = len(skeleton.body_names)
    rot = np.zeros((T, B, 4))
    rot[..., 3] = 1.0  # xyzw identity
    groups: dict[int, list[int]] = {}
    for d, b in enumerate(skeleton.dof_body):
        groups.setdefault(b, []).append(d)
    axes = np.asarray(skeleton.dof_axis)
    for b, dofs in groups.items():
        q = chain_quat(pos[:, dofs], ChainAxes.from_vectors(axes[dofs]))  # wxyz
        rot[:, b] = q[:, [1, 2, 3, 0]]
    root_q = np.stack((np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)), -1)  # wxyz about z
    lean = 0.0 if case == "stand" else 0.025
    tilt = np.stack((np.cos(pitch / 2 + lean), 0 * t, np.sin(pitch / 2 + lean), 0 * t), -1)  # pitch, and a slight lean
    root_q = quat_mul(root_q, tilt)
    rot[:, 0] = root_q[:, [1, 2, 3, 0]]
    root_pos = np.stack((0.0 * t if case == "stand" else 0.3 * t, 0 * t, height), -1)
    motion = SkeletonMotion(
        path=path,
        fps=float(fps),
        node_names=list(skeleton.body_names),
        parents=np.asarray(skeleton.parents),
        local_translation=np.asarray(skeleton.offsets),
        rotation_xyzw=rot,
        root_translation=root_pos,
        source_dtype="float64",
    )
    ang_w = np.zeros((T, 3))
    ang_w[:, 2] = yaw_rate
    ang_w[:, 1] = pitch_rate  # pitch about y after a yaw of 0: only one of the two moves in any case
    return StressClip(motion, pos, vel, ang_w)


STRESS_CASES = ("hip_flex_130", "arm_overhead", "near_gimbal_lock", "root_twist", "backflip")
