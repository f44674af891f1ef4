"""Checking a resolved config before anything starts: every problem in one error, every key that
would be silently ignored named in a warning.

Each key of a composed config is one of:

* read by the trainer (the keys of ``cfg/task/*.yaml`` and ``cfg/train/*.yaml``);
* an IsaacGymEnvs key that has no effect here (:data:`NO_EFFECT`): accepted, with a one-line
  warning saying what to use instead, and dropped;
* a duplicate of a knob that exists elsewhere (:data:`REPLACED`): an error naming that knob (the
  action noise has one knob, the top-level ``sigma=``);
* anything else: an error naming the key and the closest known one.

``train.params.network`` is handed to rl_games' network builder as it is: only the keys this trainer
knows to be ignored or replaced are checked there (and ``disc``, which this trainer reads).
"""

from __future__ import annotations

import dataclasses
import difflib
from numbers import Real

NUM = (int, float)

#: params.config keys this trainer reads, with their types.
TRAIN_KEYS: dict[str, type | tuple] = {
    "name": str,
    "ppo": bool,
    "multi_gpu": bool,
    "mixed_precision": bool,
    "normalize_input": bool,
    "normalize_value": bool,
    "value_bootstrap": bool,
    "num_actors": int,
    "reward_shaper": dict,
    "normalize_advantage": bool,
    "gamma": NUM,
    "tau": NUM,
    "learning_rate": NUM,
    "lr_schedule": str,
    "kl_threshold": NUM,
    "max_epochs": int,
    "save_frequency": int,
    "grad_norm": NUM,
    "entropy_coef": NUM,
    "truncate_grads": bool,
    "e_clip": NUM,
    "horizon_length": int,
    "minibatch_size": int,
    "mini_epochs": int,
    "critic_coef": NUM,
    "clip_value": bool,
    "seq_len": int,
    "bounds_loss_coef": NUM,
    "amp_obs_demo_buffer_size": int,
    "amp_replay_buffer_size": int,
    "amp_replay_keep_prob": NUM,
    "amp_batch_size": int,
    "amp_minibatch_size": int,
    "disc_coef": NUM,
    "disc_logit_reg": NUM,
    "disc_grad_penalty": NUM,
    "disc_reward_scale": NUM,
    "disc_weight_decay": NUM,
    "disc_reward_type": str,
    "task_reward_w": NUM,
    "disc_reward_w": NUM,
    "eval_ref_size": int,
    "eval_agent_size": int,
    "player": dict,
    "weight_decay": NUM,
    "max_time_s": NUM,
    "max_unstable_share": NUM,
    "capture_update": bool,
    "eval_every": int,
    "eval_every_steps": int,
    "eval_envs": int,
    "eval_seed": int,
    "max_env_steps": int,
}

CHOICES = {"lr_schedule": ("constant", "adaptive", "linear"), "disc_reward_type": ("bce", "lsgan")}

#: params.config.player keys this trainer reads.
PLAYER_KEYS = {"games_num": int}

#: task.env keys that make_task reads besides AMPTaskConfig's fields (isaacgymenvs/tasks/__init__.py).
TASK_ENV_EXTRA_KEYS = (
    "controlFrequencyInv",
    "pdGains",
    "defaultJointPos",
    "motion_file",
    "motion_fps",
    "motion_trust",
    "motion_ground",
    "motion_root_vel_sigma",
)
#: task.sim keys the trainer reads.
TASK_SIM_KEYS = ("dt", "mujoco_timestep")
#: train.params keys the trainer reads.
TRAIN_PARAMS_KEYS = ("config", "network")
#: train.params.network.disc keys the trainer reads.
DISC_KEYS = ("units",)

#: IsaacGymEnvs' other top-level keys (cfg/config.yaml holds them at IsaacGymEnvs' defaults):
#: key -> (default, "error" or "warning" when another value is given, what to use here).
IGE_KEYS: dict[str, tuple[object, str, str]] = {
    "physics_engine": ("physx", "error", "the physics is MuJoCo: sim=mujoco (CPU) or sim=mujoco_warp (GPU)"),
    "pipeline": (
        "gpu",
        "error",
        "sim=mujoco rl_device=cpu runs everything on the CPU, sim=mujoco_warp the physics on the GPU",
    ),
    "multi_gpu": (
        False,
        "error",
        "one training runs on one device; a sweep spreads its trials over GPUs "
        "(resources: {gpu: 0.25} in cfg/sweep/*.yaml, make sweep)",
    ),
    "wandb_activate": (
        False,
        "error",
        "Weights & Biases is not wired in: runs are tracked in MLflow (tracking=mlflow, the default; make mlflow-ui)",
    ),
    "capture_video": (
        False,
        "error",
        "training records no video: play a checkpoint with test=True checkpoint=PATH "
        "video=FILE.gif, or render an export with python -m isaacgymenvs.sim2sim video=FILE.gif",
    ),
    "pbt": (
        "no_pbt",
        "error",
        "population-based training is a sweep here: make sweep SWEEP=pbt_cpu (Ray Tune PBT, cfg/sweep/pbt_cpu.yaml)",
    ),
    "graphics_device_id": (0, "warning", "rendering uses MuJoCo's offscreen context (MUJOCO_GL=egl picks the GPU)"),
    "num_threads": (4, "warning", "MuJoCo C steps the envs on this process's threads"),
    "solver_type": (1, "warning", "the contact solver is the MJCF's <option solver>"),
    "num_subscenes": (4, "warning", "there are no PhysX subscenes"),
    "force_render": (True, "warning", "rendering happens only with test=True (headless=False or video=FILE.gif)"),
    "wandb_group": ("", "warning", "wandb is not wired in (tracking=mlflow)"),
    "wandb_entity": ("", "warning", "wandb is not wired in (tracking=mlflow)"),
    "wandb_project": (
        "isaacgymenvs",
        "warning",
        "wandb is not wired in (tracking.experiment=NAME names the MLflow experiment)",
    ),
    "wandb_tags": ([], "warning", "wandb is not wired in (tracking=mlflow)"),
    "wandb_logcode_dir": ("", "warning", "wandb is not wired in (tracking=mlflow)"),
    "capture_video_freq": (1464, "warning", "training records no video"),
    "capture_video_len": (100, "warning", "training records no video"),
}

#: Top-level keys (cfg/config.yaml and its groups).
TOP_KEYS = (
    "task",
    "train",
    "tracking",
    "experiment",
    "num_envs",
    "seed",
    "torch_deterministic",
    "max_iterations",
    "max_time_s",
    "sim",
    "rl_device",
    "sim_device",
    "test",
    "checkpoint",
    "sigma",
    "test_steps",
    "video",
    "headless",
    "verbose",
    *IGE_KEYS,
    "task_name",
    "wandb_name",
)

_SUBSTEPS = (
    "MuJoCo runs round(sim.dt * controlFrequencyInv / physics timestep) physics steps per control "
    "step (6 for HumanoidAMP); set task.sim.mujoco_timestep to change the physics step"
)

#: IsaacGymEnvs keys accepted with a warning (they have no effect here): key -> what to use instead.
NO_EFFECT: dict[str, str] = {
    "torch_deterministic": "seed=N fixes every random draw of a run; CPU runs (sim=mujoco) repeat with the same seed",
    "task.env.envSpacing": "every env is its own MuJoCo world, there is no spacing to set",
    "task.env.cameraFollow": "test=True's viewer and video=FILE.gif follow the character",
    "task.env.enableDebugVis": "there is no debug drawing; video=FILE.gif (test=True) renders env 0",
    "task.env.pdControl": "the joints are always PD servos (gains: the MJCF's stiffness/damping, or task.env.pdGains)",
    "task.env.powerScale": "it scales torque control, which this trainer does not have (the joints are PD servos)",
    "task.env.asset": "the character's MJCF comes with the task (isaacgymenvs/task_registry.py, characters.py)",
    "task.env.plane": "the ground is the MJCF's floor geom",
    "task.sim.substeps": _SUBSTEPS,
    "task.sim.up_axis": "z is up in every MJCF",
    "task.sim.gravity": "gravity is the MJCF's <option gravity>",
    "task.sim.use_gpu_pipeline": "sim=mujoco_warp runs the physics on the GPU",
    "task.sim.physx": "the physics is MuJoCo: sim=mujoco (CPU) or sim=mujoco_warp (GPU), task.sim.mujoco_timestep",
    "task.task": "there is no domain randomization (task.task.randomize)",
    "train.params.seed": "use seed=N",
    "train.params.algo": "the algorithm is always AMP on rl_games' a2c_continuous",
    "train.params.model": "the model is always rl_games' continuous_a2c_logstd",
    "train.params.load_checkpoint": "use checkpoint=PATH",
    "train.params.load_path": "use checkpoint=PATH",
    "train.params.network.name": "the policy is always rl_games' actor_critic network, the discriminator train.params.network.disc",
    "train.params.network.mlp.regularizer": "rl_games reads no regularizer; use train.params.config.weight_decay",
    "train.params.network.disc.activation": "the discriminator's hidden layers are ReLU",
    "train.params.network.disc.initializer": "the discriminator starts as IsaacGymEnvs' (zero biases, logit weights U(-1, 1))",
    "train.params.config.env_name": "the environment is the task (task=NAME)",
    "train.params.config.full_experiment_name": "use experiment=NAME (runs/<NAME>_<date>/)",
    "train.params.config.score_to_win": "training stops at max_iterations, max_time_s or max_env_steps",
    "train.params.config.save_best_after": "nn/<name>_best.pth is the best eval/score of the deterministic "
    "evaluation (train.params.config.eval_every)",
    "train.params.config.print_stats": "one console line is printed per epoch",
    "train.params.config.normalize_amp_input": "the discriminator always normalizes its input (running mean/std)",
    "train.params.config.player.deterministic": "test=True always plays the policy's mean action",
}

#: Duplicates of a knob that exists elsewhere: errors naming the one way to set it.
REPLACED: dict[str, str] = {
    "train.params.config.sigma_scheme": "the action noise is set by sigma=fixed|learned|<std> (cfg/config.yaml)",
    "train.params.network.space.continuous.fixed_sigma": "the action std is always one state-independent log std; "
    "set sigma=fixed|learned (cfg/config.yaml)",
    "train.params.network.space.continuous.learn_sigma": "use sigma=learned (or sigma=fixed) (cfg/config.yaml)",
    "train.params.config.seq_length": "use train.params.config.seq_len (handed to rl_games as seq_length)",
}


class ConfigError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        # one problem: one line; several: one line each, all at once
        super().__init__(
            f"invalid config: {problems[0]}"
            if len(problems) == 1
            else "invalid config:\n  - " + "\n  - ".join(problems)
        )


def _type_ok(v, t) -> bool:
    if t is bool:
        return isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if t == NUM:
        return isinstance(v, Real) and not isinstance(v, bool)
    return isinstance(v, t)


def _unknown(path: str, key: str, known) -> str:
    """One line: the unknown key and the closest known one."""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{path}.{key}: unknown key{hint}" if path else f"{key}: unknown key{hint}"


def _check_keys(section: dict, path: str, known, problems: list, warnings: list, drop: bool = True) -> None:
    """Unknown keys of ``section`` (at ``path``) are problems, replaced ones too; no-effect ones are
    warnings (and, with ``drop``, removed from ``section``)."""
    if not isinstance(section, dict):
        return
    for k in list(section):
        full = f"{path}.{k}" if path else k
        if known is not None and k in known:
            continue
        if full in REPLACED:
            problems.append(f"{full}: not a setting here: {REPLACED[full]}")
        elif full in NO_EFFECT:
            warnings.append(no_effect_warning(full))
            if drop:
                del section[k]
        elif known is not None and k not in known:
            others = [n.rsplit(".", 1)[1] for n in NO_EFFECT if n.rsplit(".", 1)[0] == path]
            problems.append(_unknown(path, k, list(known) + others))


def no_effect_warning(key: str) -> str:
    return f"warning: {key} has no effect here (an IsaacGymEnvs key): {NO_EFFECT[key]}"


def task_env_keys() -> tuple[str, ...]:
    """Every task.env key the task reads: AMPTaskConfig's fields and what make_task reads."""
    from isaacgymenvs.tasks.amp_task import AMPTaskConfig

    return tuple(f.name for f in dataclasses.fields(AMPTaskConfig)) + TASK_ENV_EXTRA_KEYS


def check_config(c: dict) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of the key names of a resolved config (a plain dict, as
    ``OmegaConf.to_container(cfg, resolve=True)`` gives it), outside ``train.params.config``'s own
    keys (:func:`check_train_config`, run after the trainer's adjustments). No-effect keys are
    removed from ``c`` (they are warned about), so that what runs is what the config shows."""
    from isaacgymenvs.task_registry import UnknownTaskError, get_task

    problems: list[str] = []
    warnings: list[str] = []
    _check_keys(c, "", TOP_KEYS, problems, warnings, drop=False)
    for key, (default, kind, use) in IGE_KEYS.items():
        if key in c and c[key] != default:
            if kind == "error":  # what the user asked for cannot happen here: say what does it
                problems.append(f"{key}={c[key]}: an IsaacGymEnvs setting that does not exist here; {use}")
            else:
                warnings.append(f"warning: {key}={c[key]} has no effect here (an IsaacGymEnvs key): {use}")
    if c.get("task_name") not in (None, (c.get("task") or {}).get("name")):
        warnings.append(f"warning: task_name={c['task_name']} has no effect: the task is task=NAME")
    if c.get("torch_deterministic"):
        warnings.append(no_effect_warning("torch_deterministic"))
    task = c.get("task") or {}
    _check_keys(task, "task", ("name", "env", "sim"), problems, warnings)
    try:
        get_task(task.get("name"))
    except UnknownTaskError as e:
        problems.append(f"task.name: {e}")
    _check_keys(task.get("env") or {}, "task.env", task_env_keys(), problems, warnings)
    _check_keys(task.get("sim") or {}, "task.sim", TASK_SIM_KEYS, problems, warnings)
    params = (c.get("train") or {}).get("params") or {}
    _check_keys(params, "train.params", TRAIN_PARAMS_KEYS, problems, warnings)
    net = params.get("network") or {}
    _check_keys(net, "train.params.network", None, problems, warnings)
    _check_keys(net.get("mlp") or {}, "train.params.network.mlp", None, problems, warnings)
    _check_keys(net.get("disc") or {}, "train.params.network.disc", DISC_KEYS, problems, warnings)
    _check_keys(
        (net.get("space") or {}).get("continuous") or {},
        "train.params.network.space.continuous",
        None,
        problems,
        warnings,
    )
    train_cfg = params.get("config") or {}
    # params.config's own keys are checked by check_train_config; here its no-effect keys are dropped
    for k in list(train_cfg):
        full = f"train.params.config.{k}"
        if full in NO_EFFECT:
            warnings.append(no_effect_warning(full))
            del train_cfg[k]
    _check_keys(train_cfg.get("player") or {}, "train.params.config.player", PLAYER_KEYS, problems, warnings)
    env = task.get("env") or {}
    if "num_actors" in train_cfg and "numEnvs" in env and train_cfg["num_actors"] != env["numEnvs"]:
        problems.append(
            f"train.params.config.num_actors ({train_cfg['num_actors']}) must be the number of envs "
            f"({env['numEnvs']}); set num_envs=N"
        )
    return problems, warnings


def check_train_config(cfg: dict, num_envs: int, has_rnn: bool, prefix: str = "train.params.config") -> list[str]:
    """Return every problem found (empty when the config is usable). IsaacGymEnvs keys that have no
    effect (:data:`NO_EFFECT`) are no problem here (:func:`check_config` warns about them)."""
    problems = []
    for k, v in cfg.items():
        full = f"{prefix}.{k}"
        if full in REPLACED:
            problems.append(f"{full}: not a setting here: {REPLACED[full]}")
            continue
        if full in NO_EFFECT:
            continue
        if k not in TRAIN_KEYS:
            others = [n.rsplit(".", 1)[1] for n in NO_EFFECT if n.rsplit(".", 1)[0] == prefix]
            problems.append(_unknown(prefix, k, list(TRAIN_KEYS) + others))
            continue
        t = TRAIN_KEYS[k]
        if not _type_ok(v, t):
            tname = "number" if t == NUM else t.__name__
            problems.append(f"{prefix}.{k}: expected a {tname}, got {v!r}")
        elif k in CHOICES and v not in CHOICES[k]:
            problems.append(f"{prefix}.{k}: must be one of {CHOICES[k]}, got {v!r}")
    if problems:
        return problems

    def need(k, ok, what):
        if k in cfg and not ok(cfg[k]):
            problems.append(f"{prefix}.{k}: {what}, got {cfg[k]!r}")

    need("gamma", lambda x: 0 < x <= 1, "must lie in (0, 1]")
    need("tau", lambda x: 0 <= x <= 1, "must lie in [0, 1]")
    need("learning_rate", lambda x: x > 0, "must be positive")
    need("e_clip", lambda x: x > 0, "must be positive")
    need("amp_replay_keep_prob", lambda x: 0 <= x <= 1, "must lie in [0, 1]")
    need("max_unstable_share", lambda x: 0 <= x <= 1, "must lie in [0, 1]")
    for k in ("eval_every", "eval_every_steps", "eval_envs", "max_env_steps", "save_frequency"):
        need(k, lambda x: x >= 0, "must not be negative (0 = off)")
    for k in (
        "horizon_length",
        "minibatch_size",
        "mini_epochs",
        "max_epochs",
        "amp_obs_demo_buffer_size",
        "amp_replay_buffer_size",
        "amp_batch_size",
        "amp_minibatch_size",
        "seq_len",
        "eval_ref_size",
        "eval_agent_size",
    ):
        need(k, lambda x: x >= 1, "must be at least 1")
    for k in (
        "bounds_loss_coef",
        "disc_coef",
        "disc_logit_reg",
        "disc_grad_penalty",
        "disc_weight_decay",
        "critic_coef",
    ):
        need(k, lambda x: x >= 0, "must not be negative")
    if problems:
        return problems
    horizon = cfg.get("horizon_length", 16)
    mb = cfg.get("minibatch_size", 1)
    batch = num_envs * horizon
    if batch % mb:
        problems.append(
            f"{prefix}.minibatch_size ({mb}) must divide num_envs x horizon_length ({num_envs} x {horizon} = {batch})"
        )
    seq = cfg.get("seq_len", 4)
    if has_rnn and horizon % seq:
        problems.append(f"{prefix}.seq_len ({seq}) must divide horizon_length ({horizon}) with an LSTM policy")
    if has_rnn and mb % seq:
        problems.append(f"{prefix}.seq_len ({seq}) must divide minibatch_size ({mb}) with an LSTM policy")
    return problems
