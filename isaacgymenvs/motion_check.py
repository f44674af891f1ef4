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

Imports: ``characters`` and ``motion`` (it sits above both; the CLI and tests call it).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from isaacgymenvs.characters import actuator_dof_index
from isaacgymenvs.motion.joint_angles import limit_excess

#: Radians a joint may lie past its range before ``check`` fails (genuine mocap excursions pass).
LIMIT_TOL = 0.3
#: Largest hinge rate of a clip (rad/s) that ``check`` accepts.
MAX_JOINT_SPEED = 30.0
#: Largest joint speed (rad/s) one control step after a reference state was written.
MAX_STEP_SPEED = 30.0

_BAD_STATE_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQPOS)


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
        return {"max": round(float(self.value), 6), "unit": unit, "frame": self.frame, "joint": self.joint,
                "bound": self.bound, "ok": self.ok}


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


def step_report(model: mujoco.MjModel, qpos: np.ndarray, qvel: np.ndarray, control_dt: float,
                dof_names, bound: float = MAX_STEP_SPEED) -> dict:
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


def check_clip(clip, model: mujoco.MjModel, skeleton, control_dt: float, limit_tol: float = LIMIT_TOL,
               max_joint_speed: float = MAX_JOINT_SPEED, max_step_speed: float = MAX_STEP_SPEED) -> dict:
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
    what = {"limits": "past its range by", "speeds": "moves at", "step": "reaches, one control step after the reference state,"}
    for key in ("limits", "speeds", "step"):
        r = report[key]
        if not r["ok"]:
            if key == "step" and r.get("unstable_count"):
                return (f"{path}: {r['unstable_count']} reference states make MuJoCo unstable (first at frame "
                        f"{r['unstable_frames'][0]}); the clip is not usable as it is")
            return (f"{path}: joint {r['joint']} {what[key]} {r['max']:.3g} {r['unit']} at frame {r['frame']} "
                    f"(bound {r['bound']:g}); see README 'Motion clips'")
    return None
