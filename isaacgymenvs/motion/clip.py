"""A clip in the model's coordinates: root pose, hinge angles and their velocities.

Conversion from a source skeleton maps joints **by name**: each model body that carries
hinges takes the local rotation of the clip node of the same name.

* Three hinges in one body (x, y, z in the model's order) get an exact **Euler decomposition**
  in that axis order (``'XYZ'`` for the AMP humanoid), on the branch and 2 pi shifts that keep
  the clip inside the joint limits (:mod:`isaacgymenvs.motion.joint_angles`). This reproduces the
  clip's body positions to float precision; the exponential map that IsaacGymEnvs uses is
  off by up to 0.64 m in MuJoCo.
* One hinge gets the twist of the rotation about its axis.

Hinge velocities come from the local angular velocity (central differences of the local
rotations) through the chain's rate Jacobian, damped near gimbal lock. Root velocities are
central finite differences at the clip's own fps (the 60 fps AMP clips hold each 30 Hz pose for
two frames; a central difference over the neighbours gives the true speed there, a forward
difference would alternate 0 and 2x), optionally smoothed as IsaacGymEnvs does.

Which reader a clip file takes (a G1 ``.csv`` or a poselib ``.npy``) is :mod:`isaacgymenvs.motion.loader`'s.

Imports: numpy, scipy, mujoco and ``isaacgymenvs.motion`` (``joint_angles``, ``poselib``; ``skeleton``
for types only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d

from isaacgymenvs.motion.joint_angles import HingeMotion, hinge_motion
from isaacgymenvs.motion.poselib import ClipError, SkeletonMotion

if TYPE_CHECKING:  # the torch Skeleton, or any description with the same fields (sim2sim runs without torch)
    from isaacgymenvs.motion.skeleton import Skeleton


@dataclass
class MotionClip:
    """Model-space clip; arrays are float64 numpy, time along axis 0."""

    name: str
    fps: float
    root_pos: np.ndarray  # [T, 3] world
    root_quat_wxyz: np.ndarray  # [T, 4] world, sign-consistent
    dof_pos: np.ndarray  # [T, D] hinge angles, model DoF order
    root_lin_vel: np.ndarray  # [T, 3] world
    root_ang_vel: np.ndarray  # [T, 3] world
    dof_vel: np.ndarray  # [T, D]
    joint_limit_violations: int = 0
    ground_offset_m: np.ndarray | None = None  # [T] height subtracted from the root

    @property
    def num_frames(self) -> int:
        return int(self.root_pos.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.num_frames - 1) / self.fps

    def qpos(self) -> np.ndarray:
        """MuJoCo qpos per frame ``[T, 7 + D]`` (free joint: xyz, then quaternion wxyz)."""
        return np.concatenate((self.root_pos, self.root_quat_wxyz, self.dof_pos), axis=1)


def hinge_angles_from_local_rotations(sm: SkeletonMotion, skeleton: "Skeleton") -> HingeMotion:
    """Map the clip's local rotations onto the model's hinges, by body name (:mod:`joint_angles`):
    angles on the branch inside the joint limits, rates from the local angular velocity."""
    model_bodies = {skeleton.body_names[b] for b in skeleton.dof_body}
    root_name = skeleton.body_names[0]
    missing = sorted((model_bodies | {root_name}) - set(sm.node_names))
    extra = sorted(set(sm.node_names) - set(skeleton.body_names))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"model bodies missing from the clip: {missing}")
        if extra:
            parts.append(f"clip joints not in the model: {extra}")
        raise ClipError(sm.path, "clip joints do not match the model (" + "; ".join(parts) + ")")
    if sm.parents[sm.node_names.index(root_name)] != -1:
        raise ClipError(sm.path, f"the clip's root is not {root_name!r}")
    local = {}
    for name in model_bodies:
        xyzw = sm.rotation_xyzw[:, sm.node_names.index(name)].astype(np.float64)
        local[name] = np.concatenate((xyzw[:, 3:4], xyzw[:, :3]), axis=1)
    try:
        return hinge_motion(local, skeleton, sm.fps)
    except ValueError as e:  # hinges the mapping does not support
        raise ClipError(sm.path, str(e)) from None


def angular_velocity_world(q_wxyz: np.ndarray, fps: float) -> np.ndarray:
    """World angular velocity ``[T, 3]`` of rotations ``q_wxyz [T, 4]`` (wxyz, sign-consistent) at ``fps``:
    omega_w = 2 * vec(dq/dt * conj(q)), with a central difference for dq/dt."""
    dq = np.gradient(q_wxyz, axis=0) * fps
    w, x, y, z = q_wxyz.T
    dw, dx, dy, dz = dq.T
    # vector part of dq * conj(q)
    ox = -dw * x + dx * w - dy * z + dz * y
    oy = -dw * y + dx * z + dy * w - dz * x
    oz = -dw * z - dx * y + dy * x + dz * w
    return 2.0 * np.stack((ox, oy, oz), axis=-1)


def _geom_lowest_z(model: mujoco.MjModel, data: mujoco.MjData, geoms: np.ndarray) -> float:
    low = np.inf
    for g in geoms:
        c = data.geom_xpos[g]
        R = data.geom_xmat[g].reshape(3, 3)
        size = model.geom_size[g]
        t = model.geom_type[g]
        if t == mujoco.mjtGeom.mjGEOM_SPHERE:
            z = c[2] - size[0]
        elif t == mujoco.mjtGeom.mjGEOM_CAPSULE:
            z = c[2] - abs(R[2, 2]) * size[1] - size[0]
        elif t == mujoco.mjtGeom.mjGEOM_BOX:
            z = c[2] - np.abs(R[2, :]) @ size
        else:
            z = c[2] - model.geom_rbound[g]
        low = min(low, z)
    return float(low)


def lowest_point_per_frame(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Height of the lowest point of the character's collision geoms in each frame ``[T]``."""
    data = mujoco.MjData(model)
    geoms = np.array(
        [
            g
            for g in range(model.ngeom)
            if model.geom_bodyid[g] != 0 and model.geom_contype[g] | model.geom_conaffinity[g]
        ]
    )
    out = np.empty(len(qpos))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = _geom_lowest_z(model, data, geoms)
    return out


def clip_from_skeleton_motion(
    sm: SkeletonMotion,
    skeleton: "Skeleton",
    model: mujoco.MjModel | None = None,
    ground: str = "rolling_min",
    ground_window_s: float = 1.0,
) -> MotionClip:
    """Convert a source clip to model coordinates.

    ``ground``: ``"none"`` keeps the root height as stored. ``"rolling_min"`` (needs ``model``)
    removes the clip's ground penetration and drift: the lowest collision point of each frame,
    its rolling minimum over ``ground_window_s`` (so flight phases stay in the air) and a light
    smoothing give the local floor height, which is subtracted from the root height.
    """
    hinges = hinge_angles_from_local_rotations(sm, skeleton)
    dof_pos = hinges.dof_pos
    root_name = skeleton.body_names[0]
    q_root = sm.rotation_xyzw[:, sm.node_names.index(root_name)]
    root_quat = np.concatenate((q_root[:, 3:4], q_root[:, :3]), axis=1)
    root_pos = sm.root_translation.copy()
    offset = None
    if ground not in ("none", "rolling_min"):
        raise ValueError(f"ground must be 'none' or 'rolling_min', got {ground!r}")
    if ground == "rolling_min":
        if model is None:
            raise ValueError("ground='rolling_min' needs the MuJoCo model")
        low = lowest_point_per_frame(model, np.concatenate((root_pos, root_quat, dof_pos), axis=1))
        win = max(1, int(round(ground_window_s * sm.fps)) | 1)
        floor = minimum_filter1d(low, size=win, mode="nearest")
        floor = gaussian_filter1d(floor, sigma=max(1.0, 0.25 * sm.fps), mode="nearest")
        root_pos[:, 2] -= floor
        offset = floor
    lim = np.asarray(skeleton.dof_limits)
    violations = int(np.sum((dof_pos < lim[:, 0] - 1e-6) | (dof_pos > lim[:, 1] + 1e-6)))
    name = sm.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    root_lin_vel = np.gradient(root_pos, axis=0) * sm.fps
    root_ang_vel = angular_velocity_world(root_quat, sm.fps)
    return MotionClip(
        name=name,
        fps=sm.fps,
        root_pos=root_pos,
        root_quat_wxyz=root_quat,
        dof_pos=dof_pos,
        root_lin_vel=root_lin_vel,
        root_ang_vel=root_ang_vel,
        dof_vel=hinges.dof_vel,
        joint_limit_violations=violations,
        ground_offset_m=offset,
    )


def smooth_root_velocities(clip: MotionClip, sigma_frames: float) -> MotionClip:
    """The root velocities smoothed by a Gaussian of ``sigma_frames`` (IsaacGymEnvs: 2); 0 = as is."""
    if sigma_frames > 0:
        clip.root_lin_vel = gaussian_filter1d(clip.root_lin_vel, sigma_frames, axis=0, mode="nearest")
        clip.root_ang_vel = gaussian_filter1d(clip.root_ang_vel, sigma_frames, axis=0, mode="nearest")
    return clip
