"""G1AMP: the task built from cfg/task/G1AMP.yaml on the G1 training model (scene_mjx.xml) - sizes,
the robot's PD gains, the action mapping around the standing pose, agent/demo parity with the
head marker, clip errors - and train -> export -> sim2sim in the full-mesh model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

from isaacgymenvs import assets, characters
from isaacgymenvs.motion.poselib import ClipError
from isaacgymenvs.tasks import make_task

REPO = Path(__file__).resolve().parents[1]
G1_CFG = yaml.safe_load((REPO / "cfg" / "task" / "G1AMP.yaml").read_text())["env"]


@pytest.fixture(scope="module")
def g1_assets():
    try:
        assets.asset_path("unitree_g1/scene_mjx.xml")
        assets.asset_path("unitree_g1/motions/amp_retarget/g1_from_amp_walk.csv")
    except assets.AssetNotFoundError as e:
        pytest.skip(f"asset missing: {e}")


def g1_env(**kw):
    env = dict(G1_CFG, numEnvs=8, sim_dt=0.02)
    env.update(kw)
    return env


@pytest.fixture(scope="module")
def task(g1_assets):
    return make_task("G1AMP", g1_env(), seed=4)


def test_sizes_and_timing(task):
    # 1 + 6 + 3 + 3 + 29 joint angles (one hinge per body) + 29 velocities + 5 key bodies x 3
    assert task.num_obs == 86 == G1_CFG["numObservations"]
    assert [n for _, n in task.obs_layout] == [1, 6, 3, 3, 29, 29, 15]
    assert (task.num_amp_obs, task.num_actions) == (172, 29)
    assert task.dt == pytest.approx(0.02) and task.sim.substeps == 5  # 50 Hz over 4 ms physics steps


def test_robot_pd_gains_and_torque_limits(task):
    m = task.sim.model
    names = characters.hinge_dof_names(m)
    kp, kd = characters.pd_gains_arrays(m)
    want = {
        "left_hip_pitch_joint": (100, 2, 88),
        "right_hip_roll_joint": (100, 2, 139),
        "left_knee_joint": (150, 4, 139),
        "right_ankle_roll_joint": (40, 2, 50),
        "waist_yaw_joint": (300, 3, 88),
        "waist_pitch_joint": (300, 3, 50),
        "left_shoulder_roll_joint": (100, 2, 25),
        "right_shoulder_yaw_joint": (50, 2, 25),
        "left_elbow_joint": (50, 2, 25),
        "right_wrist_pitch_joint": (20, 1, 5),
    }
    torque = characters.torque_limits(m)
    for n, (p, d, t) in want.items():
        i = names.index(n)
        assert (kp[i], kd[i], torque[i]) == (p, d, t), n
    # the servo law by hand: tau = kp (target - q) - kd qdot, clipped to the torque limit
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    k = names.index("left_knee_joint")
    d.ctrl[:] = d.qpos[7:]
    d.ctrl[k] += 0.1
    d.qvel[6 + k] = 0.5
    mujoco.mj_forward(m, d)
    assert d.actuator_force[k] == pytest.approx(150 * 0.1 - 4 * 0.5, abs=1e-9)
    d.ctrl[k] += 5.0  # far off: the torque saturates at 139 N m
    mujoco.mj_forward(m, d)
    assert d.actuator_force[k] == pytest.approx(139.0)


def test_actions_around_the_standing_pose(task):
    limits = task.motion_lib.skeleton.dof_limits.float()
    home = torch.tensor(task.sim.model.key_qpos[0, 7:], dtype=torch.float32)
    assert torch.allclose(task.default_dof_pos, home) and task.default_root_height == pytest.approx(0.783675)
    assert torch.allclose(task.action_offset, home)
    assert torch.allclose(task.action_scale, 0.5 * (limits[:, 1] - limits[:, 0]))
    seen = []
    task.sim.set_pd_targets = lambda t: seen.append(t.clone())
    try:
        task.step(torch.zeros(8, 29))
        task.step(torch.full((8, 29), 5.0))  # clipped to 1, then to the joint range
    finally:
        del task.sim.set_pd_targets
    assert torch.allclose(seen[0], home.expand(8, -1))
    expect = torch.minimum(home + task.action_scale, limits[:, 1])
    assert torch.allclose(seen[1], expect.expand(8, -1)) and (seen[1] <= limits[:, 1] + 1e-6).all()
    task.reset()


def test_reference_state_gives_the_demo_observation(task):
    """A clip state written into the simulator gives the demo sampler's observation, head marker included."""
    lib = task.motion_lib
    ids = torch.zeros(8, dtype=torch.long)
    times = torch.linspace(0.05, 2.4, 8)
    st = lib.get_motion_state(ids, times)
    task.sim.write_state(
        torch.arange(8), st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel
    )
    assert (task._sim_obs() - task._motion_obs(ids, times)).abs().max().item() < 1e-4
    # the head is 0.385 m up the torso: with the torso upright it is that far above torso_link
    m = task.sim.model
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    mujoco.mj_kinematics(m, d)
    head = d.xpos[m.body("head").id] - d.xpos[m.body("torso_link").id]
    assert head == pytest.approx([0.0076509, 0.0000248, 0.3851318], abs=1e-3)
    task.reset()


def test_config_errors(g1_assets):
    with pytest.raises(ValueError, match=r"no pattern matches \['left_knee_joint', 'right_knee_joint'\]"):
        make_task("G1AMP", g1_env(pdGains={k: v for k, v in G1_CFG["pdGains"].items() if k != "knee"}))
    with pytest.raises(ValueError, match="several patterns match"):
        make_task("G1AMP", g1_env(pdGains=dict(G1_CFG["pdGains"], joint=[1, 1])))
    with pytest.raises(ValueError, match=r"pdGains\['knee'\] must be \[kp, kd\]"):
        make_task("G1AMP", g1_env(pdGains=dict(G1_CFG["pdGains"], knee=[150])))
    with pytest.raises(ValueError, match="numObservations is 87 but the model gives 86"):
        make_task("G1AMP", g1_env(numObservations=87))
    with pytest.raises(ValueError, match="needs PD gains from the task config"):
        make_task("G1AMP", {k: v for k, v in g1_env().items() if k != "pdGains"})
    with pytest.raises(ValueError, match="actionMapping must be one of"):
        make_task("G1AMP", g1_env(actionMapping="torque"))


def test_clip_errors(g1_assets, tmp_path, clip_path):
    # an AMP humanoid clip for the G1: say how to retarget it
    with pytest.raises(ClipError, match="retarget .* --robot g1"):
        make_task("G1AMP", g1_env(motion_file=str(clip_path("walk"))))
    # a G1 clip for the humanoid
    with pytest.raises(ClipError, match="G1 clips are for task=G1AMP"):
        make_task(
            "HumanoidAMP",
            dict(numEnvs=2, motion_file=str(assets.asset_path("unitree_g1/motions/amp_retarget/g1_from_amp_walk.csv"))),
        )
    src = assets.asset_path("unitree_g1/motions/amp_retarget/g1_from_amp_walk.csv")
    rows = np.loadtxt(src, delimiter=",")
    # a clip of a 28-joint robot: one column short
    short = tmp_path / "short.csv"
    np.savetxt(short, rows[:, :-1], delimiter=",", fmt="%.6f")
    with pytest.raises(ClipError, match="35 columns"):
        make_task("G1AMP", g1_env(motion_file=str(short), motion_fps=30))
    # joints in another order, named by a header: the order is refused by name
    from isaacgymenvs.motion.g1 import CSV_COLUMNS

    cols = list(CSV_COLUMNS)
    cols[7], cols[8] = cols[8], cols[7]
    swapped = tmp_path / "swapped.csv"
    swapped.write_text(",".join(cols) + "\n" + "\n".join(",".join(f"{x:.6f}" for x in r) for r in rows) + "\n")
    with pytest.raises(ClipError, match="order"):
        make_task("G1AMP", g1_env(motion_file=str(swapped), motion_fps=30))
    # a CSV outside the manifest (here: one frame shorter, so not a shipped file) needs its fps
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, rows[:-1], delimiter=",", fmt="%.6f")
    with pytest.raises(ClipError, match="fps"):
        make_task("G1AMP", g1_env(motion_file=str(plain)))
    assert make_task("G1AMP", g1_env(numEnvs=2, motion_file=str(plain), motion_fps=30)).motion_lib.clips[0].fps == 30


@pytest.mark.slow
def test_train_export_and_sim2sim_in_the_full_mesh_model(g1_assets, tmp_path):
    from isaacgymenvs.export import export
    from tests.helpers.training import TINY

    args = [a for a in TINY if not a.startswith("task=")] + ["task=G1AMP", "max_iterations=2", "experiment=g1"]
    env = dict(os.environ, PYTHONPATH=str(REPO), MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    r = subprocess.run(
        [sys.executable, str(REPO / "isaacgymenvs" / "train.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    ck = next(tmp_path.glob("runs/g1_*/nn/g1_2.pth"))
    out = export(ck, tmp_path / "export")["out"]
    info = json.loads((Path(out) / "policy.json").read_text())
    assert (
        info["task"] == "G1AMP"
        and info["observation"]["size"] == 86
        and info["control_period_s"] == pytest.approx(0.02)
    )
    assert info["pd_gains"]["kp"][3] == 150 and info["action"]["target_high"][3] == pytest.approx(2.8798, abs=1e-4)
    assert info["motion"]["file"] == G1_CFG["motion_file"] and info["evaluation"]["termination_height"] == 0.2
    from tests.helpers.deployment import sim2sim_cli

    res = sim2sim_cli(f"policy={out}", "episodes=2", f"video={tmp_path / 'g1.gif'}")
    assert res["mjcf"] == "unitree_g1/scene.xml" and res["motion"].endswith("g1_from_amp_walk.csv")
    assert 0.0 <= res["fall_rate"] <= 1.0 and res["motion_nn_dist"] > 0 and res["video_frames"] >= 1
    from PIL import Image

    # the G1 models have no camera: the recorder follows the robot, so no two frames are merged as equal
    assert Image.open(tmp_path / "g1.gif").n_frames == res["video_frames"]
    from isaacgymenvs import sim2sim

    train = sim2sim.run(out, episodes=1, model="train")
    assert train["mjcf"] == "unitree_g1/scene_mjx.xml" and train["episodes"] == 1
    with pytest.raises(ValueError, match="model must be 'eval'"):
        sim2sim.run(out, episodes=1, model="mjx")


@pytest.mark.slow
def test_command_line_errors_are_one_line(g1_assets, tmp_path):
    """Bad G1 inputs stop train.py with exit code 2 and one 'error:' line naming the fix, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cases = [
        (
            "task.env.motion_file=amp_humanoid_walk.npy",
            "is a clip of task HumanoidAMP .* retarget .*amp_humanoid_walk.npy --robot g1",
        ),
        ("task.env.pdGains.knee=[1]", r"task G1AMP: task.env.pdGains\['knee'\] must be \[kp, kd\]"),
        ("task.env.numObservations=90", "numObservations is 90 but the model gives 86"),
    ]
    import re

    for arg, pattern in cases:
        r = subprocess.run(
            [
                sys.executable,
                str(REPO / "isaacgymenvs" / "train.py"),
                "task=G1AMP",
                "headless=True",
                "tracking=none",
                "num_envs=2",
                "train.params.config.minibatch_size=32",
                "train.params.config.amp_minibatch_size=32",
                arg,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2, (arg, r.stderr[-1500:])
        assert "Traceback" not in r.stderr and re.search(pattern, r.stderr), (arg, r.stderr[-1500:])


def test_g1_learner_config_is_humanoid_amp_but_the_measured_changes():
    """G1AMPPPO.yaml inherits HumanoidAMPPPO.yaml (Hydra defaults list) and holds only the name and
    disc_grad_penalty (MimicKit's G1 change): the composed G1 learner config is the humanoid's with
    exactly those two changes, and the file copies nothing else (a key copied into it would fail here)."""
    from omegaconf import OmegaConf

    from tests.helpers.training import make_cfg

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    # the same task (so that num_actors etc. resolve alike), the two train configs
    hum = flat(OmegaConf.to_container(make_cfg("task=G1AMP", "train=HumanoidAMPPPO").train, resolve=True))
    g1 = flat(OmegaConf.to_container(make_cfg("task=G1AMP").train, resolve=True))  # train: ${task}PPO
    assert set(hum) == set(g1)
    c = "params.config."
    assert {k: (hum[k], g1[k]) for k in hum if hum[k] != g1[k]} == {
        c + "name": ("HumanoidAMP", "G1AMP"),
        c + "disc_grad_penalty": (5, 10),
    }
    assert make_cfg("task=G1AMP", "experiment=mine").train.params.config.name == "mine"
    raw = yaml.safe_load((REPO / "cfg" / "train" / "G1AMPPPO.yaml").read_text())
    assert raw["defaults"] == ["HumanoidAMPPPO", "_self_"]
    assert set(flat({k: v for k, v in raw.items() if k != "defaults"})) == {c + "name", c + "disc_grad_penalty"}
    # 4096 envs x horizon 16 (or 32, swept) split into whole minibatches
    base = flat(yaml.safe_load((REPO / "cfg" / "train" / "HumanoidAMPPPO.yaml").read_text()))
    assert (4096 * base[c + "horizon_length"]) % base[c + "minibatch_size"] == 0
