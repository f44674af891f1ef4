"""sim2sim: the exported ONNX policy in MuJoCo C without torch, with the trainer's observation."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from isaacgymenvs import sim2sim
from isaacgymenvs.export import export
from isaacgymenvs.tasks import terms
from tests.helpers.deployment import sim2sim_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    return export(tiny_checkpoint, tmp_path_factory.mktemp("s2s") / "export")["out"]


def registered_tasks() -> list[str]:
    """The registered task names: the keys of ``task_registry.TASKS`` (a dict of tuples today; read
    through its keys so a registry of dataclasses keeps working)."""
    from isaacgymenvs.task_registry import TASKS

    return sorted(TASKS.keys())


def training_task(name: str, local_root_obs: bool, num_envs: int = 4):
    """Task ``name`` built as ``train.py task=NAME sim=mujoco`` builds it (its composed config), with
    ``localRootObs``. A default clip that is not stored here (HumanoidAMPHands' cartwheel is not
    pinned) is replaced by the default clip of another registered task that loads for it."""
    from omegaconf import OmegaConf

    from isaacgymenvs import assets
    from isaacgymenvs.motion.poselib import ClipError
    from isaacgymenvs.tasks import make_task
    from tests.helpers.training import make_cfg

    c = OmegaConf.to_container(make_cfg(f"task={name}").task, resolve=True)
    env = dict(
        c["env"],
        numEnvs=num_envs,
        localRootObs=local_root_obs,
        sim_dt=float(c["sim"]["dt"]),
        mujoco_timestep=c["sim"].get("mujoco_timestep"),
    )
    clips = [env["motion_file"]] + [
        OmegaConf.to_container(make_cfg(f"task={o}").task.env, resolve=True)["motion_file"]
        for o in registered_tasks()
        if o != name
    ]
    for clip in clips:
        try:
            return make_task(name, dict(env, motion_file=clip), sim="mujoco", seed=0)
        except assets.AssetNotFoundError as e:
            if not str(e).count("motions/"):  # the model itself is missing: no such character here
                pytest.skip(f"asset missing: {e}")
        except (FileNotFoundError, ClipError):
            continue
    pytest.skip(f"no clip of task {name} is stored here (tried {clips})")


def policy_json_of(task, name: str) -> dict:
    """The ``policy.json`` export writes for a checkpoint of ``task`` (through JSON, as sim2sim reads it)."""
    from isaacgymenvs.export import _policy_json

    meta = {
        "task": name,
        "obs": task.num_obs,
        "actions": task.num_actions,
        "control_dt": task.dt,
        "deploy": task.deploy_info(),
    }  # what train.py saves as the checkpoint's meta
    return json.loads(json.dumps(_policy_json(meta, Path("policy.pth"), 0)))


def _quat(axis, angle):
    return np.concatenate(([np.cos(angle / 2)], np.sin(angle / 2) * np.asarray(axis, dtype=np.float64)))


def set_parity_state(task) -> None:
    """Env 0 lying on the floor, yawed (its fall test fires); the others at reference states of the
    clip at different times (headings and velocities of the motion)."""
    from isaacgymenvs.utils.quaternions import quat_mul

    N = task.num_envs
    lib = task.motion_lib
    st = lib.get_motion_state(torch.zeros(N, dtype=torch.long), torch.linspace(0.05, 0.8, N) * lib.durations[0])
    parts = [
        x.double().clone()
        for x in (st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel)
    ]
    lying = quat_mul(_quat([0, 0, 1], 0.7), _quat([0, 1, 0], np.pi / 2))
    parts[1][0] = torch.from_numpy(lying)
    parts[2][0], parts[3][0] = torch.tensor([0.2, 0.1, -1.0]), torch.tensor([0.0, 0.3, 0.5])
    parts[4][0], parts[5][0] = task.default_dof_pos.double(), 0.0
    for h in np.arange(0.4, 0.0, -0.01):  # lowered until a body that may not touch the ground does
        parts[0][0] = torch.tensor([0.3, -0.2, h])
        task.sim.write_state(torch.arange(N), *parts)
        if ((task.sim.contact_forces_w[0].abs() > 0.1).any(-1) & ~task.allowed_contact).any():
            break


@pytest.mark.parametrize("local_root_obs", [False, True], ids=["world_root", "local_root"])
@pytest.mark.parametrize("name", registered_tasks())
def test_deployed_step_is_the_trainers(name, local_root_obs):
    """For every registered task and both localRootObs: from the same MuJoCo state, sim2sim's
    Deployment (built from the policy.json export writes for the task) gives the trainer's
    observation, PD targets, next state, observation, AMP observation, fall and time-out flags;
    and its reference AMP observations (the clip resampled, written into MuJoCo) are the trainer's
    demonstration sampler's at the same clip times."""
    task = training_task(name, local_root_obs)
    info = policy_json_of(task, name)
    dep = sim2sim.Deployment(task.sim.model, info)
    assert dep.layout == task.obs_layout
    N, D, k = task.num_envs, task.num_actions, task.cfg.numAMPObsSteps
    task.reset()
    set_parity_state(task)
    obs = np.concatenate([dep.observe(d) for d in task.sim._datas])
    assert np.abs(obs - task._sim_obs().numpy()).max() <= 1e-5

    # one control step from here, the trainer's on its simulator, sim2sim's on copies of its MjData
    copies = [copy.copy(d) for d in task.sim._datas]
    hist0 = task.amp_hist.numpy().copy()
    task.progress[:] = 5
    task.progress[-1] = task.cfg.episodeLength - 2  # the last env reaches its time limit
    progress = task.progress.numpy() + 1
    actions = np.random.default_rng(0).uniform(-1.3, 1.3, (N, D)).astype(np.float32)  # some beyond [-1, 1]
    task.step(torch.from_numpy(actions))
    for i, d in enumerate(copies):
        assert np.array_equal(dep.pd_targets(actions[i])[0][dep.act_dof], task.sim._ctrl[i])
        bad = dep.control_step(d, actions[i])
        trainer_d = task.sim._datas[i]
        assert np.array_equal(d.qpos, trainer_d.qpos) and np.array_equal(d.xpos, trainer_d.xpos)
        for data in (d, trainer_d):  # sim2sim's own step, and the trainer's MjData itself
            out = dep.after_step(data, hist0[i : i + 1], int(progress[i]), bad)
            assert np.abs(out.obs[0] - task.obs[i].numpy()).max() <= 1e-5
            assert np.abs(terms.amp_obs(out.amp_hist)[0] - task.amp_obs[i].numpy()).max() <= 1e-5
            assert (bool(out.terminated[0]), bool(out.truncated[0]), bool(out.unstable[0])) == (
                bool(task.terminated[i]),
                bool(task.truncated[i]),
                bool(task.unstable[i]),
            )
    assert task.terminated[0] and not task.unstable[0] and not task.terminated[1:].any()  # a fall, and envs standing
    assert task.truncated[-1] and not task.truncated[:-1].any()

    # the reference set: sim2sim's resampled clip frames and AMP windows vs the trainer's MotionLib
    # and demonstration observation at the same clip times (a float64 MotionLib of the same clip:
    # the training one holds clip and times in float32, which at t = 2.4 s is ~1e-5 on joint velocities)
    from isaacgymenvs.motion.motion_lib import MotionLib

    task.motion_lib = MotionLib(
        task.motion_lib.clips[:1], [1.0], task.motion_lib.skeleton, list(task.cfg.keyBodies), dtype=torch.float64
    )
    frames = sim2sim.resample(task.motion_lib.clips[0], task.dt, dep.skeleton)
    ref = terms.amp_windows(dep.frame_obs(frames), k)
    rows = np.arange(ref.shape[0])
    times = torch.tensor((rows + k - 1) * task.dt, dtype=torch.float64)
    ids = torch.zeros(len(rows), dtype=torch.long)
    st = task.motion_lib.get_motion_state(ids, times)
    for key in sim2sim._FRAME_KEYS:
        assert np.abs(frames[key][k - 1 :] - getattr(st, key).numpy()).max() <= 1e-9, key
    demo = task._motion_obs(ids.repeat_interleave(k), terms.history_times(times, k, task.dt).reshape(-1))
    assert np.abs(ref - demo.reshape(len(rows), -1).numpy()).max() <= 1e-5


@pytest.fixture(scope="module")
def humanoid_task(humanoid):
    from isaacgymenvs.tasks import make_task

    task = make_task("HumanoidAMP", dict(numEnvs=4, motion_file="amp_humanoid_dance.npy"), seed=2)
    task.reset()
    for _ in range(3):
        task.step(0.2 * torch.randn(4, 28, generator=torch.Generator().manual_seed(0)))
    return task


def test_numpy_observation_equals_the_trainers(humanoid_task):
    """sim2sim's torch-free observation gives the task's 105 numbers for the same simulator states."""
    task = humanoid_task
    dep = sim2sim.Deployment(task.sim.model, policy_json_of(task, "HumanoidAMP"))
    ours = np.concatenate([dep.observe(d) for d in task.sim._datas])
    assert ours.dtype == np.float32 and np.allclose(ours, task._sim_obs().numpy(), atol=1e-5)


def test_the_observation_is_built_from_the_layout_in_policy_json(humanoid_task):
    """Swap two 3-number blocks in policy.json's layout: sim2sim's observation swaps them too (and no
    longer equals the trainer's), so a layout that disagrees with training cannot pass unseen."""
    task = humanoid_task
    info = policy_json_of(task, "HumanoidAMP")
    layout = info["observation"]["layout"]
    names = [b["name"] for b in layout]
    i, j = names.index("root_lin_vel_heading"), names.index("root_ang_vel_heading")
    assert layout[i]["size"] == layout[j]["size"] == 3 and (i, j) == (2, 3)
    d = task.sim._datas[0]
    before = sim2sim.Deployment(task.sim.model, info).observe(d)[0]
    layout[i], layout[j] = layout[j], layout[i]
    after = sim2sim.Deployment(task.sim.model, info).observe(d)[0]
    assert np.array_equal(after[7:10], before[10:13]) and np.array_equal(after[10:13], before[7:10])
    assert np.array_equal(np.delete(after, range(7, 13)), np.delete(before, range(7, 13)))
    assert np.abs(after - task._sim_obs()[0].numpy()).max() > 1e-2


def _export_dir(tmp_path, info) -> Path:
    (tmp_path / "policy.onnx").write_bytes(b"")  # never opened: the layout is refused before
    (tmp_path / "policy.json").write_text(json.dumps(info))
    return tmp_path


@pytest.mark.parametrize(
    "edit,match",
    [
        (
            lambda info: info["observation"]["layout"].append({"name": "root_jerk", "size": 3}),
            "unknown block 'root_jerk'",
        ),
        (
            lambda info: info["observation"]["layout"][4].update(size=51),
            "'dof_pos_obs' has size 51 in the layout, the model gives 52",
        ),
        (lambda info: info["observation"].update(size=104), "add up to 105 numbers, the observation size is 104"),
    ],
    ids=["unknown_block", "block_size", "total_size"],
)
def test_a_layout_that_does_not_fit_is_a_one_line_error(humanoid_task, tmp_path, capsys, edit, match):
    info = policy_json_of(humanoid_task, "HumanoidAMP")
    edit(info)
    with pytest.raises(ValueError, match=match):
        sim2sim.Deployment(humanoid_task.sim.model, info)
    assert sim2sim.main([f"policy={_export_dir(tmp_path, info)}", "episodes=1"]) == 1
    err = capsys.readouterr().err.strip()
    assert match.split("'")[0] in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_the_deployed_step_runs_without_torch(humanoid_task, tmp_path):
    """sim2sim's step in a process where ``import torch`` fails (``sys.modules['torch'] = None``):
    observation, control step, AMP history and fall test from policy.json, equal to the trainer's."""
    task = humanoid_task
    info = policy_json_of(task, "HumanoidAMP")
    (tmp_path / "policy.json").write_text(json.dumps(info))
    set_parity_state(task)
    d = task.sim._datas[0]
    action = np.random.default_rng(1).uniform(-1, 1, (1, 28)).astype(np.float32)
    np.savez(tmp_path / "in.npz", qpos=d.qpos, qvel=d.qvel, ctrl=d.ctrl, hist=task.amp_hist[:1].numpy(), action=action)
    obs0 = task._sim_obs()[0].numpy()
    task.progress[:] = 5
    task.step(torch.from_numpy(np.repeat(action, 4, axis=0)))
    code = """if True:
        import sys
        sys.modules["torch"] = None  # any import of torch now fails
        import json, mujoco, numpy as np
        from isaacgymenvs import sim2sim
        from isaacgymenvs.tasks import terms
        info = json.load(open(sys.argv[1] + "/policy.json"))
        z = np.load(sys.argv[1] + "/in.npz")
        _, m, dep = sim2sim.deployment(info, model="train")
        d = mujoco.MjData(m)
        d.qpos[:], d.qvel[:], d.ctrl[:] = z["qpos"], z["qvel"], z["ctrl"]
        mujoco.mj_forward(m, d)
        obs0 = dep.observe(d)
        bad = dep.control_step(d, z["action"])
        out = dep.after_step(d, z["hist"], 6, bad)
        np.savez(sys.argv[1] + "/out.npz", obs0=obs0, obs=out.obs, amp=terms.amp_obs(out.amp_hist), term=out.terminated)
        print("TORCH", [k for k in sys.modules if k.split(".")[0] == "torch" and sys.modules[k] is not None])
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "TORCH []" in r.stdout
    out = np.load(tmp_path / "out.npz")
    assert np.abs(out["obs0"][0] - obs0).max() <= 1e-5
    assert np.abs(out["obs"][0] - task.obs[0].numpy()).max() <= 1e-5
    assert np.abs(out["amp"][0] - task.amp_obs[0].numpy()).max() <= 1e-5
    assert bool(out["term"][0]) == bool(task.terminated[0]) is True


def test_sim2sim_video_without_opengl_is_a_one_line_error(exported, tmp_path):
    """No display and no MUJOCO_GL backend: exit 1 with the fix (MUJOCO_GL=egl|osmesa), no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(PYTHONPATH=str(REPO), MUJOCO_GL="glfw")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "isaacgymenvs.sim2sim",
            f"policy={exported}",
            "episodes=1",
            f"video={tmp_path / 'v.gif'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "MUJOCO_GL=egl" in r.stderr and "MUJOCO_GL=osmesa" in r.stderr
    assert not (tmp_path / "v.gif").exists()


@pytest.mark.slow
def test_sim2sim_reports_and_renders(exported, tmp_path):
    res = sim2sim_cli(f"policy={exported}", "episodes=3", f"video={tmp_path / 'v.gif'}")
    assert res["episodes"] == 3 and res["fall_rate"] in (0.0, 1 / 3, 2 / 3, 1.0) and res["motion_nn_dist"] > 0
    from PIL import Image

    gif = Image.open(tmp_path / "v.gif")
    assert gif.n_frames == res["video_frames"] >= 1
    # whole episodes until the video lasts 10 s (or all three ran), every 2nd control step in real time
    dt = json.loads((Path(exported) / "policy.json").read_text())["control_period_s"]
    assert res["video_episodes"] == 3 or (res["video_s"] >= sim2sim.VIDEO_MIN_S and res["video_episodes"] < 3)
    assert res["video_s"] == pytest.approx(res["video_frames"] * 2 * dt, abs=1e-3)
    assert abs(gif.info["duration"] - 2000 * dt) <= 10  # a GIF holds frame times in 10 ms steps
    frame = np.asarray(gif.convert("RGB"), dtype=float)
    assert frame.std() > 5.0  # not a blank image: the character and the floor are drawn


def test_bad_inputs(tmp_path, capsys, monkeypatch):
    assert sim2sim.main([f"policy={tmp_path}"]) == 1
    assert "no policy.onnx" in capsys.readouterr().err
    # models:/ URIs are sweeps.sim2sim's (the MLflow store is above this package: tests/test_promote.py)
    assert sim2sim.main(["policy=models:/HumanoidAMP-policy@champion"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "python -m sweeps.sim2sim policy=models:/HumanoidAMP-policy@champion" in err[0]
    from sweeps import sim2sim as registered

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}")
    assert registered.main(["policy=models:/HumanoidAMP-policy@champion"]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "none").exists()
    assert registered.main(["policy=models:/HumanoidAMP-policy"]) == 1
    assert "models:/NAME@ALIAS" in capsys.readouterr().err
    assert sim2sim.main([]) == 2


def test_a_missing_opengl_library_is_one_line_naming_the_package(monkeypatch):
    """MUJOCO_GL=osmesa (or egl) without its system library: one line naming the package, before
    `import mujoco` fails inside PyOpenGL with a traceback."""
    import ctypes.util

    import isaacgymenvs

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    for backend, package in (("osmesa", "apt install libosmesa6"), ("egl", "apt install libegl1")):
        monkeypatch.setenv("MUJOCO_GL", backend)
        with pytest.raises(SystemExit) as e:
            isaacgymenvs._check_mujoco_gl()
        assert str(e.value).startswith(f"error: MUJOCO_GL={backend} needs the lib") and package in str(e.value)
    monkeypatch.setenv("MUJOCO_GL", "glfw")  # not a library this check knows: left to MuJoCo
    isaacgymenvs._check_mujoco_gl()


def test_sim2sim_runs_an_lstm_policy_from_a_zero_state_each_episode(tiny_checkpoint, tmp_path, monkeypatch):
    """sim2sim.run on an LSTM export, every policy call recorded: each episode starts from a zero
    state and carries it; replaying each episode's observations through rl_games' network (from a
    zero state) gives the recorded actions and states within 1e-5 (float32)."""
    from isaacgymenvs.export import _training_model
    from tests.helpers.training import lstm_checkpoint

    ck_path = lstm_checkpoint(tiny_checkpoint, tmp_path / "lstm.pth")
    out = export(ck_path, tmp_path / "export")["out"]
    episodes: list[list] = []  # per episode: (obs, h0, c0, actions) of each step

    class Recorded(sim2sim.OnnxPolicy):
        def reset(self, envs=None):
            super().reset(envs)
            episodes.append([])

        def __call__(self, obs):
            h0, c0 = (s.copy() for s in self.state)
            actions = super().__call__(obs)
            episodes[-1].append((np.array(obs), h0, c0, actions))
            return actions

    monkeypatch.setattr(sim2sim, "OnnxPolicy", Recorded)
    res = sim2sim.run(out, episodes=3, episode_length=30, seed=0)
    episodes = [e for e in episodes if e]  # the reset in __init__ precedes the first episode's own
    assert len(episodes) == 3 and sum(map(len, episodes)) == round(3 * res["mean_episode_length"])
    assert max(map(len, episodes)) >= 5  # some episode carries its state over several steps
    ck = torch.load(ck_path, weights_only=True)
    model = _training_model(ck["model"], ck["meta"])
    for steps in episodes:
        states = [torch.zeros(s.shape[0], 1, s.shape[2]) for s in model.get_default_rnn_state()]
        for obs, h0, c0, actions in steps:
            assert np.abs(h0 - states[0].numpy()).max() <= 1e-5 and np.abs(c0 - states[1].numpy()).max() <= 1e-5
            with torch.no_grad():
                r = model({"is_train": False, "obs": torch.from_numpy(obs), "prev_actions": None, "rnn_states": states})
            states = list(r["rnn_states"])
            assert np.abs(actions - r["mus"].numpy()).max() <= 1e-5
        assert not steps[0][1].any() and not steps[0][2].any()  # zeros at the episode's start
        assert len(steps) == 1 or np.abs(steps[1][1]).max() > 1e-3  # and carried (not zeros) after


def test_an_onnx_file_that_policy_json_does_not_describe_is_refused(tiny_checkpoint, exported, tmp_path, capsys):
    """An MLP policy.onnx with a policy.json that describes an LSTM (files of two exports mixed):
    one line naming both and the fix."""
    import shutil

    from tests.helpers.training import lstm_checkpoint

    lstm = export(lstm_checkpoint(tiny_checkpoint, tmp_path / "lstm.pth"), tmp_path / "lstm")["out"]
    mixed = tmp_path / "mixed"
    shutil.copytree(exported, mixed)
    shutil.copy(Path(lstm) / "policy.json", mixed / "policy.json")
    assert sim2sim.main([f"policy={mixed}", "episodes=1", "video=none"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "policy.onnx takes ['obs']" in err and "export the checkpoint again" in err


@pytest.mark.slow
def test_sim2sim_runs_a_trained_lstm_export_without_torch(tiny_lstm_checkpoint, tmp_path):
    out = export(tiny_lstm_checkpoint, tmp_path / "export")["out"]
    res = sim2sim_cli(f"policy={out}", "episodes=2", "video=none")
    assert res["episodes"] == 2 and res["mean_episode_length"] >= 1 and np.isfinite(res["score"])
