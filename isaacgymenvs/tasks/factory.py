"""``make_task``: ``task=<name>`` builds the character model, the simulator, the MotionLib and the task."""

from __future__ import annotations

import dataclasses

from isaacgymenvs import characters
from isaacgymenvs.motion.motion_lib import MotionLib
from isaacgymenvs.motion.skeleton import skeleton_from_model
from isaacgymenvs.sim import make_backend
from isaacgymenvs.task_registry import get_task, resolve_motion_file
from isaacgymenvs.tasks.amp_task import AMPTask, AMPTaskConfig


def task_config(env_cfg: dict) -> AMPTaskConfig:
    """Pick the AMPTaskConfig keys out of a task's ``env:`` section (other keys are for the sim)."""
    names = {f.name for f in dataclasses.fields(AMPTaskConfig)}
    kw = {k: v for k, v in env_cfg.items() if k in names}
    for k in ("contactBodies", "keyBodies"):
        if k in kw:
            kw[k] = tuple(kw[k])
    return AMPTaskConfig(**kw)


def default_pose(model, spec, skeleton, overrides: dict | None) -> tuple:
    """``(root height, joint angles [D])`` of the Default reset: the character's default pose with
    ``task.env.defaultJointPos`` (joint name -> angle in rad) on top; every name must be a joint
    and every angle inside its range."""
    root_h, dof = characters.default_pose(model, spec)
    dof = dof.copy()
    for name, angle in (overrides or {}).items():
        if name not in skeleton.dof_names:
            raise ValueError(
                f"task.env.defaultJointPos: {name!r} is not a joint of {spec.name} "
                f"(joints: {', '.join(skeleton.dof_names)})"
            )
        lo, hi = (float(x) for x in skeleton.dof_limits[skeleton.dof_names.index(name)])
        if not isinstance(angle, (int, float)) or not lo - 1e-6 <= angle <= hi + 1e-6:
            raise ValueError(
                f"task.env.defaultJointPos.{name}: must be an angle in its range [{lo:.4f}, {hi:.4f}] rad, "
                f"got {angle!r}"
            )
        dof[skeleton.dof_names.index(name)] = float(angle)
    return root_h, dof


def make_task(
    task_name: str,
    env_cfg: dict,
    sim: str = "mujoco",
    device: str = "cpu",
    seed: int = 0,
    motion_lib: MotionLib | None = None,
    **sim_kw,
) -> AMPTask:
    """The task ``task_name`` with ``env_cfg`` (its ``env:`` section, plus ``sim_dt`` and
    ``mujoco_timestep``) on backend ``sim``. ``motion_lib``: share the clips of another task
    (the evaluation's task shares the training task's) instead of loading them again."""
    task_spec = get_task(task_name)  # UnknownTaskError (a ValueError) names the known tasks
    character, motion_dir = task_spec.character.name, task_spec.clip_dir
    cfg = task_config(env_cfg)
    spec = task_spec.character
    model = characters.load_model(spec, pd_gains=env_cfg.get("pdGains"))
    if env_cfg.get("mujoco_timestep"):
        # A coarser physics step than the MJCF's (e.g. 1/120 s, Isaac Gym's rate) trades accuracy for speed.
        model.opt.timestep = float(env_cfg["mujoco_timestep"])
    skeleton = skeleton_from_model(model)
    if motion_lib is None:
        motion_file = resolve_motion_file(env_cfg["motion_file"], motion_dir)
        motion_lib = MotionLib.from_file(
            motion_file,
            skeleton,
            model,
            cfg.keyBodies,
            device=device,
            trust=bool(env_cfg.get("motion_trust", False)),
            ground=env_cfg.get("motion_ground", "rolling_min"),
            fps=env_cfg.get("motion_fps"),
            root_vel_sigma=float(env_cfg.get("motion_root_vel_sigma") or 0.0),
        )
    control_dt = float(env_cfg.get("controlFrequencyInv", 2)) * float(env_cfg.get("sim_dt", 1.0 / 60.0))
    backend = make_backend(sim, model, cfg.numEnvs, control_dt, device=device, **sim_kw)
    task = AMPTask(
        cfg,
        backend,
        motion_lib,
        skeleton,
        seed=seed,
        default_pose=default_pose(model, spec, skeleton, env_cfg.get("defaultJointPos")),
    )
    kp, kd = characters.pd_gains_arrays(model)
    task.deploy_extra = {
        "character": character,
        # the training clip, as the config named it (sim2sim's default reference)
        "motion_file": str(env_cfg["motion_file"]),
        "motion_ground": env_cfg.get("motion_ground", "rolling_min"),
        "motion_fps": env_cfg.get("motion_fps"),
        "motion_root_vel_sigma": float(env_cfg.get("motion_root_vel_sigma") or 0.0),
        "pd_gains": {
            "kp": kp.tolist(),
            "kd": kd.tolist(),
            "torque_limit": [float(x) if x != float("inf") else None for x in characters.torque_limits(model)],
        },
        "physics_timestep_s": float(model.opt.timestep),
    }
    return task
