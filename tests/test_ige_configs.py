"""IsaacGymEnvs' other HumanoidAMP configs: train=HumanoidAMPPPOLowGP, task=HumanoidAMPHands, and
the Default pose (the T-pose IsaacGymEnvs starts its Default and Hybrid resets from); our Fast train
configs (HumanoidAMPPPOFast, G1AMPPPOFast); the task registry; every config key read, unknown keys errors, ignored IsaacGymEnvs keys warnings, one sigma knob."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from isaacgymenvs import train as train_mod
from isaacgymenvs.learning.config_check import ConfigError
from isaacgymenvs.tasks import make_task
from tests.helpers.training import cli, make_cfg


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize(
    "variant,base,changes",
    [
        # IsaacGymEnvs' config for hop, backflip and cartwheel
        (["train=HumanoidAMPPPOLowGP"], [], {"params.config.disc_grad_penalty": (5, 0.2)}),
        # the configs tuned for wall time to quality (BENCHMARKS.md, "time to quality")
        (["train=HumanoidAMPPPOFast"], [], {"params.config.learning_rate": (5e-5, 1e-4)}),
        (["task=G1AMP", "train=G1AMPPPOFast"], ["task=G1AMP"], {"params.config.learning_rate": (5e-5, 1e-4)}),
    ],
    ids=["LowGP", "HumanoidFast", "G1Fast"],
)
def test_a_train_variant_is_its_base_with_only_its_own_changes(variant, base, changes):
    base_cfg = _flat(OmegaConf.to_container(make_cfg(*base).train, resolve=True))
    variant_cfg = _flat(OmegaConf.to_container(make_cfg(*variant).train, resolve=True))
    assert {k for k in base_cfg.keys() | variant_cfg.keys() if base_cfg.get(k) != variant_cfg.get(k)} == set(changes)
    for key, (was, now) in changes.items():
        assert (base_cfg[key], variant_cfg[key]) == (was, now)


@pytest.mark.slow
def test_hands_task_lets_the_hands_touch_the_ground(humanoid):
    c = OmegaConf.to_container(make_cfg("task=HumanoidAMPHands").task, resolve=True)
    assert c["name"] == "HumanoidAMPHands" and c["env"]["motion_file"] == "amp_humanoid_cartwheel.npy"
    assert c["env"]["contactBodies"] == ["right_foot", "left_foot", "right_hand", "left_hand"]
    train = make_cfg("task=HumanoidAMPHands").train.params.config
    assert (train.disc_grad_penalty, train.name) == (0.2, "HumanoidAMPHands")  # LowGP, as IsaacGymEnvs runs it
    env = dict(c["env"], numEnvs=2, motion_file="amp_humanoid_walk.npy", stateInit="Default")
    task = make_task("HumanoidAMPHands", env)
    task.reset()
    names = task.sim.body_names
    # a hand on the floor with the pelvis low: HumanoidAMP ends the episode, HumanoidAMPHands does not
    forces = torch.zeros(2, len(names), 3, dtype=torch.float64)
    forces[:, names.index("right_hand"), 2] = 50.0
    pos = torch.zeros(2, len(names), 3, dtype=torch.float64)
    pos[..., 2] = 1.0
    pos[:, names.index("right_hand"), 2] = 0.05
    from isaacgymenvs.tasks import terms

    progress = torch.full((2,), 10)
    assert not terms.fall_termination(forces, pos, task.allowed_contact, 0.5, progress).any()
    plain = make_task("HumanoidAMP", dict(numEnvs=2, motion_file="amp_humanoid_walk.npy"))
    assert terms.fall_termination(forces, pos, plain.allowed_contact, 0.5, progress).all()


@pytest.mark.slow
def test_hands_task_trains_from_the_command_line(tmp_path):
    r = cli(tmp_path, "task=HumanoidAMPHands", "max_iterations=1", "task.env.motion_file=amp_humanoid_dance.npy")
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "runs").glob("HumanoidAMPHands_*/nn/HumanoidAMPHands_1.pth"))


def test_default_pose_is_the_t_pose(humanoid):
    """Default resets stand the character in a T-pose: the hands at shoulder height, 0.75 m to either
    side, every joint inside its range, no body touching another; held by the PD controller for a
    second, the shoulders stay put."""
    task = make_task(
        "HumanoidAMP",
        dict(
            OmegaConf.to_container(make_cfg().task.env, resolve=True),
            numEnvs=1,
            stateInit="Default",
            motion_file="amp_humanoid_walk.npy",
        ),
    )
    task.reset()
    sim, names = task.sim, task.sim.body_names
    dof = sim.dof_pos[0].numpy()
    lim = np.asarray(task.motion_lib.skeleton.dof_limits)
    assert np.all(dof >= lim[:, 0]) and np.all(dof <= lim[:, 1])
    assert dof[sim.dof_names.index("right_shoulder_x")] == pytest.approx(-math.pi / 2, abs=1e-6)
    rh, lh = (sim.body_pos_w[0, names.index(n)].numpy() for n in ("right_hand", "left_hand"))
    shoulder_z = sim.body_pos_w[0, names.index("right_upper_arm"), 2].item()
    assert rh[1] < -0.7 and lh[1] > 0.7 and abs(rh[2] - shoulder_z) < 0.01 and abs(lh[2] - shoulder_z) < 0.01
    assert sim._datas[0].ncon == 0  # in the air, no self-contact
    target = torch.as_tensor(dof, dtype=torch.float32).unsqueeze(0)
    for _ in range(30):
        sim.set_pd_targets(target)
        sim.step()
    sx = [sim.dof_names.index(n) for n in ("right_shoulder_x", "left_shoulder_x")]
    assert np.abs(sim.dof_pos[0].numpy()[sx] - dof[sx]).max() < 0.05


@pytest.mark.slow
def test_default_joint_pos_errors_name_the_joint(tmp_path):
    r = cli(tmp_path, "max_iterations=1", "+task.env.defaultJointPos.right_shoulder_q=1.0")
    assert r.returncode == 2 and "defaultJointPos: 'right_shoulder_q' is not a joint" in r.stderr
    r = cli(tmp_path, "max_iterations=1", "task.env.defaultJointPos.right_shoulder_x=1.5707963")
    assert r.returncode == 2 and "defaultJointPos.right_shoulder_x: must be an angle in its range" in r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------- the task registry
def test_registry_describes_each_task_once():
    """One TaskSpec per cfg/task file, its character from characters.py and its defaults from its
    composed task config (HumanoidAMPHands inherits HumanoidAMP's keys)."""
    from pathlib import Path

    from isaacgymenvs import characters
    from isaacgymenvs import task_registry as reg

    cfg_dir = Path(train_mod.CFG_DIR)
    assert sorted(p.stem for p in (cfg_dir / "task").glob("*.yaml")) == reg.task_names()
    for name in reg.task_names():
        t = reg.get_task(name)
        assert t.name == name and (cfg_dir / "task" / f"{t.task_config}.yaml").is_file()
        assert (cfg_dir / "train" / f"{t.train_config}.yaml").is_file()
        composed = OmegaConf.to_container(make_cfg(f"task={name}"), resolve=True)
        explicit = OmegaConf.to_container(make_cfg(f"task={name}", f"train={t.train_config}"), resolve=True)
        assert composed["train"] == explicit["train"]  # config.yaml's `train: ${task}PPO` is the registry's
        env = composed["task"]["env"]
        assert composed["task"]["name"] == name
        assert (t.default_clip, t.motion_ground) == (env["motion_file"], env["motion_ground"])
        assert (list(t.key_bodies), list(t.contact_bodies)) == (env["keyBodies"], env["contactBodies"])
        assert t.control_dt == pytest.approx(composed["task"]["sim"]["dt"] * env["controlFrequencyInv"])
        assert reg.TASKS[name] == (t.character.name, t.clip_dir) and t.clip_dir == t.character.motion_dir
    hands, humanoid, g1 = (reg.get_task(n) for n in ("HumanoidAMPHands", "HumanoidAMP", "G1AMP"))
    assert hands.character is humanoid.character is characters.HUMANOID and g1.character is characters.G1
    # the main task of a character carries the character's own bodies
    for t in (humanoid, g1):
        assert (t.key_bodies, t.contact_bodies) == (t.character.key_bodies, t.character.contact_bodies)
    assert hands.contact_bodies == humanoid.contact_bodies + ("right_hand", "left_hand")
    assert (g1.mjcf, g1.eval_mjcf, humanoid.eval_mjcf) == (
        "unitree_g1/scene_mjx.xml",
        "unitree_g1/scene.xml",
        "amp_humanoid/amp_humanoid.xml",
    )
    # the inherited task config is composed (it used to be read without its defaults list)
    assert reg.task_env_config("HumanoidAMPHands")["episodeLength"] == 300
    assert reg.task_control_dt("HumanoidAMPHands") == pytest.approx(0.0332)


def test_registry_lookups_and_the_unknown_task_error():
    from isaacgymenvs import task_registry as reg

    assert reg.task_for_clip("amp_humanoid_walk.npy").name == "HumanoidAMP"
    assert reg.task_for_clip("clip.NPZ").name == "HumanoidAMP"
    assert reg.task_for_clip("g1_moves/B_HandsUp.csv").name == "G1AMP"
    assert reg.task_for_robot("g1").name == reg.task_for_robot("unitree_g1").name == "G1AMP"
    assert reg.task_for_character("amp_humanoid").name == "HumanoidAMP"
    with pytest.raises(reg.UnknownTaskError) as e:
        reg.get_task("HumanoidAmp")
    msg = str(e.value)
    assert "\n" not in msg and msg == (
        "unknown task 'HumanoidAmp' (did you mean HumanoidAMP?); known tasks: G1AMP, HumanoidAMP, HumanoidAMPHands"
    )
    assert isinstance(e.value, ValueError)  # callers that caught ValueError still do
    with pytest.raises(ValueError, match="unknown robot 'h1'; robots: g1"):
        reg.task_for_robot("h1")
    with pytest.raises(ValueError, match=r"no character's clips end in '\.bvh'"):
        reg.task_for_clip("walk.bvh")


def test_motion_list_is_the_task_of_its_clips(tmp_path):
    from isaacgymenvs import task_registry as reg

    lst = tmp_path / "mix.yaml"
    lst.write_text("motions:\n  - {file: a.csv, weight: 1.0}\n  - {file: b.csv, weight: 2.0}\n")
    assert reg.task_for_clip(lst).name == "G1AMP"


# ---------------------------------------------------------------- every config key is read
TASK_TRAIN = [
    ("HumanoidAMP", None),
    ("HumanoidAMPHands", None),
    ("G1AMP", None),
    ("HumanoidAMP", "HumanoidAMPPPOLowGP"),
    ("HumanoidAMP", "HumanoidAMPPPOFast"),
    ("G1AMP", "G1AMPPPOFast"),
]


@pytest.mark.parametrize("task,train", TASK_TRAIN)
def test_shipped_configs_hold_only_keys_that_are_read(task, train):
    """No key of a shipped config is unknown, replaced or without effect: check_config finds no
    problem and warns about nothing, and none of the keys IsaacGymEnvs has but this trainer ignores
    is in the composed config."""
    from isaacgymenvs.learning.config_check import NO_EFFECT, REPLACED, check_config

    c = OmegaConf.to_container(make_cfg(f"task={task}", *([f"train={train}"] if train else [])), resolve=True)
    leaves = set(_flat(c))
    assert check_config(c) == ([], [])
    for key in (set(NO_EFFECT) | set(REPLACED)) - {
        "torch_deterministic"
    }:  # the top-level switch: False, warned when True
        assert not any(k == key or k.startswith(key + ".") for k in leaves), key
    assert c["torch_deterministic"] is False
    assert c["task"]["sim"].keys() == {"dt", "mujoco_timestep"}  # no substeps: MuJoCo runs dt / timestep steps


def test_task_env_keys_are_what_make_task_reads():
    """The known task.env keys are AMPTaskConfig's fields and exactly the env_cfg keys make_task reads."""
    import re
    from pathlib import Path

    from isaacgymenvs.learning import config_check

    src = "\n".join(f.read_text() for f in (Path(train_mod.__file__).parent / "tasks").glob("*.py"))
    read = set(re.findall(r"env_cfg(?:\.get\(|\[)\"(\w+)\"", src)) - {"sim_dt", "mujoco_timestep"}  # set by train.py
    assert read == set(config_check.TASK_ENV_EXTRA_KEYS)


@pytest.mark.slow
def test_unknown_task_key_is_an_error_with_the_closest_key(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^invalid config: task\.env\.numEnv: unknown key \(did you mean 'numEnvs'\?\)$"
    ):
        train_mod.Trainer(make_cfg("+task.env.numEnv=8"), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(
        ConfigError, match=r"task\.sim\.mujoco_timestp: unknown key \(did you mean 'mujoco_timestep'\?\)"
    ):
        train_mod.Trainer(make_cfg("+task.sim.mujoco_timestp=0.01"), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match=r"train\.params\.netwrok: unknown key \(did you mean 'network'\?\)"):
        train_mod.Trainer(make_cfg("+train.params.netwrok.x=1"), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(
        ConfigError, match=r"train\.params\.network\.disc\.unit: unknown key \(did you mean 'units'\?\)"
    ):
        train_mod.Trainer(make_cfg("+train.params.network.disc.unit=[8]"), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match=r"num_actors \(8\) must be the number of envs \(16\)"):
        train_mod.Trainer(make_cfg("train.params.config.num_actors=8"), runs_dir=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()
    r = cli(tmp_path, "+task.env.numEnv=8")
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert err == ["error: invalid config: task.env.numEnv: unknown key (did you mean 'numEnvs'?)"]


def test_ignored_isaacgymenvs_keys_warn_and_are_dropped(tmp_path, capsys):
    t = train_mod.Trainer(
        make_cfg(
            "+task.env.powerScale=2.0",
            "+task.sim.substeps=2",
            "torch_deterministic=True",
            "+train.params.config.score_to_win=100",
            "+train.params.network.disc.activation=elu",
            "+train.params.config.player.deterministic=False",
        ),
        runs_dir=str(tmp_path / "runs"),
    )
    err = capsys.readouterr().err.splitlines()
    for key, instead in [
        ("task.env.powerScale", "PD servos"),
        ("task.sim.substeps", "task.sim.mujoco_timestep"),
        ("torch_deterministic", "seed=N"),
        ("train.params.config.score_to_win", "max_iterations"),
        ("train.params.network.disc.activation", "ReLU"),
        ("train.params.config.player.deterministic", "mean action"),
    ]:
        line = [x for x in err if x.startswith(f"warning: {key} has no effect here")]
        assert len(line) == 1 and instead in line[0], (key, err)
    # dropped: what runs (and what tracking logs) is what the config shows
    assert "powerScale" not in t.c["task"]["env"] and "substeps" not in t.c["task"]["sim"]
    assert "score_to_win" not in t.train_cfg and "activation" not in t.net["disc"]
    assert "deterministic" not in t.train_cfg["player"]
    capsys.readouterr()
    train_mod.Trainer(make_cfg(), runs_dir=str(tmp_path / "runs"))
    assert "has no effect here (an IsaacGymEnvs key)" not in capsys.readouterr().err  # the shipped config: none


@pytest.mark.parametrize(
    "override,instead",
    [
        ("+train.params.config.sigma_scheme=learned", "sigma=fixed|learned"),
        ("+train.params.network.space.continuous.fixed_sigma=False", "sigma=fixed|learned"),
        ("+train.params.network.space.continuous.learn_sigma=True", "sigma=learned"),
        ("+train.params.config.seq_length=8", "seq_len"),
    ],
)
def test_one_sigma_knob_the_duplicates_are_errors(tmp_path, override, instead):
    key = override[1:].split("=")[0]
    with pytest.raises(
        ConfigError, match=rf"^invalid config: {re.escape(key)}: not a setting here: .*{re.escape(instead)}"
    ):
        train_mod.Trainer(make_cfg(override), runs_dir=str(tmp_path / "runs"))


@pytest.mark.parametrize(
    "sigma,scheme,std", [("fixed", "fixed", None), ("learned", "learned", None), ("0.2", "fixed", 0.2)]
)
def test_sigma_is_the_one_knob(tmp_path, sigma, scheme, std):
    c = make_cfg(f"sigma={sigma}")
    assert OmegaConf.select(c, "train.params.config.sigma_scheme") is None
    net = OmegaConf.to_container(c.train.params.network)
    assert "fixed_sigma" not in net["space"]["continuous"] and "learn_sigma" not in net["space"]["continuous"]
    t = train_mod.Trainer(c, runs_dir=str(tmp_path / "runs"))
    # what the agent and rl_games read, set from the knob
    assert (t.train_cfg["sigma_scheme"], t.sigma_override) == (scheme, std)
    from isaacgymenvs.learning.rl_games_adapter import network_params

    assert network_params(t.net)["space"]["continuous"]["fixed_sigma"] is True  # rl_games' state-independent log std
    assert make_cfg().sigma == "fixed"  # the default, in cfg/config.yaml


#: IsaacGymEnvs' cfg/config.yaml top-level keys (../shared/docs/AMP_REFERENCE.md, section 1.1)
IGE_TOP_KEYS = (
    "task_name", "experiment", "num_envs", "seed", "torch_deterministic", "max_iterations", "physics_engine",
    "pipeline", "sim_device", "rl_device", "graphics_device_id", "num_threads", "solver_type", "num_subscenes",
    "test", "checkpoint", "sigma", "multi_gpu", "wandb_activate", "wandb_group", "wandb_name", "wandb_entity",
    "wandb_project", "wandb_tags", "wandb_logcode_dir", "capture_video", "capture_video_freq", "capture_video_len",
    "force_render", "headless", "pbt",
)  # fmt: skip


def test_every_isaacgymenvs_top_level_key_parses_without_plus():
    """Each of IsaacGymEnvs' top-level keys is in our config (so `key=value` parses without Hydra's
    not-in-struct error), and the shipped defaults raise nothing."""
    c = make_cfg()
    missing = [k for k in IGE_TOP_KEYS if k not in c]
    assert missing == []
    t = train_mod.Trainer(c, runs_dir="/nonexistent")  # no problem, and no warning below
    assert t.seed == 42


@pytest.mark.parametrize(
    "override,answer",
    [
        ("wandb_activate=True", "tracked in MLflow (tracking=mlflow"),
        ("capture_video=True", "video=FILE.gif"),
        ("multi_gpu=True", "resources: {gpu: 0.25}"),
        ("pbt=pbt_default", "make sweep SWEEP=pbt_cpu"),
        ("pipeline=cpu", "sim=mujoco rl_device=cpu"),
        ("physics_engine=flex", "sim=mujoco (CPU) or sim=mujoco_warp (GPU)"),
    ],
)
def test_isaacgymenvs_settings_that_do_not_exist_here_name_what_does(tmp_path, override, answer):
    with pytest.raises(ConfigError) as e:
        train_mod.Trainer(make_cfg(override), runs_dir=str(tmp_path / "runs"))
    assert len(e.value.problems) == 1
    key, value = override.split("=")
    assert e.value.problems[0].startswith(f"{key}={value}: an IsaacGymEnvs setting that does not exist here; ")
    assert answer in e.value.problems[0]


def test_isaacgymenvs_knobs_without_effect_warn_once(tmp_path, capsys):
    train_mod.Trainer(make_cfg("num_threads=8", "wandb_project=p", "task_name=Foo", "force_render=False"),
                      runs_dir=str(tmp_path / "runs"))  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert err == [
        "warning: num_threads=8 has no effect here (an IsaacGymEnvs key): MuJoCo C steps the envs on this "
        "process's threads",
        "warning: force_render=False has no effect here (an IsaacGymEnvs key): rendering happens only with "
        "test=True (headless=False or video=FILE.gif)",
        "warning: wandb_project=p has no effect here (an IsaacGymEnvs key): wandb is not wired in "
        "(tracking.experiment=NAME names the MLflow experiment)",
        "warning: task_name=Foo has no effect: the task is task=NAME",
    ]


def test_rough_edges_of_the_command_line(tmp_path, capsys):
    """rl_device on a machine without it, a random seed that is recorded, a resume with nothing left."""
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"rl_device=cuda:0: no CUDA device is visible.*use rl_device=cpu"):
            train_mod.Trainer(make_cfg("rl_device=cuda:0"), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match="rl_device=gpu0: not a device"):
        train_mod.Trainer(make_cfg("rl_device=gpu0"), runs_dir=str(tmp_path / "runs"))
    t = train_mod.Trainer(make_cfg("seed=-1"), runs_dir=str(tmp_path / "runs"))
    assert 0 <= t.seed <= 10_000 and t.c["seed"] == t.seed and t.cfg.seed == t.seed
    assert f"seed=-1: drew seed={t.seed}" in capsys.readouterr().err
    # seq_len is worth a warning with an MLP policy only when someone changed it
    train_mod.Trainer(make_cfg(), runs_dir=str(tmp_path / "runs"))
    assert "seq_len" not in capsys.readouterr().err
    train_mod.Trainer(make_cfg("train.params.config.seq_len=8"), runs_dir=str(tmp_path / "runs"))
    assert "warning: seq_len=8 has no effect with an MLP policy" in capsys.readouterr().err


@pytest.mark.slow
def test_a_resume_with_nothing_left_to_train_creates_nothing(tmp_path, tiny_checkpoint):
    r = cli(tmp_path, f"checkpoint={tiny_checkpoint}", "max_iterations=1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is at epoch 1 and max_iterations=1: nothing left to train" in errors[0]
    assert "max_iterations=2" in errors[0] and not (tmp_path / "runs").exists()
