"""The PPO + discriminator minibatch step replayed as a CUDA graph does what the eager step does.

Runs where a CUDA GPU and MuJoCo Warp are; elsewhere it skips and says why. One learner: a real
epoch first (the step is captured on its third minibatch), then the same minibatches from one saved
state (weights, Adam state, both normalizers, the shuffled rollout and the random generator) three
times: through the graph and twice eagerly (the same capturable Adam, the graph switched off).

Tolerance: the two eager runs measure this GPU's run-to-run spread of the update; the graph's
parameters after 16 minibatches must lie within 4x that spread of the eager ones, or within 1e-4
of the update's own size (||theta_eager - theta_0||), whichever is larger. 1e-4: float32 sums in
another order differ by ~1e-7 relative per step and Adam's steps stay small; a graph that reads a
stale input, an old optimizer state or a normalizer that no longer accumulates is off by 1e-1 to 1.
"""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

HAVE_WARP = importlib.util.find_spec("mujoco_warp") is not None
RUNNABLE = HAVE_WARP and torch.cuda.is_available()
pytestmark = pytest.mark.skipif(not RUNNABLE, reason="needs mujoco-warp and a CUDA GPU")

OVERRIDES = (
    "sim=mujoco_warp",
    "rl_device=cuda:0",
    "train.params.config.capture_update=True",
    "num_envs=256",
    "train.params.config.minibatch_size=512",
    "train.params.config.amp_minibatch_size=512",
    "train.params.network.mlp.units=[256,128]",
    "train.params.network.disc.units=[256,128]",
)


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    from tests.helpers.training import trainer

    agent = trainer(tmp_path_factory.mktemp("captured"), *OVERRIDES).agent
    assert agent.capture_update and agent._captured_update is not None
    agent.init_tensors()
    agent.obs = agent.env_reset()
    agent.train_epoch()  # 6 mini-epochs x 8 minibatches: two eager, a capture, then replays
    assert agent._captured_update.error is None, agent._captured_update.error
    assert agent._captured_update.num_graphs >= 1 and agent._captured_update.replays > 0
    with torch.no_grad():
        batch = agent.play_steps()
    agent.set_train()
    agent.prepare_dataset(batch)
    return agent


def _params(agent) -> torch.Tensor:
    ps = list(agent.model.parameters()) + list(agent.disc.parameters())
    return torch.cat([p.detach().flatten().double() for p in ps])


def _save(agent) -> dict:
    opt = {id(p): {k: v.clone() for k, v in st.items()} for p, st in agent.optimizer.state.items()}
    return {
        "model": copy.deepcopy(agent.model.state_dict()),
        "disc": copy.deepcopy(agent.disc.state_dict()),
        "opt": opt,
        "data": {k: v.clone() if torch.is_tensor(v) else v for k, v in agent.dataset.values_dict.items()},
        "rows": agent._disc_rows.step,
    }


def _restore(agent, s: dict) -> None:
    """In place, so the captured graphs keep reading the same tensors."""
    agent.model.load_state_dict(s["model"])
    agent.disc.load_state_dict(s["disc"])
    for p, st in agent.optimizer.state.items():
        for k, v in st.items():
            v.copy_(s["opt"][id(p)][k])
    agent.dataset.values_dict = {k: v.clone() if torch.is_tensor(v) else v for k, v in s["data"].items()}
    agent._disc_rows.step = s["rows"]
    agent._disc_stats = []


def _minibatches(agent, saved: dict, captured: bool, mini_epochs: int = 2) -> tuple[torch.Tensor, int]:
    """Parameters after ``mini_epochs`` passes over the rollout from ``saved``; and the graph replays."""
    _restore(agent, saved)
    call = agent._captured_update
    replays = call.replays
    if not captured:
        agent._captured_update = None
    try:
        torch.cuda.manual_seed(123)  # the dataset's permutation of the rollout
        for _ in range(mini_epochs):
            for i in range(len(agent.dataset)):
                out = agent.train_actor_critic(agent.dataset[i])
                agent.dataset.update_mu_sigma(out[6], out[7])
        torch.cuda.synchronize()
    finally:
        agent._captured_update = call
    return _params(agent), call.replays - replays


def test_the_captured_step_gives_the_eager_steps_parameters(learner):
    saved = _save(learner)
    theta0 = _params(learner)
    graph, replays = _minibatches(learner, saved, captured=True)
    assert replays == 2 * len(learner.dataset)  # every step of this run was a replay
    norm_graph = learner.model.running_mean_std.running_mean.clone()
    eager, eager_replays = _minibatches(learner, saved, captured=False)
    norm_eager = learner.model.running_mean_std.running_mean.clone()
    eager2, _ = _minibatches(learner, saved, captured=False)
    assert eager_replays == 0
    size = (eager - theta0).norm().item()
    assert size > 0  # the minibatches changed the weights
    err = (graph - eager).norm().item() / size
    spread = (eager2 - eager).norm().item() / size
    print(f"captured vs eager {err:.3g}, eager vs eager {spread:.3g} (relative to the update, {size:.3g})")
    assert err <= max(4 * spread, 1e-4), (err, spread)
    # the observation normalizer accumulated over the replays as over the eager steps
    assert torch.allclose(norm_graph, norm_eager, rtol=1e-6, atol=1e-9)
    assert (norm_eager - saved["model"]["running_mean_std.running_mean"]).abs().max() > 0


def test_a_new_learning_rate_reaches_the_graph_and_a_new_coefficient_captures_anew(learner):
    saved = _save(learner)
    lr = learner.last_lr
    call = learner._captured_update
    try:
        _restore(learner, saved)
        before = _params(learner)
        learner.set_hyperparameter("learning_rate", 0.0)  # Adam with rate 0 moves nothing
        still, replays = _minibatches(learner, saved, captured=True, mini_epochs=1)
        assert replays == len(learner.dataset) and torch.equal(still, before)
        learner.set_hyperparameter("learning_rate", lr)
        moved, _ = _minibatches(learner, saved, captured=True, mini_epochs=1)
        assert (moved - before).abs().max() > 0
        learner.set_hyperparameter("bounds_loss_coef", 3.0)  # baked into the graph: a new one
        assert call.num_graphs == 0
        _, replays = _minibatches(learner, saved, captured=True, mini_epochs=1)
        assert call.num_graphs == 1 and replays == len(learner.dataset) - call.warmup_calls
    finally:
        learner.set_hyperparameter("learning_rate", lr)
        learner.set_hyperparameter("bounds_loss_coef", 10.0)


def test_a_checkpoint_of_a_captured_run_holds_a_plain_optimizer_and_restores_captured(learner, tmp_path):
    from isaacgymenvs.learning.learner import load_checkpoint_file

    _minibatches(learner, _save(learner), captured=True, mini_epochs=1)
    assert learner._captured_update.num_graphs >= 1  # so that the restore below has graphs to drop
    path = learner.save_checkpoint(tmp_path / "c.pth")
    groups = load_checkpoint_file(path)["optimizer"]["param_groups"]
    assert all(isinstance(g["lr"], float) and g["capturable"] is False for g in groups)
    learner.restore_checkpoint(path)
    assert all(g["capturable"] and g["lr"] is t for g, t in zip(learner.optimizer.param_groups, learner._lr_tensors))
    assert all(st["step"].is_cuda for st in learner.optimizer.state.values())
    assert learner._captured_update.num_graphs == 0  # the loaded state tensors are new: capture again
    learner.train_epoch()
    assert learner._captured_update.error is None and learner._captured_update.num_graphs >= 1


def test_a_minibatch_whose_gradients_are_not_finite_changes_nothing_through_the_graph(learner):
    """The skip of a non-finite step (fused Adam's ``found_inf``) is itself replayed from the graph:
    weights, Adam's moments and step count stay, the count of skipped steps goes up by one, and the
    next finite minibatch, through the same graph, moves the weights again."""
    saved = _save(learner)
    _minibatches(learner, saved, captured=True, mini_epochs=1)  # a graph for this key, whatever ran before
    _restore(learner, saved)
    call = learner._captured_update
    assert call.num_graphs >= 1
    before = _params(learner)
    adam = {id(p): {k: v.clone() for k, v in st.items()} for p, st in learner.optimizer.state.items()}
    skipped = int(learner._nonfinite)
    replays = call.replays
    bad = dict(learner.dataset[0])
    bad["advantages"] = bad["advantages"].clone()
    bad["advantages"][0] = float("nan")  # one sample: the actor's loss and its gradients are NaN
    learner.train_actor_critic(bad)
    torch.cuda.synchronize()
    assert call.replays == replays + 1  # the bad minibatch went through the graph, not an eager step
    assert torch.equal(_params(learner), before)
    for p, st in learner.optimizer.state.items():
        for k, v in st.items():
            assert torch.equal(v, adam[id(p)][k]), k
    assert int(learner._nonfinite) == skipped + 1
    learner.train_actor_critic(learner.dataset[1])
    torch.cuda.synchronize()
    assert call.replays == replays + 2 and int(learner._nonfinite) == skipped + 1
    assert (_params(learner) - before).abs().max() > 0
