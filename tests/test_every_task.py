"""Every registered task, end to end as a user runs it: build, reset, step (one tiny training epoch),
export, and replay the export in MuJoCo C (sim2sim), twice with the same seed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from isaacgymenvs import sim2sim
from isaacgymenvs.export import export
from isaacgymenvs.task_registry import get_task, task_names
from tests.helpers.training import stored_clip, trainer

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", task_names())
def test_every_registered_task_trains_exports_and_replays(task, tmp_path):
    clip = stored_clip(task)
    t = trainer(
        tmp_path, f"task={task}", f"task.env.motion_file={clip}", "max_iterations=1", "train.params.config.eval_envs=4"
    )
    spec, env = get_task(task), t.vec_env
    assert t.c["task"]["name"] == task and env.task.sim.num_dof == env.task.num_actions == env.task.sim.model.nu
    obs = env.reset()
    obs = obs["obs"] if isinstance(obs, dict) else obs
    assert obs.shape == (16, env.task.num_obs) and bool(torch.isfinite(obs).all())

    ckpt = t.train()
    assert ckpt.name == f"{t.train_cfg['name']}_1.pth" and ckpt.is_file()
    assert t.agent.frame == 16 * 16  # one epoch: horizon 16 x 16 envs

    res = export(ckpt, tmp_path / "export")
    assert res["check"] == "passed"
    info = json.loads((Path(res["out"]) / "policy.json").read_text())
    assert info["task"] == task and info["character"] == spec.character.name
    assert sum(b["size"] for b in info["observation"]["layout"]) == info["observation"]["size"] == env.task.num_obs
    assert len(info["joint_order"]) == info["action"]["size"] == env.task.num_actions

    first = sim2sim.run(res["out"], episodes=2, motion=clip, video=None, seed=3)
    assert first["task"] == task and first["episodes"] == 2
    assert first["fall_rate"] in (0.0, 0.5, 1.0) and math.isfinite(first["motion_nn_dist"])
    again = sim2sim.run(res["out"], episodes=2, motion=clip, video=None, seed=3)
    assert again == first  # the same export, clip and seed: the same replay
