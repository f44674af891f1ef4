"""The rl_games view of an AMP task: ``step`` resets finished environments itself.

``step`` returns the observation after resets (what the policy acts on next), the task reward,
``dones`` and ``infos`` with the transition's AMP observation (taken *before* the reset, so the
discriminator sees the real last transition), ``terminate`` (early termination: no value
bootstrap), ``time_outs`` (episode length reached: bootstrap) and ``unstable`` (the simulator
blew up in this transition: the learner gives it no discriminator data; it is also terminated).
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces


class AMPVecEnv:
    def __init__(self, task, rl_device="cpu"):
        self.task = task
        self.rl_device = torch.device(rl_device)
        self.num_envs = task.num_envs
        self.observation_space = spaces.Box(-np.inf, np.inf, (task.num_obs,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (task.num_actions,), dtype=np.float32)
        self.amp_observation_space = spaces.Box(-np.inf, np.inf, (task.num_amp_obs,), dtype=np.float32)
        # The whole environment step (physics, observations, termination, resets by mask) as one
        # callable the simulator may capture as a CUDA graph; not across devices (a copy to the
        # host cannot be captured) nor with resets by env ids (their count is read on the host).
        same_device = torch.device(task.device) == self.rl_device
        self._step_fn = (
            task.sim.graphed(self._step, generators=(task.generator,))
            if same_device and task.sync_free_resets
            else self._step
        )

    def get_env_info(self) -> dict:
        return {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "amp_observation_space": self.amp_observation_space,
            "agents": 1,
            "value_size": 1,
        }

    def get_number_of_agents(self) -> int:
        return 1

    def get_env_state(self):
        return None

    def set_env_state(self, state) -> None:
        pass

    def set_train_info(self, env_frames, agent) -> None:
        """rl_games hook, called every epoch; the task has no curriculum to update."""

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.rl_device, torch.float32)

    def reset(self):
        return self._out(self.task.reset())

    def reset_to_reference(self, motion_ids: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Every env from the given reference states (the evaluation's fixed starts)."""
        return self._out(self.task.reset_to_reference(motion_ids, times))

    def step(self, actions: torch.Tensor):
        obs, reward, done, terminated, truncated, amp_obs, unstable = self._step_fn(
            actions.to(self.task.device, torch.float32)
        )
        return (
            obs,
            reward,
            done,
            {"amp_obs": amp_obs, "terminate": terminated, "time_outs": truncated, "unstable": unstable},
        )

    def _step(self, actions: torch.Tensor):
        obs, reward, terminated, truncated = self.task.step(actions)
        amp_obs = self._out(self.task.amp_obs).clone()  # the transition's, before the resets rewrite the history
        unstable = self.task.unstable.to(self.rl_device, copy=True)
        done = terminated | truncated
        obs, _ = self.task.reset_done()  # no host-side test of `done`: the task resets by mask on a GPU
        rl = self.rl_device
        return self._out(obs), self._out(reward), done.to(rl), terminated.to(rl), truncated.to(rl), amp_obs, unstable

    def describe_unstable_start(self) -> str:
        return self.task.describe_unstable_start()

    def clip_names(self) -> list[str]:
        return [c.name for c in self.task.motion_lib.clips]

    def fetch_amp_obs_demo(self, n: int) -> torch.Tensor:
        return self._out(self.task.amp_obs_demo(n))
