"""The trainer as users run it: train, resume, test, sigma schemes, LSTM, bad configs and checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from isaacgymenvs import train as train_mod
from isaacgymenvs.learning.config_check import ConfigError
from isaacgymenvs.learning.learner import CheckpointError
from tests.helpers.training import REPO, TINY, cli, make_cfg, trainer  # noqa: F401 (other modules import them from here)


@pytest.mark.slow
def test_train_resume_and_test_from_the_command_line(tmp_path):
    r = cli(tmp_path, "max_iterations=3", "experiment=cli")
    assert r.returncode == 0, r.stderr[-2000:]
    ckpts = sorted(tmp_path.glob("runs/cli_*/nn/cli_3.pth"))
    assert len(ckpts) == 1, list(tmp_path.rglob("*.pth"))
    # quiet: one line per epoch; no seq_len warning for the default seq_len, no rl_games or Hydra set-up lines
    assert "seq_len" not in r.stderr and "build mlp" not in r.stdout and "RunningMeanStd" not in r.stdout
    assert "Future Hydra versions" not in r.stderr
    assert [ln.split("|")[0].split() for ln in r.stdout.splitlines() if ln.startswith("epoch")] == [
        ["epoch", "1"], ["epoch", "2"], ["epoch", "3"]
    ]  # fmt: skip
    first_run = ckpts[0].parent.parent
    before = {p: p.stat().st_mtime_ns for p in first_run.rglob("*") if p.is_file()}

    r = cli(tmp_path, "max_iterations=4", "experiment=cli", f"checkpoint={ckpts[0]}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "at epoch 3" in r.stdout and "epoch     4" in r.stdout and "epoch     1 " not in r.stdout
    assert len(list(tmp_path.glob("runs/cli_*/nn/cli_4.pth"))) == 1
    # the first run's files are untouched
    assert {p: p.stat().st_mtime_ns for p in first_run.rglob("*") if p.is_file()} == before

    r = cli(
        tmp_path,
        "test=True",
        "num_envs=2",
        "test_steps=200",
        f"checkpoint={ckpts[0]}",
        f"video={tmp_path / 'play.gif'}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "'steps': 200" in r.stdout and "'video_frames': 200" in r.stdout
    from PIL import Image

    gif = Image.open(tmp_path / "play.gif")
    assert gif.n_frames == 200 and np.asarray(gif.convert("RGB"), dtype=float).std() > 5.0  # something is drawn


@pytest.mark.slow
def test_resume_restores_every_statistic(tmp_path):
    t = trainer(tmp_path, "max_iterations=2")
    last = t.train()
    ckpt = torch.load(last, weights_only=True)
    r = trainer(tmp_path, "max_iterations=3", f"checkpoint={last}")
    a = r.agent
    assert a.epoch_num == 2 and a.frame == ckpt["frame"]
    model_state = a.model.state_dict()
    for k in (
        "running_mean_std.running_mean",
        "running_mean_std.running_var",
        "running_mean_std.count",
        "value_mean_std.running_mean",
        "value_mean_std.running_var",
    ):
        assert torch.equal(model_state[k], ckpt["model"][k]), k
    disc_state = a.disc.state_dict()
    for k in ("amp_norm.running_mean", "amp_norm.running_var", "amp_norm.count"):
        assert torch.equal(disc_state[k], ckpt["amp"][k]), k
    assert torch.equal(a.log_std.detach(), ckpt["model"]["a2c_network.sigma"])
    # the optimizer continues where it stopped (Adam step counts are restored)
    steps = [s["step"] for s in a.optimizer.state_dict()["state"].values()]
    assert steps and all(float(s) > 0 for s in steps)


@pytest.mark.slow
def test_discriminator_learns_with_finite_losses(tmp_path):
    history = []
    t = trainer(
        tmp_path,
        "max_iterations=8",
        "train.params.config.learning_rate=2e-4",
        observers=[lambda e, f, m: history.append(m)],
    )
    t.train()
    assert len(history) == 8
    for m in history:
        for k, v in m.items():
            assert math.isfinite(v), (k, v)
    last = history[-3:]
    demo = sum(m["disc/demo_logit"] for m in last) / 3
    agent = sum(m["disc/agent_logit"] for m in last) / 3
    assert demo > agent + 1.0
    assert sum(m["disc/demo_acc"] for m in last) / 3 > 0.6
    expected = {
        "disc/agent_logit",
        "disc/agent_replay_logit",
        "disc/demo_logit",
        "disc/loss",
        "disc/grad_penalty",
        "disc/agent_acc",
        "disc/demo_acc",
        "reward/disc",
        "reward/disc_std",
        "reward/task",
        "episode/length",
        "loss/actor",
        "loss/critic",
        "loss/bounds",
        "policy/sigma",
        "perf/env_steps_per_s",
        "rollout/motion_nn_dist",
        "rollout/fall_rate",
        "sim/unstable_envs",
        "loss/nonfinite_updates",
        "eval/fall_rate",
        "eval/survival",
        "eval/motion_nn_dist",
        "eval/score",
    }
    assert expected <= set(history[-1])  # the last epoch is evaluated


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["fixed", "learned"])
def test_sigma_schemes(tmp_path, scheme):
    t = trainer(tmp_path, "max_iterations=2", f"sigma={scheme}")
    before = t.agent.log_std.detach().clone()
    assert torch.allclose(before, torch.full_like(before, -2.9))
    t.train()
    after = t.agent.log_std.detach()
    if scheme == "fixed":
        assert torch.equal(before, after)
        assert not t.agent.log_std.requires_grad
    else:
        assert (after - before).abs().max() > 1e-5
    ckpt = torch.load(sorted(Path(t.agent.nn_dir).glob("*_2.pth"))[0], weights_only=True)
    assert ckpt["sigma_scheme"] == scheme


@pytest.mark.slow
def test_lstm_policy_with_seq_len_2(tmp_path):
    t = trainer(
        tmp_path,
        "max_iterations=2",
        "train.params.config.seq_len=2",
        "train.params.network.rnn={name: lstm, units: 32, layers: 1, before_mlp: False}",
    )
    assert t.agent.is_rnn and t.agent.seq_length == 2
    assert t.train() is not None


@pytest.mark.slow
def test_sigma_number_overrides_the_std_on_restore(tmp_path):
    last = trainer(tmp_path, "max_iterations=1").train()
    r = trainer(tmp_path, "max_iterations=2", f"checkpoint={last}", "sigma=0.2")
    assert torch.allclose(r.agent.log_std.detach().exp(), torch.full((28,), 0.2))


@pytest.mark.parametrize(
    "override,match",
    [
        ("+train.params.config.gamam=0.9", r"gamam: unknown key \(did you mean 'gamma'\?\)"),
        ("train.params.config.horizon_length=abc", "horizon_length: expected a int"),
        (
            "train.params.config.minibatch_size=100",
            r"minibatch_size \(100\) must divide num_envs x horizon_length \(16 x 16 = 256\)",
        ),
        ("train.params.config.gamma=1.5", r"gamma: must lie in \(0, 1\]"),
        ("train.params.config.disc_reward_type=wgan", "disc_reward_type: must be one of"),
        ("sigma=wobbly", "sigma: must be 'fixed', 'learned' or a positive number"),
        ("sim=physx", "sim: must be mujoco or mujoco_warp"),
        ("+task.env.numEnv=8", r"task\.env\.numEnv: unknown key \(did you mean 'numEnvs'\?\)"),
        (
            "+train.params.config.sigma_scheme=learned",
            r"sigma_scheme: not a setting here: the action noise is set by sigma=",
        ),
        ("+train.params.config.seq_length=8", r"seq_length: not a setting here: use train\.params\.config\.seq_len"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        train_mod.Trainer(make_cfg(override), runs_dir=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written


def test_lstm_seq_len_must_divide_horizon(tmp_path):
    with pytest.raises(ConfigError, match=r"seq_len \(3\) must divide horizon_length \(16\)"):
        train_mod.Trainer(
            make_cfg("train.params.config.seq_len=3", "train.params.network.rnn={name: lstm, units: 8, layers: 1}")
        )


@pytest.mark.slow
def test_missing_corrupt_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        train_mod.Trainer(make_cfg(f"checkpoint={tmp_path / 'nope.pth'}"))
    last = trainer(tmp_path, "max_iterations=1").train()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(Path(last).read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot be read"):
        train_mod.Trainer(make_cfg(f"checkpoint={bad}"))
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not an AMP checkpoint"):
        train_mod.Trainer(make_cfg(f"checkpoint={other}"))
    t = train_mod.Trainer(
        make_cfg(f"checkpoint={last}", "train.params.network.mlp.units=[32,32]"), runs_dir=str(tmp_path / "r2")
    )
    with pytest.raises(
        CheckpointError,
        match=r"does not fit this task/network: .*a2c_network.actor_mlp.0.weight: checkpoint \(64, 105\) vs model \(32, 105\)",
    ):
        t.build()


@pytest.mark.slow
def test_cli_reports_bad_config_in_one_error(tmp_path):
    r = cli(tmp_path, "train.params.config.minibatch_size=100", "+train.params.config.gamam=1")
    assert r.returncode == 2
    assert "gamam: unknown key" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_agent_gae_and_bound_loss_are_the_tested_pure_functions(tmp_path):
    """The agent's GAE (through amp_math.gae) equals rl_games' own recursion on the same rollout,
    and its bound loss is amp_math's per-sample form with soft bound 1.0."""
    from rl_games.common.a2c_common import A2CBase

    from isaacgymenvs.learning import amp_math

    a = trainer(tmp_path, "max_iterations=1").agent
    g = torch.Generator().manual_seed(0)
    T, N = a.horizon_length, 5
    rewards = torch.randn(T, N, 1, generator=g)
    values = torch.randn(T, N, 1, generator=g)
    last_values = torch.randn(N, 1, generator=g)
    mb_dones = (torch.rand(T, N, generator=g) < 0.3).float()
    last_dones = (torch.rand(N, generator=g) < 0.3).float()
    ours = a.discount_values(last_dones, last_values, mb_dones, values, rewards)
    theirs = A2CBase.discount_values(a, last_dones, last_values, mb_dones, values, rewards)
    assert torch.allclose(ours, theirs, atol=1e-6)
    mu = torch.tensor([[1.5, -2.0, 0.3]])
    assert a.bound_loss(mu).item() == pytest.approx(0.25 + 1.0)
    assert torch.equal(a.bound_loss(mu), amp_math.bound_loss_per_sample(mu))


@pytest.mark.slow
@pytest.mark.parametrize("rnn", [False, True], ids=["mlp", "lstm"])
def test_sync_free_rollout_equals_rl_games_rollout(tmp_path, rnn):
    """Our rollout (episode statistics and RNN resets by mask, no dones.nonzero() per step) gives
    the same batch, bit for bit, as rl_games' own play_steps / play_steps_rnn from the same seed,
    and the same mean length of the episodes that ended."""
    from rl_games.common.a2c_common import A2CBase

    over = ["seed=7", "task.env.episodeLength=6", "task.env.stateInit=Random"]
    if rnn:
        over += [
            "train.params.network.rnn={name: lstm, units: 16, layers: 1, before_mlp: False}",
            "train.params.config.seq_len=4",
        ]
    batches, lengths = [], []
    for original in (False, True):
        agent = trainer(tmp_path / str(original), *over).agent
        agent.init_tensors()
        agent.obs = agent.env_reset()
        if original:  # rl_games' loop, with the AMP env_step it calls
            agent._reset_rollout_stats()
            agent.game_lengths.clear()
            b = (A2CBase.play_steps_rnn if rnn else A2CBase.play_steps)(agent)
            lengths.append(float(agent.game_lengths.get_mean()))
        else:
            b = agent.play_steps_rnn() if rnn else agent.play_steps()
            lengths.append(agent._episode_length())
            assert int(agent._episodes[0]) > 0  # episodes did end (episodeLength=6 < horizon 16)
        batches.append(b)
    ours, theirs = batches
    assert set(ours) == set(theirs)
    for k in ours:
        if isinstance(ours[k], torch.Tensor):
            torch.testing.assert_close(ours[k], theirs[k], rtol=0, atol=0, msg=k)
        elif k == "rnn_states":
            for a, b in zip(ours[k], theirs[k]):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert lengths[0] == pytest.approx(lengths[1], abs=1e-5)


def test_discriminator_gradients_do_not_add_up_over_minibatches(tmp_path):
    """rl_games clears only its model's gradients; the discriminator's must be cleared too, or every
    Adam step follows the sum of all earlier minibatch gradients. The same minibatch three times; from
    the second step on the learning rate is 0 and the AMP normalizer frozen, so the third step's
    gradients equal the second's (summed, they would be twice them)."""
    a = trainer(tmp_path, "max_iterations=1").agent
    a.last_lr = 0.0  # rl_games sets every group's lr to last_lr after each step: the weights stay put
    a.init_tensors()
    a.obs = a.env_reset()
    batch = a.play_steps()
    a.demo_buffer.store(a.vec_env.fetch_amp_obs_demo(a.amp_batch_size))
    a.prepare_dataset(batch)
    a._disc_stats = []
    mb = a.dataset[0]
    grads = []
    for _ in range(3):
        a._disc_rows.step = 0  # the same discriminator rows each time (the stream would move on)
        a.train_actor_critic(mb)
        grads.append([p.grad.clone() for p in a.disc.parameters()])
        a.disc.amp_norm.count.fill_(1e12)  # after the first pass the AMP normalizer no longer moves
    assert grads[1][-2].abs().sum() > 0
    for g2, g3 in zip(grads[1], grads[2]):
        torch.testing.assert_close(g3, g2, rtol=1e-4, atol=1e-6)
