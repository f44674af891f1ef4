"""The deterministic evaluation of a policy, separate from the training rollouts.

A small task of its own (``eval_envs`` envs, the training task's config) starts every env from a
fixed reference state (clip and clip time drawn once from ``eval_seed``: the same for every trial
of a sweep that trains on the same clips), runs the policy's **mean** action for one full episode
(``episodeLength``; an env that falls or blows up is out from that step on), and reports:

* ``eval/fall_rate``: the share of the episodes that ended before the episode length;
* ``eval/survival``: the mean share of the episode length survived;
* ``eval/motion_nn_dist``: the mean distance from the AMP observation of every step of those
  episodes to the nearest of a fixed reference set (``eval_ref_size`` demo samples drawn from
  ``eval_seed``), standardised as :func:`isaacgymenvs.eval_metrics.nn_dist` does;
* ``eval/score``: :func:`isaacgymenvs.eval_metrics.score` (the sweep and promotion metric);
* ``eval/unstable_envs``: episodes that ended in a simulator blow-up, and ``eval/time_s``.

Numbers taken from training rollouts (stochastic actions, episodes cut by the resets) are under
``rollout/``. Nothing here needs rl_games: the policy is a callable ``obs [N, O] -> actions``.
"""

from __future__ import annotations

import time

import torch

from isaacgymenvs import eval_metrics


class Evaluator:
    def __init__(self, vec_env, ref_size: int = 4096, seed: int = 0):
        task = vec_env.task
        self.env, self.task = vec_env, task
        self.num_envs = task.num_envs
        self.episode_steps = int(task.cfg.episodeLength) - 1  # the task truncates at progress episodeLength - 1
        g = torch.Generator(device=task.device).manual_seed(int(seed))
        lib = task.motion_lib
        self.motion_ids = lib.sample_motions(self.num_envs, g)
        self.times = lib.sample_time(self.motion_ids, generator=g)
        # the reference set and the two anchors of the score, from the same seed: fixed for every trial
        task.generator.manual_seed(int(seed) + 1)
        self.ref = vec_env.fetch_amp_obs_demo(int(ref_size))
        self.mean, self.std = eval_metrics.reference_stats(self.ref)
        self.nn_ref = float(self._nn(vec_env.fetch_amp_obs_demo(min(int(ref_size), 1024))))
        still = task.default_pose_obs().to(self.ref)
        self.nn_still = float(self._nn(still.repeat(task.cfg.numAMPObsSteps).unsqueeze(0)))

    def _nn(self, amp: torch.Tensor) -> torch.Tensor:
        return eval_metrics.nn_dist(amp, self.ref, self.mean, self.std)

    @torch.no_grad()
    def run(self, make_policy) -> dict:
        """One episode per env with ``make_policy(num_envs)`` (a fresh callable, its recurrent state
        reset); returns the ``eval/*`` numbers of the module docstring."""
        t0 = time.perf_counter()
        env, N, T = self.env, self.num_envs, self.episode_steps
        policy = make_policy(N)
        obs = env.reset_to_reference(self.motion_ids, self.times)
        dev = obs.device
        alive = torch.ones(N, dtype=torch.bool, device=dev)
        fell = torch.zeros(N, dtype=torch.bool, device=dev)
        blown = torch.zeros(N, dtype=torch.bool, device=dev)
        steps = torch.zeros(N, device=dev)
        amp = torch.zeros(T, N, self.ref.shape[1], device=dev)
        mask = torch.zeros(T, N, dtype=torch.bool, device=dev)
        for t in range(T):
            obs, _, done, info = env.step(policy(obs))
            # the transition of every env still in its first episode counts; later ones are ignored
            amp[t] = info["amp_obs"]
            mask[t] = alive & ~info["unstable"]
            fell |= alive & info["terminate"]
            blown |= alive & info["unstable"]
            steps += alive.to(steps.dtype)
            alive &= ~done
            if t % 8 == 7 and not bool(alive.any()):  # every env ended: nothing left to watch
                break
        rows = amp[mask]  # one host synchronization for the whole evaluation
        fall_rate, survival = eval_metrics.episode_stats(fell, steps, T)
        nn = float(self._nn(rows)) if rows.shape[0] else float("nan")
        return {
            "eval/fall_rate": fall_rate,
            "eval/survival": survival,
            "eval/motion_nn_dist": nn,
            "eval/score": float(eval_metrics.score(survival, nn, self.nn_still, self.nn_ref)) if rows.shape[0] else 0.0,
            "eval/unstable_envs": float(blown.sum()),
            "eval/time_s": time.perf_counter() - t0,
        }
