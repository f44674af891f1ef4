"""AMP on rl_games 1.6.5: the learner (:class:`isaacgymenvs.learning.learner.Learner`) as a subclass of its PPO agent.

``AMPAgent`` subclasses rl_games' PPO agent (``A2CAgent``) and wires in, without copying it:

* the discriminator reward, computed for each transition as it is collected (the
  discriminator does not change during a rollout) and mixed with the task reward
  (``task_reward_w``, ``disc_reward_w``) before rl_games adds the time-out bootstrap and GAE;
* the discriminator loss, added to rl_games' PPO loss on every minibatch (one Adam over
  actor, critic and discriminator, as in IsaacGymEnvs), on three inputs: the rollout, the
  replay buffer and the demonstration buffer;
* the sigma scheme (``fixed``: std = exp(sigma_init), never trained; ``learned``: a trained,
  state-independent log-std);
* its own epoch loop: per-epoch metrics handed to observers, the deterministic evaluation
  (:mod:`evaluation`) every ``eval_every`` epochs (or ``eval_every_steps`` env steps) and at the
  end, checkpoints named as in IsaacGymEnvs, the best checkpoint by ``eval/score``; stops at
  ``max_epochs``, ``max_time_s`` or ``max_env_steps``;
* the minibatch step (policy, critic and discriminator forward, both losses, backward, the Adam
  step) captured as a CUDA graph on a GPU (``capture_update``, :mod:`isaacgymenvs.learning.cuda_graph`):
  a fused, capturable Adam whose learning rate is a device tensor, the observation normalizer
  updated in place; one graph per normalizer mode and per value of the loss coefficients;
* what keeps a run honest when something is not finite: transitions into a blown-up simulator
  state (the vec env's ``unstable``) earn no reward and give the discriminator nothing; a
  minibatch whose gradients are not finite changes no weight (``loss/nonfinite_updates``); a
  checkpoint with non-finite weights is never the best one; and the run stops with
  :class:`SimulationUnstableError` when more than ``max_unstable_share`` of the recent resets
  were blow-ups.

The maths lives in :mod:`isaacgymenvs.learning.amp_math`; minibatches in :mod:`.dataset`. Only this
package (``rl_games_adapter``) imports rl_games; the import contract in pyproject.toml checks it.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
from rl_games.algos_torch.a2c_continuous import A2CAgent
from rl_games.common.a2c_common import swap_and_flatten01

from isaacgymenvs.learning import amp_math
from isaacgymenvs.learning.cuda_graph import CapturedCall
from isaacgymenvs.learning.discriminator import Discriminator
from isaacgymenvs.learning.learner import (
    HYPERPARAMETERS,
    CheckpointError,
    SimulationUnstableError,
    load_checkpoint_file,
)
from isaacgymenvs.learning.normalizer import RunningMeanStd
from isaacgymenvs.learning.replay_buffer import ReplayBuffer
from isaacgymenvs.learning.rl_games_adapter.dataset import AMPDataset, DiscRows, shuffled_valid_rows

#: Epochs over which the share of blown-up resets is measured (``max_unstable_share``) ...
UNSTABLE_WINDOW_EPOCHS = 10
#: ... once the window is full or holds this many resets (a few early resets are no evidence).
UNSTABLE_MIN_RESETS = 1000
#: What the minibatch step reads from rl_games' minibatch (an MLP policy's), in this order.
MINIBATCH_KEYS = ("old_values", "old_logp_actions", "advantages", "mu", "sigma", "returns", "actions", "obs")


def all_finite(tensors) -> torch.Tensor:
    """0-d bool tensor: every element of every tensor is finite (no host synchronization)."""
    tensors = [t.detach() for t in tensors if t is not None]
    if not tensors:
        return torch.tensor(True)
    return torch.isfinite(torch.stack(torch._foreach_norm(tensors)).sum())


def _mismatches(expected: dict, got: dict) -> list[str]:
    out = []
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing:
        out.append(f"missing keys {missing}")
    if unexpected:
        out.append(f"unexpected keys {unexpected}")
    for k in sorted(set(expected) & set(got)):
        if tuple(expected[k].shape) != tuple(got[k].shape):
            out.append(f"{k}: checkpoint {tuple(got[k].shape)} vs model {tuple(expected[k].shape)}")
    return out


class AMPAgent(A2CAgent):
    def __init__(self, base_name, params):
        super().__init__(base_name, params)
        cfg = self.config
        self.sigma_scheme = cfg.get("sigma_scheme", "fixed")
        if self.sigma_scheme not in ("fixed", "learned"):
            raise ValueError(f"sigma must be 'fixed' or 'learned', got {self.sigma_scheme!r}")
        self.log_std = self.model.a2c_network.sigma
        self.log_std.requires_grad_(self.sigma_scheme == "learned")

        amp_dim = self.env_info["amp_observation_space"].shape[0]
        self.disc = Discriminator(amp_dim, tuple(cfg.get("disc_units", (1024, 512)))).to(self.ppo_device)
        # One optimizer, as IsaacGymEnvs: the discriminator's own weight decay is a loss term.
        self.optimizer.add_param_group({"params": list(self.disc.parameters()), "weight_decay": 0.0})
        if self.normalize_input:
            # in place (rl_games' RunningMeanStd rebinds its statistics at each update, which a CUDA
            # graph cannot replay); the same numbers and checkpoint keys
            self.model.running_mean_std = RunningMeanStd(self.obs_shape).to(self.ppo_device)
        self.capture_update = (
            bool(cfg.get("capture_update", False))
            and torch.device(self.ppo_device).type == "cuda"
            and not (self.is_rnn or self.multi_gpu or self.mixed_precision)
        )
        self._lr_tensors: list[torch.Tensor] | None = None
        self._captured_update: CapturedCall | None = None
        if self.capture_update:
            self._make_optimizer_capturable()
            self._captured_update = CapturedCall(self._minibatch_step, name="the PPO + discriminator minibatch step")
        self.disc_coef = float(cfg["disc_coef"])
        self.disc_logit_reg = float(cfg["disc_logit_reg"])
        self.disc_grad_penalty = float(cfg["disc_grad_penalty"])
        self.disc_weight_decay = float(cfg["disc_weight_decay"])
        self.disc_reward_scale = float(cfg["disc_reward_scale"])
        self.disc_reward_type = cfg.get("disc_reward_type", "bce")
        self.task_reward_w = float(cfg["task_reward_w"])
        self.disc_reward_w = float(cfg["disc_reward_w"])
        self.amp_batch_size = int(cfg["amp_batch_size"])
        self.amp_minibatch_size = int(cfg["amp_minibatch_size"])
        self.demo_buffer = ReplayBuffer(int(cfg["amp_obs_demo_buffer_size"]), amp_dim, self.ppo_device)
        self.replay_buffer = ReplayBuffer(
            int(cfg["amp_replay_buffer_size"]), amp_dim, self.ppo_device, keep_prob=float(cfg["amp_replay_keep_prob"])
        )
        self.observers: list = []
        # called as fn(path, kind, epoch) after each checkpoint is written (before the epoch's observers); kind: 'epoch' or 'best'
        self.checkpoint_observers: list = []
        self.best_metric = (
            -math.inf
        )  # the best eval/score so far (rollout/motion_nn_dist, negated, without an evaluator)
        #: isaacgymenvs.learning.evaluation.Evaluator, set by the Trainer (None: no deterministic evaluation)
        self.evaluator = None
        self.eval_every = int(cfg.get("eval_every", 100))
        self.eval_every_steps = int(cfg.get("eval_every_steps", 0))
        self.max_env_steps = int(cfg.get("max_env_steps", 0) or 0)
        self.eval_ref_size = int(cfg.get("eval_ref_size", 4096))
        self.eval_agent_size = int(cfg.get("eval_agent_size", 1024))
        self.checkpoint_name = cfg.get("checkpoint_name", cfg["name"])
        self.max_unstable_share = float(cfg.get("max_unstable_share", 0.5))
        self._unstable_window: list[tuple[float, float]] = []  # (blow-ups, resets) per recent epoch
        self._amp_buf = None
        self._valid_buf = None
        self._stop_request: BaseException | None = None
        # rl_games' dataset slices the rollout in storage order; this one reshuffles every mini-epoch
        self.dataset = AMPDataset(
            self.batch_size, self.minibatch_size, self.is_discrete, self.is_rnn, self.ppo_device, self.seq_length
        )

    # ------------------------------------------------------------------ rollout
    def init_tensors(self):
        super().init_tensors()
        amp_dim = self.env_info["amp_observation_space"].shape[0]
        self._amp_buf = torch.zeros(self.horizon_length, self.num_actors, amp_dim, device=self.ppo_device)
        # per transition: not a step into a blown-up simulator state (the discriminator may use it)
        self._valid_buf = torch.ones(self.horizon_length, self.num_actors, dtype=torch.bool, device=self.ppo_device)

    def _reset_rollout_stats(self):
        self._n = 0
        # tensors, summed on the device: no host synchronization per step
        self._stats = {"disc_r": [], "task_r": [], "term": 0, "trunc": 0, "unstable": 0}
        if getattr(self, "_nonfinite", None) is None:
            self._nonfinite = torch.zeros((), dtype=torch.int64, device=self.ppo_device)
        else:  # in place: a captured minibatch step adds to this very tensor
            self._nonfinite.zero_()
        self._episodes = torch.zeros(3, device=self.ppo_device)  # ended, summed length, summed reward

    def play_steps(self):
        return self._play(rnn=False)

    def play_steps_rnn(self):
        return self._play(rnn=True)

    def _play(self, rnn: bool) -> dict:
        """rl_games' rollout (``play_steps`` / ``play_steps_rnn``) without a host synchronization per
        step: rl_games finds the finished episodes with ``dones.nonzero()`` every step (for its
        episode statistics and the RNN state reset); here they are masks, summed on the device and
        read once per epoch (``episode/length``). Same experience buffer, bootstrap and GAE."""
        if self.has_central_value or self.use_action_masks:
            raise NotImplementedError("AMP rollouts support neither a central value network nor action masks")
        self._reset_rollout_stats()
        eb = self.experience_buffer
        step_time = 0.0
        for n in range(self.horizon_length):
            if rnn and n % self.seq_length == 0:
                for s, mb_s in zip(self.rnn_states, self.mb_rnn_states):
                    mb_s[n // self.seq_length, :, :, :] = s
            res = self.get_action_values(self.obs)
            if rnn:
                self.rnn_states = res["rnn_states"]
            eb.update_data("obses", n, self.obs["obs"])
            eb.update_data("dones", n, self.dones.byte() if rnn else self.dones)
            for k in self.update_list:
                eb.update_data(k, n, res[k])
            t0 = time.perf_counter()
            self.obs, rewards, self.dones, infos = self.env_step(res["actions"])
            step_time += time.perf_counter() - t0
            shaped = self.rewards_shaper(rewards)
            if self.value_bootstrap and "time_outs" in infos:
                shaped.add_(self.gamma * res["values"] * self.cast_obs(infos["time_outs"]).unsqueeze(1).float())
            eb.update_data("rewards", n, shaped)
            self.current_rewards.add_(rewards)
            self.current_shaped_rewards.add_(shaped)
            self.current_lengths.add_(1)
            done = self.dones.float()
            self._episodes += torch.stack(
                (done.sum(), (self.current_lengths * done).sum(), (self.current_rewards[:, 0] * done).sum())
            )
            keep = 1.0 - done
            if rnn and self.zero_rnn_on_done:
                for s in self.rnn_states:
                    s.mul_(keep.view(1, -1, 1))
            self.current_rewards.mul_(keep.unsqueeze(1))
            self.current_shaped_rewards.mul_(keep.unsqueeze(1))
            self.current_lengths.mul_(keep)
        last_values = self.get_values(self.obs)
        mb_values = eb.tensor_dict["values"]
        mb_advs = self.discount_values(
            self.dones.float(), last_values, eb.tensor_dict["dones"].float(), mb_values, eb.tensor_dict["rewards"]
        )
        batch = eb.get_transformed_list(swap_and_flatten01, self.tensor_list)
        batch["returns"] = swap_and_flatten01(mb_advs + mb_values)
        batch["played_frames"] = self.batch_size
        batch["step_time"] = step_time
        if rnn:
            batch["rnn_states"] = [
                mb_s.permute(1, 2, 0, 3).reshape(-1, mb_s.size(0) * mb_s.size(2), mb_s.size(3))
                for mb_s in self.mb_rnn_states
            ]
        return batch

    def env_step(self, actions):
        obs, task_r, dones, infos = super().env_step(actions)
        amp_obs = infos["amp_obs"]
        with torch.no_grad():
            logits = self.disc(amp_obs)
        valid = ~infos["unstable"]
        # a transition into a blown-up state earns nothing (its AMP observation is not a motion)
        disc_r = amp_math.disc_reward(logits, self.disc_reward_scale, self.disc_reward_type) * valid.view(-1, 1)
        task_r = task_r * valid.view(task_r.shape[0], *([1] * (task_r.dim() - 1)))
        self._amp_buf[self._n] = amp_obs
        self._valid_buf[self._n] = valid
        self._n += 1
        self._stats["disc_r"].append(disc_r.flatten())
        self._stats["task_r"].append(task_r.flatten().clone())  # the env may hand out the same tensor each step
        self._stats["term"] = self._stats["term"] + infos["terminate"].sum()
        self._stats["trunc"] = self._stats["trunc"] + infos["time_outs"].sum()
        self._stats["unstable"] = self._stats["unstable"] + infos["unstable"].sum()
        return obs, amp_math.combine_rewards(task_r, disc_r, self.task_reward_w, self.disc_reward_w), dones, infos

    # ------------------------------------------------------------------ update
    def prepare_dataset(self, batch_dict):
        super().prepare_dataset(batch_dict)
        amp = swap_and_flatten01(self._amp_buf)
        n = amp.shape[0]
        self._epoch_amp = amp
        self._epoch_valid = swap_and_flatten01(self._valid_buf)
        agent = shuffled_valid_rows(amp, self._epoch_valid)
        replay = self.replay_buffer.sample(n) if len(self.replay_buffer) else agent
        self._disc_rows = DiscRows(
            agent,
            replay if replay.shape[0] else self.demo_buffer.sample(1),
            self.demo_buffer.sample(n),
            self.amp_minibatch_size,
        )

    def train_epoch(self):
        self._disc_stats = []
        if len(self.demo_buffer) == 0:
            fills = math.ceil(self.demo_buffer.capacity / self.amp_batch_size)
            for _ in range(fills):
                self.demo_buffer.store(self.vec_env.fetch_amp_obs_demo(self.amp_batch_size))
        else:
            self.demo_buffer.store(self.vec_env.fetch_amp_obs_demo(self.amp_batch_size))
        out = super().train_epoch()
        self.replay_buffer.store(self._disc_rows.agent)  # the valid rows only
        return out

    def train_actor_critic(self, input_dict):
        """One gradient step on a minibatch (rl_games' train_actor_critic): captured when it can be."""
        self._amp_mb = self._disc_rows.next()
        if self._captured_update is None or self._amp_mb is None:  # None: no valid agent row this epoch
            # rl_games clears the gradients of self.model only; the discriminator is not part of it, and
            # its gradients would otherwise add up over every minibatch of the run.
            for p in self.disc.parameters():
                p.grad = None
            out = super().train_actor_critic(input_dict)
            self.update_lr(self.last_lr)  # rl_games wrote a float lr back into the optimizer
            return out
        self.set_train()  # rl_games sets train mode before every step
        key = (self.model.running_mean_std.training if self.normalize_input else None, self._baked_values())
        a, c, ent, kl, mu, sigma, b, disc_stats = self._captured_update(
            key, [input_dict[k] for k in MINIBATCH_KEYS] + list(self._amp_mb)
        )
        self._disc_stats.append(disc_stats.clone())  # the outputs are overwritten by the next replay
        return a.clone(), c.clone(), ent.clone(), kl.clone(), self.last_lr, 1.0, mu, sigma, b.clone()

    def _minibatch_step(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The step :class:`CapturedCall` captures: rl_games' ``calc_gradients`` (forward, the PPO loss
        plus ours, backward, the optimizer step) on the :data:`MINIBATCH_KEYS` tensors followed by the
        discriminator's ``(agent, replay, demo)`` rows. Returns the actor, critic, entropy, KL and
        bounds losses, the new ``mu`` and ``sigma`` ``[B, A]`` and the discriminator's statistics."""
        n = len(MINIBATCH_KEYS)
        for p in self.disc.parameters():
            p.grad = None
        self._amp_mb = tensors[n:]
        self.calc_gradients(dict(zip(MINIBATCH_KEYS, tensors[:n])))
        a, c, ent, kl, _lr, _lr_mul, mu, sigma, b = self.train_result
        return a, c, ent, kl, mu, sigma, b, self._disc_stats.pop()

    def _baked_values(self) -> tuple:
        """The Python numbers a captured step holds as constants: a new value needs a new graph."""
        return (
            self.e_clip,
            self.critic_coef,
            self.entropy_coef,
            self.bounds_loss_coef,
            self.truncate_grads,
            self.grad_norm,
            self.disc_coef,
            self.disc_logit_reg,
            self.disc_grad_penalty,
            self.disc_weight_decay,
        )

    def _make_optimizer_capturable(self) -> None:
        """rl_games' fused Adam made capturable, its learning rate one device tensor per parameter
        group (a captured step reads the tensor, so a new rate reaches it); called after every load
        of an optimizer state (which brings a checkpoint's settings and new state tensors)."""
        groups = self.optimizer.param_groups
        if self._lr_tensors is None:
            self._lr_tensors = [torch.tensor(float(g["lr"]), device=self.ppo_device) for g in groups]
        for g, lr in zip(groups, self._lr_tensors):
            lr.fill_(float(g["lr"]))
            g.update(lr=lr, fused=True, capturable=True, foreach=None)
        self._lr_value = float(groups[0]["lr"])
        for p, st in self.optimizer.state.items():
            if "step" in st:  # a capturable Adam counts its steps on the device
                st["step"] = st["step"].to(device=p.device, dtype=torch.float32)
        if self._captured_update is not None:
            self._captured_update.reset()  # the graphs read the state tensors that were replaced

    def update_lr(self, lr):
        if self._lr_tensors is None:
            return super().update_lr(lr)
        for g, t in zip(self.optimizer.param_groups, self._lr_tensors):
            if g["lr"] is not t or self._lr_value != lr:
                t.fill_(float(lr))
                g["lr"] = t
        self._lr_value = lr

    def trancate_gradients_and_step(self):
        """rl_games' optimizer step (its spelling), skipped when any gradient is not finite: a NaN
        or inf minibatch changes no weight and no optimizer state, and is counted. With the fused
        Adam the skip happens on the device (``found_inf``): no host synchronization."""
        if self.multi_gpu or self.scaler.is_enabled():
            return super().trancate_gradients_and_step()  # the grad scaler skips non-finite steps itself
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        finite = all_finite([p.grad for p in params])
        self._nonfinite += (~finite).to(torch.int64)
        if self.truncate_grads:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_norm)
        if self.optimizer.defaults.get("fused"):
            self.optimizer.found_inf = (~finite).to(torch.float32)
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.found_inf
        elif bool(finite):
            self.optimizer.step()

    def bound_loss(self, mu):
        # Soft bound 1.0 (rl_games' own uses 1.1); per sample, rl_games takes the (masked) mean.
        return amp_math.bound_loss_per_sample(mu, 1.0)

    def discount_values(self, fdones, last_extrinsic_values, mb_fdones, mb_extrinsic_values, mb_rewards):
        """GAE through :func:`amp_math.gae`. rl_games stores ``dones[t]`` = "obs t starts a new
        episode" and has already added the time-out bootstrap to the rewards, so every episode end
        stops both the bootstrap and the recursion here."""
        next_values = torch.cat((mb_extrinsic_values[1:], last_extrinsic_values.unsqueeze(0)))
        next_dones = torch.cat((mb_fdones[1:], fdones.unsqueeze(0))).float()
        adv, _ = amp_math.gae(
            mb_rewards.squeeze(-1),
            mb_extrinsic_values.squeeze(-1),
            next_values.squeeze(-1),
            next_dones,
            next_dones,
            self.gamma,
            self.tau,
        )
        return adv.unsqueeze(-1)

    def _disc_loss(self, agent, replay, demo):
        d = self.disc
        x = d.normalize(torch.cat((agent, replay, demo)), update_stats=True)
        xa, xr, xd = x.split((agent.shape[0], replay.shape[0], demo.shape[0]))
        xd = xd.detach().requires_grad_(True)
        la, lr_, ld = d.logits_of_normalized(xa), d.logits_of_normalized(xr), d.logits_of_normalized(xd)
        bce = amp_math.disc_bce_loss(torch.cat((la, lr_)), ld)
        reg = amp_math.disc_logit_reg(d.logit.weight)
        gp = amp_math.disc_grad_penalty(ld, xd)
        wd = amp_math.disc_weight_decay(d.all_weights())
        loss = bce + self.disc_logit_reg * reg + self.disc_grad_penalty * gp + self.disc_weight_decay * wd
        agent_acc, demo_acc = amp_math.disc_accuracy(torch.cat((la, lr_)), ld)
        self._disc_stats.append(
            torch.stack(
                (
                    loss.detach(),
                    gp.detach(),
                    la.detach().mean(),
                    lr_.detach().mean(),
                    ld.detach().mean(),
                    agent_acc,
                    demo_acc,
                )
            )
        )
        return loss

    def calc_losses(self, *args):
        loss, a_loss, c_loss, entropy, b_loss, sum_mask = super().calc_losses(*args)
        if self._amp_mb is not None:  # None: every transition of the rollout blew up
            loss = loss + self.disc_coef * self._disc_loss(*self._amp_mb)
        return loss, a_loss, c_loss, entropy, b_loss, sum_mask

    # ------------------------------------------------------------------ metrics
    def _rollout_metrics(self) -> dict:
        with torch.no_grad():
            if not hasattr(self, "_ref_amp"):
                self._ref_amp = self.vec_env.fetch_amp_obs_demo(self.eval_ref_size)
                self._ref_mean = self._ref_amp.mean(0)
                self._ref_std = self._ref_amp.std(0)
            amp = self._disc_rows.agent  # the valid rows, shuffled
            nn_dist = (
                amp_math.motion_nn_dist(amp[: self.eval_agent_size], self._ref_amp, self._ref_mean, self._ref_std)
                if amp.shape[0]
                else torch.tensor(float("nan"))
            )
        term, trunc = float(self._stats["term"]), float(self._stats["trunc"])
        ended = term + trunc
        return {
            "rollout/motion_nn_dist": float(nn_dist),
            "rollout/fall_rate": term / ended if ended else 0.0,
            "episode/ended": float(ended),
            "sim/unstable_envs": float(self._stats["unstable"]),
        }

    def _episode_length(self) -> float:
        """Mean length of the episodes that ended this epoch (the last known mean when none did)."""
        ended, length, _ = self._episodes.tolist()
        if ended > 0:
            self._last_episode_length = length / ended
        return getattr(self, "_last_episode_length", 0.0)

    def epoch_metrics(self, a_losses, c_losses, b_losses, play_time, update_time, total_time) -> dict:
        if self._disc_stats:
            st = torch.stack(self._disc_stats)
            st = st[torch.isfinite(st).all(-1)]
            ds = st.mean(0).tolist() if st.shape[0] else [float("nan")] * 7
        else:
            ds = [float("nan")] * 7
        disc_r = torch.cat(self._stats["disc_r"])
        task_r = torch.cat(self._stats["task_r"])

        def mean(xs):  # over the minibatches whose update was taken (finite ones)
            if not xs:
                return float("nan")
            v = torch.stack([x.detach().float().mean() for x in xs])
            v = v[torch.isfinite(v)]
            return float(v.mean()) if v.numel() else float("nan")

        m = {
            "disc/loss": ds[0],
            "disc/grad_penalty": ds[1],
            "disc/agent_logit": ds[2],
            "disc/agent_replay_logit": ds[3],
            "disc/demo_logit": ds[4],
            "disc/agent_acc": ds[5],
            "disc/demo_acc": ds[6],
            "reward/disc": float(disc_r.mean()),
            "reward/disc_std": float(disc_r.std()) if disc_r.numel() > 1 else 0.0,
            "reward/task": float(task_r.mean()),
            "episode/length": self._episode_length(),
            "loss/actor": mean(a_losses),
            "loss/critic": mean(c_losses),
            "loss/bounds": mean(b_losses),
            "policy/sigma": float(self.log_std.detach().exp().mean()),
            "perf/env_steps_per_s": self.curr_frames / total_time if total_time > 0 else 0.0,
            "perf/play_time_s": play_time,
            "perf/update_time_s": update_time,
            "loss/nonfinite_updates": float(self._nonfinite),
        }
        m.update(self._rollout_metrics())
        return m

    def deterministic_policy(self, n: int):
        """A callable ``obs [n, O] -> mean actions [n, A]`` (clipped to [-1, 1]) that carries its own
        recurrent state for an LSTM policy; it never updates the normalizers."""
        model = self.model
        states = None
        if self.is_rnn:
            states = [
                torch.zeros(s.shape[0], n, *s.shape[2:], dtype=s.dtype, device=self.ppo_device)
                for s in model.get_default_rnn_state()
            ]

        @torch.no_grad()
        def act(obs):
            nonlocal states
            was_training = model.training
            model.eval()  # no running-mean update from evaluation observations
            try:  # the network's mean without rl_games' sampling (which also refuses a non-finite std)
                mu, _, _, new_states = model.a2c_network(
                    {"obs": model.norm_obs(self._preproc_obs(obs)), "rnn_states": states, "is_train": False}
                )
            finally:
                model.train(was_training)
            if states is not None:
                states = new_states
            return mu.clamp(-1.0, 1.0)

        return act

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Mean actions ``[N, A]`` for raw observations ``[N, O]`` (an LSTM policy from a zero state)."""
        return self.deterministic_policy(obs.shape[0])(obs)

    def write_summary(self, epoch: int, metrics: dict) -> None:
        """The epoch's metrics into the run folder's TensorBoard summary (``runs/<run>/summaries``)."""
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, epoch)
        self.writer.flush()

    def set_hyperparameter(self, name: str, value: float) -> None:
        """A new value of one of :data:`HYPERPARAMETERS` (PBT), applied from the next minibatch on."""
        if name not in HYPERPARAMETERS:
            raise ValueError(f"{name!r} cannot change in a running training (these can: {', '.join(HYPERPARAMETERS)})")
        self.set_param(name, float(value))  # rl_games: the attribute, and the optimizer's lr
        if name == "learning_rate":
            self.last_lr = float(value)  # rl_games re-applies last_lr every epoch (it was restored from the checkpoint)
            self.update_lr(self.last_lr)  # a captured step reads the rate from its device tensor
        elif self._captured_update is not None:
            self._captured_update.reset()  # the graphs hold the old value; new ones are captured

    def _evaluation_due(self, epoch: int, final: bool) -> bool:
        if self.evaluator is None:
            return False
        if final:
            return True
        if self.eval_every_steps > 0:  # at every multiple of eval_every_steps env steps crossed this epoch
            return self.frame // self.eval_every_steps > (self.frame - self.curr_frames) // self.eval_every_steps
        return self.eval_every > 0 and epoch % self.eval_every == 0

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict:
        state = self.get_full_state_weights()
        state.pop("env_state", None)
        # the optimizer's settings as rl_games' own (a float learning rate, not capturable): the
        # checkpoint loads into a CPU run too; a captured run makes them capturable again on restore
        opt = state["optimizer"]
        opt["param_groups"] = [dict(g, lr=float(g["lr"]), capturable=False) for g in opt["param_groups"]]
        state["amp"] = self.disc.state_dict()
        state["sigma_scheme"] = self.sigma_scheme
        state["best_score"] = self.best_metric
        state["meta"] = dict(self.config.get("checkpoint_meta", {}))
        state["finite"] = self.weights_finite()
        return state

    def weights_finite(self) -> bool:
        """Every weight of the policy, critic and discriminator (and the normalizers) is finite."""
        return bool(all_finite(list(self.model.state_dict().values()) + list(self.disc.state_dict().values())))

    def save_checkpoint(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.checkpoint_state(), tmp)
        os.replace(tmp, path)
        return path

    def restore_checkpoint(self, path, sigma_override: float | None = None) -> dict:
        ckpt = load_checkpoint_file(path)
        problems = _mismatches(self.model.state_dict(), ckpt["model"]) + [
            f"disc {p}" for p in _mismatches(self.disc.state_dict(), ckpt["amp"])
        ]
        meta = ckpt.get("meta", {})
        mine = self.config.get("checkpoint_meta", {})
        if meta.get("task") and mine.get("task") and meta["task"] != mine["task"]:
            problems.insert(0, f"task {meta['task']!r} vs {mine['task']!r}")
        if problems:
            raise CheckpointError(f"checkpoint {str(path)!r} does not fit this task/network: " + "; ".join(problems))
        self.set_full_state_weights(ckpt, set_epoch=True)
        if self.capture_update:
            self._make_optimizer_capturable()
        self.disc.load_state_dict(ckpt["amp"])
        self.best_metric = float(ckpt.get("best_score", -math.inf))  # older checkpoints: ranked otherwise, start over
        if sigma_override is not None:
            with torch.no_grad():
                self.log_std.fill_(math.log(sigma_override))
        return ckpt

    # ------------------------------------------------------------------ loop
    @property
    def stop_requested(self) -> bool:
        return self._stop_request is not None

    def request_stop(self, exc: BaseException) -> None:
        """Stop at the end of the epoch in progress (Ctrl+C, SIGTERM): its checkpoint is written,
        then ``exc`` is raised, so nothing trained since the last saved epoch is lost."""
        self._stop_request = exc

    def _check_unstable_share(self, metrics: dict) -> None:
        """Stop when more than ``max_unstable_share`` of the resets of the last epochs were blow-ups."""
        self._unstable_window.append((metrics["sim/unstable_envs"], metrics["episode/ended"]))
        self._unstable_window = self._unstable_window[-UNSTABLE_WINDOW_EPOCHS:]
        bad = sum(b for b, _ in self._unstable_window)
        resets = sum(r for _, r in self._unstable_window)
        enough = len(self._unstable_window) == UNSTABLE_WINDOW_EPOCHS or resets >= UNSTABLE_MIN_RESETS
        if enough and resets > 0 and bad / resets > self.max_unstable_share:
            clips = ", ".join(self.vec_env.clip_names()) if hasattr(self.vec_env, "clip_names") else "?"
            where = self.vec_env.describe_unstable_start() if hasattr(self.vec_env, "describe_unstable_start") else ""
            raise SimulationUnstableError(
                f"the simulation blew up in {bad:.0f} of {resets:.0f} resets ({bad / resets:.0%}) over the last "
                f"{len(self._unstable_window)} epochs (limit train.params.config.max_unstable_share="
                f"{self.max_unstable_share:g}) training on {clips}; {where}. Check the clip with "
                "`python -m isaacgymenvs.motion check CLIP`, or use a smaller task.sim.mujoco_timestep"
            )

    def train(self):
        self.init_tensors()
        self.obs = self.env_reset()
        nn_dir = Path(self.nn_dir)
        last_saved = None
        max_time = float(self.config.get("max_time_s", 0) or 0)
        start, eval_time = time.perf_counter(), 0.0
        while self.epoch_num < self.max_epochs:
            epoch = self.update_epoch()
            _, play_time, update_time, total_time, a_l, c_l, b_l, *_ = self.train_epoch()
            self.dataset.update_values_dict(None)
            self.frame += self.curr_frames
            metrics = self.epoch_metrics(a_l, c_l, b_l, play_time, update_time, total_time)
            out_of_time = max_time > 0 and time.perf_counter() - start >= max_time
            out_of_steps = self.max_env_steps > 0 and self.frame >= self.max_env_steps
            final = epoch >= self.max_epochs or out_of_time or out_of_steps
            self.is_final_epoch = final  # observers read it (a sweep trial's last report)
            if self._evaluation_due(epoch, final):
                t_eval = time.perf_counter()
                metrics.update(self.evaluator.run(self.deterministic_policy))
                eval_time += time.perf_counter() - t_eval
            # training wall time so far, and the evaluations' share of it: time to quality from any report
            metrics["perf/train_time_s"] = time.perf_counter() - start
            metrics["perf/eval_time_s"] = eval_time
            # checkpoints before the observers: an observer may end the run (a sweep scheduler stopping
            # the trial at this report), and the epoch it reports must have its checkpoints on disk
            if (self.save_freq > 0 and epoch % self.save_freq == 0) or final:
                last_saved = self.save_checkpoint(nn_dir / f"{self.checkpoint_name}_{epoch}.pth")
                for cb in self.checkpoint_observers:
                    cb(last_saved, "epoch", epoch)
            # the best checkpoint: highest eval/score at an evaluation (no evaluator: lowest rollout nn_dist)
            score = metrics.get(
                "eval/score", -metrics["rollout/motion_nn_dist"] if self.evaluator is None else math.nan
            )
            if math.isfinite(score) and score > self.best_metric and self.weights_finite():
                self.best_metric = score
                best = self.save_checkpoint(nn_dir / f"{self.checkpoint_name}_best.pth")
                for cb in self.checkpoint_observers:
                    cb(best, "best", epoch)
            for obs in self.observers:
                obs(epoch, self.frame, metrics)
            if self._stop_request is not None:  # stopped by a signal: keep this epoch, then stop as asked
                if not ((self.save_freq > 0 and epoch % self.save_freq == 0) or final):
                    last_saved = self.save_checkpoint(nn_dir / f"{self.checkpoint_name}_{epoch}.pth")
                    for cb in self.checkpoint_observers:
                        cb(last_saved, "epoch", epoch)
                print(f"stopping after epoch {epoch}: checkpoint {last_saved}", flush=True)
                raise self._stop_request
            self._check_unstable_share(metrics)
            if out_of_time:
                print(f"max_time_s={max_time:g} reached after epoch {epoch}")
                break
            if out_of_steps:
                print(f"max_env_steps={self.max_env_steps} reached after epoch {epoch}")
                break
        return last_saved
