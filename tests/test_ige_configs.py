"""IsaacGymEnvs' other HumanoidAMP configs: train=HumanoidAMPPPOLowGP, task=HumanoidAMPHands, and
the Default pose (the T-pose IsaacGymEnvs starts its Default and Hybrid resets from)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from isaacgymenvs.tasks import make_task
from test_train import cli, make_cfg


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_low_gp_is_humanoid_amp_ppo_with_a_low_gradient_penalty():
    base = _flat(OmegaConf.to_container(make_cfg().train, resolve=True))
    low = _flat(OmegaConf.to_container(make_cfg("train=HumanoidAMPPPOLowGP").train, resolve=True))
    assert {k for k in base if base[k] != low.get(k)} == {"params.config.disc_grad_penalty"}
    assert (base["params.config.disc_grad_penalty"], low["params.config.disc_grad_penalty"]) == (5, 0.2)


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


def test_hands_task_trains_from_the_command_line(tmp_path):
    r = cli(tmp_path, "task=HumanoidAMPHands", "max_iterations=1", "task.env.motion_file=amp_humanoid_dance.npy")
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "runs").glob("HumanoidAMPHands_*/nn/HumanoidAMPHands_1.pth"))


def test_default_pose_is_the_t_pose(humanoid):
    """Default resets stand the character in a T-pose: the hands at shoulder height, 0.75 m to either
    side, every joint inside its range, no body touching another; held by the PD controller for a
    second, the shoulders stay put."""
    task = make_task("HumanoidAMP", dict(OmegaConf.to_container(make_cfg().task.env, resolve=True),
                                         numEnvs=1, stateInit="Default", motion_file="amp_humanoid_walk.npy"))
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


def test_default_joint_pos_errors_name_the_joint(tmp_path):
    r = cli(tmp_path, "max_iterations=1", "+task.env.defaultJointPos.right_shoulder_q=1.0")
    assert r.returncode == 2 and "defaultJointPos: 'right_shoulder_q' is not a joint" in r.stderr
    r = cli(tmp_path, "max_iterations=1", "task.env.defaultJointPos.right_shoulder_x=1.5707963")
    assert r.returncode == 2 and "defaultJointPos.right_shoulder_x: must be an angle in its range" in r.stderr
    assert "Traceback" not in r.stderr

