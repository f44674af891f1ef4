"""A simulator blow-up is caught, not trained on; non-finite updates are skipped; the rollout is
shuffled for PPO and streamed whole to the discriminator. Real trainings on tiny settings."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from isaacgymenvs.learning.learner import SimulationUnstableError
from tests.helpers.training import cli, trainer


def _backends():
    gpu = importlib.util.find_spec("mujoco_warp") is not None and torch.cuda.is_available()
    return [
        pytest.param(["sim=mujoco"], id="mujoco"),
        pytest.param(
            ["sim=mujoco_warp", "rl_device=cuda:0"],
            id="mujoco_warp",
            marks=pytest.mark.skipif(not gpu, reason="mujoco_warp needs mujoco-warp and a CUDA GPU"),
        ),
    ]


def _break(sim, env: int, fault: str) -> None:
    """Rewrite one env's current state with a NaN joint velocity, or a joint at 1e5 rad/s."""
    ids = torch.tensor([env], device=sim.device)
    dvel = sim.dof_vel[ids].clone()
    dvel[0, 4] = float("nan") if fault == "nan" else 1e5
    sim.write_state(
        ids,
        sim.root_pos_w[ids].clone(),
        sim.root_quat_w[ids].clone(),
        sim.root_lin_vel_w[ids].clone(),
        sim.root_ang_vel_w[ids].clone(),
        sim.dof_pos[ids].clone(),
        dvel,
    )


def _one_rollout(agent) -> dict:
    """Collect one rollout and make it the dataset, as an epoch does before its updates."""
    agent.init_tensors()
    agent.obs = agent.env_reset()
    agent._reset_rollout_stats()
    batch = agent.play_steps()
    agent.demo_buffer.store(agent.vec_env.fetch_amp_obs_demo(agent.amp_batch_size))
    agent.prepare_dataset(batch)
    agent._disc_stats = []
    return batch


def _all_finite(module_or_tensors) -> bool:
    ts = module_or_tensors.state_dict().values() if hasattr(module_or_tensors, "state_dict") else module_or_tensors
    return all(torch.isfinite(t.float()).all() for t in ts if torch.is_tensor(t) and t.is_floating_point())


@pytest.mark.slow
@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("fault", ["nan", "huge_velocity"])
def test_a_broken_env_is_caught_and_training_goes_on(tmp_path, backend, fault):
    """Env 3 is broken at three steps of the run. Training finishes; ``sim/unstable_envs`` counts
    exactly those three; every observation the policy sees and every AMP observation is finite; the
    normalizers, weights and every logged metric stay finite; the broken transitions are left out
    of the discriminator's rows and the replay buffer."""
    epochs = []
    t = trainer(tmp_path, *backend, "max_iterations=3", observers=[lambda e, f, m: epochs.append(dict(m))])
    agent, env = t.agent, t.vec_env
    sim = env.task.sim
    calls, seen = {"n": 0}, {"obs": [], "amp": [], "unstable": []}
    inner = env.step
    broken_at = {5, 20, 37}  # 16 steps an epoch: epochs 1, 2 and 3

    def step(actions):
        calls["n"] += 1
        if calls["n"] in broken_at:
            _break(sim, 3, fault)
        obs, r, d, info = inner(actions)
        seen["obs"].append(obs.clone())
        seen["amp"].append(info["amp_obs"].clone())
        seen["unstable"].append(info["unstable"].clone())
        return obs, r, d, info

    env.step = step
    valid_rows, replay_seen = [], []
    inner_prepare = agent.prepare_dataset

    def prepare(batch):
        inner_prepare(batch)
        valid_rows.append((int(agent._epoch_valid.numel()), len(agent._disc_rows)))
        replay_seen.append(agent.replay_buffer.num_seen)

    agent.prepare_dataset = prepare
    t.train()
    assert len(epochs) == 3
    assert [m["sim/unstable_envs"] for m in epochs] == [1.0, 1.0, 1.0]
    flagged = torch.stack(seen["unstable"]).cpu()
    assert flagged.sum() == 3 and flagged[:, 3].sum() == 3  # env 3 only
    assert all(torch.isfinite(o).all() for o in seen["obs"]) and all(torch.isfinite(a).all() for a in seen["amp"])
    for m in epochs:
        bad = {k: v for k, v in m.items() if not math.isfinite(v)}
        assert not bad, bad
    assert _all_finite(agent.model) and _all_finite(agent.disc)  # weights and the obs, value and AMP normalizers
    assert [n - k for n, k in valid_rows] == [1, 1, 1]  # one row a rollout left out of the discriminator
    assert replay_seen[1] - replay_seen[0] == valid_rows[0][1]  # and out of the replay buffer


@pytest.mark.slow
def test_a_coarse_timestep_trains_to_the_end_with_its_blow_ups_counted(tmp_path):
    """One physics step of 1/30 s per control step: MuJoCo flags ~45 % of the resets as unstable
    (it used to reset them to the rest pose silently). The run goes to the end, counts them, and
    every metric it logs is finite."""
    epochs = []
    t = trainer(
        tmp_path,
        "max_iterations=4",
        "task.sim.mujoco_timestep=0.0333",
        observers=[lambda e, f, m: epochs.append(dict(m))],
    )
    assert t.vec_env.task.sim.substeps == 1
    t.train()
    assert len(epochs) == 4 and sum(m["sim/unstable_envs"] for m in epochs) > 0
    for m in epochs:
        bad = {k: v for k, v in m.items() if not math.isfinite(v)}
        assert not bad, bad
    assert _all_finite(t.agent.model) and _all_finite(t.agent.disc)


@pytest.mark.slow
def test_too_many_blow_ups_stop_the_run_with_one_line(tmp_path):
    """More than max_unstable_share of the resets of the last 10 epochs blowing up ends the run with
    one error naming the share, the clip and the clip time of the last blown-up env's reference
    start (exit code 1); the epochs before it were trained and checkpointed."""
    epochs = []
    with pytest.raises(SimulationUnstableError, match=r"blew up in \d+ of \d+ resets.*amp_humanoid_run.*t=\d+\.\d+ s"):
        trainer(
            tmp_path,
            "max_iterations=30",
            "task.sim.mujoco_timestep=0.0333",
            "train.params.config.max_unstable_share=0.3",
            observers=[lambda e, f, m: epochs.append(e)],
        ).train()
    assert epochs == list(range(1, 11))  # judged once the 10-epoch window is full
    r = cli(
        tmp_path, "max_iterations=30", "task.sim.mujoco_timestep=0.0333", "train.params.config.max_unstable_share=0.3"
    )
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 1 and len(err) == 1 and "max_unstable_share" in err[0] and "motion check" in err[0]
    assert "Traceback" not in r.stderr


def test_a_nonfinite_minibatch_changes_no_weight(tmp_path):
    """A minibatch whose loss is NaN is skipped: weights and Adam's state stay as they were, the skip
    is counted, and the other minibatches still train."""
    t = trainer(tmp_path, "max_iterations=1")
    a = t.agent
    _one_rollout(a)
    inner = a.calc_losses
    a.calc_losses = lambda *args: (lambda out: (out[0] * float("nan"),) + out[1:])(inner(*args))
    before = {k: v.clone() for k, v in a.model.state_dict().items()}
    disc_before = {k: v.clone() for k, v in a.disc.state_dict().items()}
    a.train_actor_critic(a.dataset[0])
    assert int(a._nonfinite) == 1
    for k, v in a.model.a2c_network.state_dict().items():
        torch.testing.assert_close(v, before["a2c_network." + k], rtol=0, atol=0, msg=k)
    for k, v in a.disc.named_parameters():
        torch.testing.assert_close(v.detach(), disc_before[k], rtol=0, atol=0, msg=k)
    assert all(int(s["step"]) == 0 for s in a.optimizer.state.values())  # the skipped step is not counted
    a.calc_losses = inner
    a.train_actor_critic(a.dataset[1])
    assert int(a._nonfinite) == 1
    changed = any(not torch.equal(v, before["a2c_network." + k]) for k, v in a.model.a2c_network.state_dict().items())
    assert changed and _all_finite(a.model)


@pytest.mark.slow
def test_a_checkpoint_with_nonfinite_weights_is_never_the_best(tmp_path):
    """Weights that turn non-finite after epoch 1: epoch 2's checkpoint is written (flagged
    ``finite: False``) but the best checkpoint stays epoch 1's, whatever the metric says."""
    t = trainer(
        tmp_path, "max_iterations=2", "train.params.config.save_frequency=1", "train.params.config.eval_every=1"
    )
    a = t.agent
    inner = a.epoch_metrics

    def metrics(*args):
        m = inner(*args)
        if a.epoch_num == 2:
            with torch.no_grad():
                a.model.a2c_network.mu.weight.view(-1)[0] = float("nan")
            m["eval/score"] = 1e9  # the best score ever
        return m

    a.epoch_metrics = metrics
    t.train()
    nn = t.run_dir / "nn"
    best = torch.load(nn / "HumanoidAMP_best.pth", weights_only=True)
    last = torch.load(nn / "HumanoidAMP_2.pth", weights_only=True)
    assert best["finite"] is True and best["epoch"] == 1 and _all_finite(best["model"].values())
    assert last["finite"] is False


@pytest.mark.slow
def test_every_rollout_row_reaches_ppo_and_the_discriminator_in_one_epoch(tmp_path):
    """16 envs x 16 steps = 256 rows; minibatches of 64, 6 mini-epochs, 32 discriminator rows per
    step (24 steps x 32 = 768 >= 256). Every row reaches the PPO loss in every mini-epoch, in a fresh
    order each time, and every row reaches the discriminator within the epoch. (Sliced in storage
    order as rl_games does, the discriminator saw rows 0-31, 64-95, ...: half of them.)"""
    t = trainer(
        tmp_path,
        "max_iterations=1",
        "train.params.config.minibatch_size=64",
        "train.params.config.amp_minibatch_size=32",
    )
    a = t.agent
    batch = _one_rollout(a)
    rollout_obs, rollout_amp = batch["obses"], a._epoch_amp
    ppo_rows, disc_rows = [], []
    inner = a.calc_gradients

    def calc(input_dict):
        ppo_rows.append(input_dict["obs"].clone())
        disc_rows.append(a._amp_mb[0].clone())
        return inner(input_dict)

    a.calc_gradients = calc
    for _ in range(a.mini_epochs_num):
        for i in range(len(a.dataset)):
            a.train_actor_critic(a.dataset[i])

    def index(rows, table):  # which table row each row is (exact match)
        d = torch.cdist(rows.double(), table.double())
        assert d.min(1).values.max() < 1e-4  # cdist rounding; distinct rows lie metres apart
        return d.argmin(1)

    n = rollout_obs.shape[0]
    per_epoch = len(a.dataset)
    orders = []
    for e in range(a.mini_epochs_num):
        idx = torch.cat([index(r, rollout_obs) for r in ppo_rows[e * per_epoch : (e + 1) * per_epoch]])
        assert sorted(idx.tolist()) == list(range(n))
        orders.append(idx)
    assert not torch.equal(orders[0], orders[1])
    seen = torch.cat([index(r, rollout_amp) for r in disc_rows])
    assert set(seen.tolist()) == set(range(n))
    counts = torch.bincount(seen, minlength=n)
    assert counts.max() - counts.min() <= 1  # passes over the rows, none twice before all once


@pytest.mark.slow
def test_bad_guard_settings_are_config_errors(tmp_path):
    r = cli(tmp_path, "task.env.maxStateSpeed=-1", "train.params.config.max_unstable_share=2")
    assert r.returncode == 2 and "max_unstable_share" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli(tmp_path, "task.env.maxStateSpeed=-1")
    assert r.returncode == 2 and "maxStateSpeed" in r.stderr and "Traceback" not in r.stderr
