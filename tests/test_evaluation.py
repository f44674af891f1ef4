"""The deterministic evaluation: fixed starts shared by every trial, mean actions, full episodes,
the same numbers twice from the same checkpoint, and a score that ranks standing still and
falling below imitating."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isaacgymenvs import eval_metrics
from tests.helpers.training import trainer


@pytest.mark.slow
def test_same_checkpoint_same_numbers(tmp_path):
    """Two trainers built from one checkpoint (and a different training seed) evaluate to the same
    numbers, from the same starts and the same reference set."""
    first = trainer(tmp_path / "a", "max_iterations=1", "train.params.config.eval_every=1")
    ckpt = first.train()
    runs = []
    for i, seed in enumerate((1, 2)):
        t = trainer(tmp_path / f"b{i}", f"checkpoint={ckpt}", f"seed={seed}")
        ev = t.agent.evaluator
        runs.append((ev.motion_ids.clone(), ev.times.clone(), ev.ref.clone(), ev.run(t.agent.deterministic_policy)))
    (ids0, t0, ref0, m0), (ids1, t1, ref1, m1) = runs
    assert torch.equal(ids0, ids1) and torch.equal(t0, t1) and torch.equal(ref0, ref1)
    for k in m0:
        if k != "eval/time_s":
            assert m0[k] == m1[k], (k, m0[k], m1[k])
    assert set(m0) == {
        "eval/fall_rate",
        "eval/survival",
        "eval/motion_nn_dist",
        "eval/score",
        "eval/unstable_envs",
        "eval/time_s",
    }


def _holding(task, pose: torch.Tensor):
    """A policy that asks the PD controller for ``pose`` (inverting the task's action mapping)."""
    act = ((pose.to(task.action_offset) - task.action_offset) / task.action_scale).clamp(-1, 1)
    return lambda n: lambda obs: act.expand(n, -1).to(obs)


@pytest.mark.slow
def test_the_score_ranks_imitating_above_standing_still_and_falling(tmp_path, humanoid):
    """On a clip of a character standing with its arms down (known answer), one-second episodes:
    holding that pose stays up and looks like the clip (score 0.71: the PD controller lets it sag a
    little from the clip's exact pose); holding the default T-pose stays up but is not the
    clip (score near 0: the "standing still" anchor); every joint driven to the end of its action range
    throws the character over within a third of a second (survival and score near 0)."""
    from isaacgymenvs.motion.poselib import save_npz
    from tests.helpers.stress_clips import make_stress_clip

    _, sk = humanoid
    clip = make_stress_clip(sk, "stand")
    save_npz(clip.motion, tmp_path / "stand.npz")
    # one-second episodes: a PD controller holding a pose keeps the character up about two seconds
    t = trainer(
        tmp_path, "max_iterations=1", f"task.env.motion_file={tmp_path / 'stand.npz'}", "task.env.episodeLength=30"
    )
    ev = t.agent.evaluator
    task = ev.task
    imitate = ev.run(_holding(task, torch.as_tensor(clip.dof_pos[0], dtype=torch.float32)))
    t_pose = ev.run(_holding(task, task.default_dof_pos))
    fold = ev.run(lambda n: lambda obs: torch.ones(n, task.num_actions).to(obs))
    assert imitate["eval/survival"] == pytest.approx(1.0) and imitate["eval/fall_rate"] == 0.0
    assert t_pose["eval/survival"] == pytest.approx(1.0)
    assert fold["eval/fall_rate"] == 1.0 and fold["eval/survival"] < 0.15
    assert imitate["eval/score"] > 0.6 and t_pose["eval/score"] < 0.2 and fold["eval/score"] < 0.1
    assert t_pose["eval/motion_nn_dist"] > ev.nn_still  # the arms swing up from the clip's pose first


def test_score_by_hand():
    # survival 0.8, nn 20 between standing still (60) and the reference (0): 0.8 * 40/60
    assert eval_metrics.score(0.8, 20.0, 60.0, 0.0) == pytest.approx(0.8 * 40 / 60)
    assert eval_metrics.score(1.0, 70.0, 60.0, 0.0) == 0.0  # worse than standing still: nothing
    assert eval_metrics.score(1.0, -1.0, 60.0, 0.0) == 1.0  # closer than the reference's own samples: capped
    assert eval_metrics.score(1.0, 1.0, 0.5, 0.5) == 0.0  # no span between the anchors
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    ref = np.array([[0.0, 0.0]])
    # std floored at 0.05 for a constant reference: distances 0 and 5 / 0.05 = 100, mean 50
    assert float(eval_metrics.nn_dist(a, ref, ref.mean(0), ref.std(0))) == pytest.approx(50.0)
    assert float(
        eval_metrics.nn_dist(torch.tensor(a), torch.tensor(ref), torch.zeros(2), torch.zeros(2))
    ) == pytest.approx(50.0)


@pytest.mark.slow
def test_rollout_numbers_are_under_rollout_and_eval_runs_on_schedule(tmp_path):
    """Training-rollout numbers are rollout/*; eval/* appear only at evaluation epochs (every
    eval_every and the last), and evaluating changes no training state."""
    epochs = []
    t = trainer(
        tmp_path,
        "max_iterations=3",
        "train.params.config.eval_every=2",
        observers=[lambda e, f, m: epochs.append(dict(m))],
    )
    norm_before = t.agent.model.running_mean_std.count.clone()
    ev_obs = []
    run = t.agent.evaluator.run
    t.agent.evaluator.run = lambda make: (ev_obs.append(t.agent.model.running_mean_std.count.clone()), run(make))[1]
    t.train()
    assert ["eval/score" in m for m in epochs] == [False, True, True]
    assert all("rollout/motion_nn_dist" in m and "rollout/fall_rate" in m for m in epochs)
    assert norm_before is not None and len(ev_obs) == 2
    # the normalizer's count after training equals its count when the last evaluation began: evaluation adds nothing
    assert torch.equal(t.agent.model.running_mean_std.count, ev_obs[-1])


def test_no_evaluation_with_eval_envs_0(tmp_path):
    epochs = []
    t = trainer(
        tmp_path, "max_iterations=2", "train.params.config.eval_envs=0", observers=[lambda e, f, m: epochs.append(m)]
    )
    assert t.agent.evaluator is None
    t.train()
    assert not any(k.startswith("eval/") for m in epochs for k in m)
