"""The tiny CPU training every trainer test uses: its overrides, a composed config, a built trainer,
and the command line ``python isaacgymenvs/train.py`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from isaacgymenvs import train as train_mod

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "task=HumanoidAMP",
    "headless=True",
    "sim=mujoco",
    "num_envs=16",
    "train.params.config.horizon_length=16",
    "train.params.config.minibatch_size=128",
    "train.params.config.amp_minibatch_size=128",
    "train.params.config.amp_obs_demo_buffer_size=2048",
    "train.params.config.amp_replay_buffer_size=4096",
    "train.params.config.amp_batch_size=256",
    "train.params.config.eval_ref_size=512",
    "train.params.config.eval_agent_size=128",
    "train.params.network.mlp.units=[64,64]",
    "train.params.network.disc.units=[64,64]",
    "tracking=none",
]


#: the LSTM policy of cfg/sweep/lstm_cpu.yaml (seq_len is a sweep dimension only with one)
LSTM = "train.params.network.rnn={name: lstm, units: 32, layers: 1, before_mlp: False}"


def make_cfg(*overrides):
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        return compose("config", overrides=TINY + list(overrides))


def trainer(tmp_path, *overrides, observers=()):
    t = train_mod.Trainer(make_cfg(*overrides), observers=observers, runs_dir=str(tmp_path / "runs"))
    t.build()
    return t


def cli(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO), MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run(
        [sys.executable, str(REPO / "isaacgymenvs" / "train.py"), *TINY, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def start_training(tmp_path, *args, env: dict) -> subprocess.Popen:
    """``python isaacgymenvs/train.py ARGS`` started in its own process group (the caller stops it,
    e.g. with a signal), its console in ``stdout`` (text, stderr merged)."""
    return subprocess.Popen(
        [sys.executable, str(REPO / "isaacgymenvs" / "train.py"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stored_clip(task_name: str) -> str:
    """The task's default clip if it is stored here, else a stored default clip of another task of
    the same character (HumanoidAMPHands' cartwheel is not pinned: the humanoid's run clip).
    Skips the test when the character has no clip here."""
    import pytest

    from isaacgymenvs.task_registry import get_task, resolve_motion_file, task_names

    spec = get_task(task_name)
    same = [spec] + [get_task(n) for n in task_names() if get_task(n).character is spec.character and n != task_name]
    for t in same:
        try:
            return str(resolve_motion_file(t.default_clip, t.clip_dir))
        except FileNotFoundError:
            continue
    pytest.skip(f"no clip of {spec.character.name} is stored here (make assets)")


def lstm_checkpoint(base: Path, out: Path, seed: int = 0, **rnn) -> Path:
    """A checkpoint of an LSTM policy without training: ``base``'s (a trained checkpoint's) meta
    with ``network.rnn = {name: lstm, units: 32, layers: 1, **rnn}`` (``separate`` in ``rnn`` goes
    to ``network.separate``), the weights of rl_games' own network for it, drawn at random (biases
    and the LSTM too, at the scale of a trained policy's), and a random observation normalizer."""
    import torch

    from isaacgymenvs.learning.rl_games_adapter import build_policy_model

    ck = torch.load(base, weights_only=True)
    meta = ck["meta"]
    separate = rnn.pop("separate", meta["network"].get("separate", True))
    meta["network"] = dict(meta["network"], separate=separate, rnn={"name": "lstm", "units": 32, "layers": 1, **rnn})
    net = build_policy_model(meta["network"], meta["obs"], meta["actions"])
    g = torch.Generator().manual_seed(seed)
    state = net.state_dict()
    for k, v in state.items():  # of a trained policy's size: weights ~ 1/sqrt(fan-in), actions ~ 1
        if v.is_floating_point() and k.startswith("a2c_network."):
            scale = 1.0 / v.shape[1] ** 0.5 if v.dim() == 2 else 0.3
            state[k] = scale * torch.randn(v.shape, generator=g)
    state["running_mean_std.running_mean"] = torch.randn(meta["obs"], generator=g).double()
    state["running_mean_std.running_var"] = (0.1 + torch.rand(meta["obs"], generator=g)).double()
    ck["model"] = state
    torch.save(ck, out)
    return out
