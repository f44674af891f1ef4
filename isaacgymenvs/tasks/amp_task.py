"""The AMP task: observations, AMP observation history, reference-state resets, terminations.

One class serves every character; what differs (model, key bodies, contact bodies, PD
mapping) comes from the character spec and the task config. It follows IsaacGymEnvs'
HumanoidAMP step by step:

``step(actions)`` applies PD targets, advances the simulator one control step, then computes
the observation, the (constant) task reward, termination and time-out, and the AMP
observation history (newest step first). Environments that are done are **not** reset by
``step``: the learner reads the terminal observation (to bootstrap the value on time-outs)
and then calls ``reset_done()``, as IsaacGymEnvs' AMP agent does.

Each of those pieces is a function of ``terms`` (the deployed step, written once for torch and
numpy); sim2sim runs the same functions, with the observation layout this task writes into its
deployment info (``deploy_info()["obs_layout"]``, export's ``policy.json``).

**A simulator blow-up is caught, not trained on.** After every step the backend marks envs
whose state is not finite, faster than ``maxStateSpeed`` or flagged by the physics
(``SimBackend.unstable``). Such an env is terminated (no value bootstrap), its observation is
replaced by its previous one (finite) before anything reads it, its task reward is 0, and
``unstable`` tells the learner to give its transition to neither the discriminator nor the
replay buffer; ``reset_done`` then resets it. All of it by masks: no host synchronization.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from isaacgymenvs.motion.motion_lib import MotionLib
from isaacgymenvs.motion.skeleton import Skeleton
from isaacgymenvs.sim.base import SimBackend
from isaacgymenvs.tasks import terms

STATE_INIT_MODES = ("Default", "Start", "Random", "Hybrid")
ACTION_MAPPINGS = terms.ACTION_MAPPINGS


@dataclass
class AMPTaskConfig:
    """The task keys of ``cfg/task/<Task>.yaml`` (``env:`` section), IsaacGymEnvs names."""

    numEnvs: int = 4096
    #: Episode length in control steps (300 = 10 s at 30 Hz).
    episodeLength: int = 300
    #: Reset pose: Default (standing pose), Start (clip start), Random (random clip time), Hybrid.
    stateInit: str = "Random"
    #: With Hybrid, the probability of a reference (Random) reset instead of the default pose.
    hybridInitProb: float = 0.5
    #: Steps of history in one AMP observation (>= 2).
    numAMPObsSteps: int = 2
    #: Early termination: a non-contact body below this height (m) while touching something.
    terminationHeight: float = 0.5
    enableEarlyTermination: bool = True
    #: Root rotation in the heading frame instead of the world frame.
    localRootObs: bool = False
    #: Bodies that may touch the ground.
    contactBodies: tuple[str, ...] = ("right_foot", "left_foot")
    #: Bodies whose relative positions enter the observation.
    keyBodies: tuple[str, ...] = ("right_hand", "left_hand", "right_foot", "left_foot")
    #: Height of the root in the default pose (m); null: the character's default keyframe.
    defaultRootHeight: float | None = 0.89
    #: PD targets from actions: ``limits`` (IsaacGymEnvs: 3-DoF joints span [-pi, pi], hinges 1.4x
    #: their range around the middle) or ``default_pose`` (target = default pose + actionScale *
    #: half the joint range * action, clamped to the joint range; the usual mapping on a robot).
    actionMapping: str = "limits"
    #: With ``default_pose``: the action's reach as a fraction of each joint's half range.
    actionScale: float = 1.0
    #: Observation size the config expects (checked against the model's); null: not checked.
    numObservations: int | None = None
    #: Reset finished episodes by mask, without host synchronization (draws states for every
    #: env each step), so that the whole environment step can be captured as one CUDA graph
    #: (SimBackend.graphed). False: reset by env ids (one synchronization per step).
    syncFreeResets: bool = True
    #: A joint or root velocity component beyond this (rad/s, m/s) marks the env's state as blown up.
    maxStateSpeed: float = 1000.0


class AMPTask:
    def __init__(
        self,
        cfg: AMPTaskConfig,
        sim: SimBackend,
        motion_lib: MotionLib,
        skeleton: Skeleton,
        seed: int = 0,
        default_pose: tuple[float | None, "torch.Tensor | None"] = (None, None),
    ):
        if cfg.stateInit not in STATE_INIT_MODES:
            raise ValueError(f"task.env.stateInit must be one of {STATE_INIT_MODES}, got {cfg.stateInit!r}")
        if cfg.numAMPObsSteps < 2:
            raise ValueError(f"task.env.numAMPObsSteps must be at least 2, got {cfg.numAMPObsSteps}")
        if not 0.0 <= cfg.hybridInitProb <= 1.0:
            raise ValueError(f"task.env.hybridInitProb must lie in [0, 1], got {cfg.hybridInitProb}")
        if cfg.episodeLength < 2:
            raise ValueError(f"task.env.episodeLength must be at least 2, got {cfg.episodeLength}")
        if cfg.actionMapping not in ACTION_MAPPINGS:
            raise ValueError(f"task.env.actionMapping must be one of {ACTION_MAPPINGS}, got {cfg.actionMapping!r}")
        if not (isinstance(cfg.maxStateSpeed, (int, float)) and cfg.maxStateSpeed > 0):
            raise ValueError(f"task.env.maxStateSpeed must be a positive number (rad/s), got {cfg.maxStateSpeed!r}")
        if not (isinstance(cfg.actionScale, (int, float)) and 0.0 < cfg.actionScale <= 2.0):
            raise ValueError(f"task.env.actionScale must lie in (0, 2], got {cfg.actionScale!r}")
        if skeleton.dof_names != sim.dof_names:
            raise ValueError("the motion skeleton and the simulator disagree on the joint order")
        self.cfg = cfg
        self.sim = sim
        self.motion_lib = motion_lib
        self.device = sim.device
        self.num_envs = sim.num_envs
        self.dt = sim.control_dt
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.groups = terms.joint_groups(skeleton)
        self.key_body_ids = torch.tensor(skeleton.body_index(cfg.keyBodies), device=self.device)
        allowed = torch.zeros(sim.num_bodies, dtype=torch.bool, device=self.device)
        allowed[skeleton.body_index(cfg.contactBodies)] = True
        self.allowed_contact = allowed
        root_h, dof0 = default_pose
        dof0 = (
            torch.zeros(sim.num_dof, dtype=torch.float64)
            if dof0 is None
            else torch.as_tensor(dof0, dtype=torch.float64)
        )
        self.default_root_height = float(cfg.defaultRootHeight if cfg.defaultRootHeight is not None else root_h or 0.0)
        if cfg.defaultRootHeight is None and root_h is None:
            raise ValueError(
                "task.env.defaultRootHeight is null but the character has no default keyframe; give a height"
            )
        offset, scale, low, high = terms.action_mapping(
            cfg.actionMapping, self.groups, skeleton.dof_limits, dof0, cfg.actionScale
        )
        self.action_offset = offset.to(self.device, torch.float32)
        self.action_scale = scale.to(self.device, torch.float32)
        self.target_low = low.to(self.device, torch.float32)
        self.target_high = high.to(self.device, torch.float32)
        self.num_actions = sim.num_dof
        #: ``[(block name, size)]``: the observation, in order (``terms.OBS_BLOCKS``); also what
        #: export writes into policy.json and sim2sim builds its observation from.
        self.obs_layout = terms.obs_layout(self.groups, sim.num_dof, len(cfg.keyBodies), cfg.localRootObs)
        self.rules = terms.EpisodeRules(
            float(cfg.terminationHeight), int(cfg.episodeLength), bool(cfg.enableEarlyTermination)
        )
        self.num_obs = sum(n for _, n in self.obs_layout)
        if cfg.numObservations is not None and int(cfg.numObservations) != self.num_obs:
            raise ValueError(
                f"task.env.numObservations is {cfg.numObservations} but the model gives {self.num_obs} "
                f"({', '.join(f'{n} {k}' for k, n in self.obs_layout)}); set it to {self.num_obs} or null"
            )
        self.num_amp_obs_per_step = self.num_obs
        self.num_amp_obs = cfg.numAMPObsSteps * self.num_obs
        N = self.num_envs
        self.progress = torch.zeros(N, dtype=torch.long, device=self.device)
        self.terminated = torch.zeros(N, dtype=torch.bool, device=self.device)
        self.truncated = torch.zeros(N, dtype=torch.bool, device=self.device)
        self.obs = torch.zeros(N, self.num_obs, device=self.device)
        self.amp_hist = torch.zeros(N, cfg.numAMPObsSteps, self.num_obs, device=self.device)
        self.default_dof_pos = dof0.to(self.device, torch.float32)
        #: Per env: whether the last reset was a reference-state reset (for statistics).
        self.ref_reset = torch.zeros(N, dtype=torch.bool, device=self.device)
        #: Per env: the clip and clip time (s) of its last reference-state start (-1: the default pose).
        self.ref_motion = torch.full((N,), -1, dtype=torch.long, device=self.device)
        self.ref_time = torch.zeros(N, device=self.device)
        #: Per env: the state after the last step blew up (see the module docstring).
        self.unstable = torch.zeros(N, dtype=torch.bool, device=self.device)
        #: (clip index, clip time) of the reference start of the last env that blew up; clip -2: none yet.
        self.last_unstable_start = torch.tensor([-2.0, 0.0], device=self.device)
        #: Reset finished episodes by mask (no host synchronization) instead of by their ids.
        self.sync_free_resets = cfg.syncFreeResets
        #: What ``make_task`` knows beyond the config (character, clip, PD gains): part of :meth:`deploy_info`.
        self.deploy_extra: dict = {}

    def deploy_info(self) -> dict:
        """What a deployment (export, sim2sim) needs to run this task's policy without the config."""
        f = lambda t: [float(x) for x in t.cpu()]  # noqa: E731
        return {
            **self.deploy_extra,
            "joint_order": list(self.sim.dof_names),
            "control_period_s": float(self.dt),
            "key_bodies": list(self.cfg.keyBodies),
            "contact_bodies": list(self.cfg.contactBodies),
            "termination_height": float(self.cfg.terminationHeight),
            "episode_length": int(self.cfg.episodeLength),
            "amp_obs_steps": int(self.cfg.numAMPObsSteps),
            "local_root_obs": bool(self.cfg.localRootObs),
            "obs_layout": terms.layout_to_json(self.obs_layout),
            "early_termination": bool(self.cfg.enableEarlyTermination),
            "action_mapping": self.cfg.actionMapping,
            "action_offset": f(self.action_offset),
            "action_scale": f(self.action_scale),
            "target_low": [x if x != -float("inf") else None for x in f(self.target_low)],
            "target_high": [x if x != float("inf") else None for x in f(self.target_high)],
            "default_root_height": self.default_root_height,
            "default_dof_pos": f(self.default_dof_pos),
        }

    # ----------------------------------------------------------------- observations
    def _sim_state(self, env_ids: torch.Tensor | None = None) -> terms.CharacterState:
        """The simulator's state (float32) of every env, or of ``env_ids`` only."""
        s = self.sim
        if env_ids is None:
            f = lambda x: x.to(torch.float32)  # noqa: E731
        else:
            f = lambda x: x[env_ids].to(torch.float32)  # noqa: E731
        return terms.CharacterState(
            f(s.root_pos_w),
            f(s.root_quat_w),
            f(s.root_lin_vel_w),
            f(s.root_ang_vel_w),
            f(s.dof_pos),
            f(s.dof_vel),
            f(s.body_pos_w[:, self.key_body_ids]),
        )

    def _sim_obs(self, env_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Observation of every env, or of ``env_ids`` only."""
        return terms.observation(self._sim_state(env_ids), self.groups, self.obs_layout)

    def _motion_obs(self, motion_ids: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        st = self.motion_lib.get_motion_state(motion_ids, times)
        state = terms.CharacterState(
            st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel, st.key_body_pos
        )
        return terms.observation(state, self.groups, self.obs_layout)

    def amp_obs_demo(self, n: int) -> torch.Tensor:
        """``[n, numAMPObsSteps * obs]`` demonstration AMP observations from the MotionLib."""
        ids = self.motion_lib.sample_motions(n, self.generator)
        k = self.cfg.numAMPObsSteps
        trunc = self.dt * (k - 1)
        t0 = self.motion_lib.sample_time(ids, truncate_time=trunc, generator=self.generator) + trunc
        times = terms.history_times(t0, k, self.dt).reshape(-1)
        obs = self._motion_obs(ids.repeat_interleave(k), times)
        return obs.reshape(n, k * self.num_obs)

    @property
    def amp_obs(self) -> torch.Tensor:
        """``[N, numAMPObsSteps * obs]`` the agent's AMP observation, newest step first."""
        return terms.amp_obs(self.amp_hist)

    # ----------------------------------------------------------------- resets
    def _write(self, env_ids, root_pos, root_quat, root_vel, root_ang_vel, dof_pos, dof_vel):
        self.sim.write_state(env_ids, root_pos, root_quat, root_vel, root_ang_vel, dof_pos, dof_vel)

    def _reset_default(self, env_ids: torch.Tensor) -> None:
        M = len(env_ids)
        if M == 0:
            return
        z = lambda *s: torch.zeros(M, *s, device=self.device)  # noqa: E731
        pos = z(3)
        pos[:, 2] = self.default_root_height
        quat = z(4)
        quat[:, 0] = 1.0
        self._write(env_ids, pos, quat, z(3), z(3), self.default_dof_pos.expand(M, -1), z(self.num_actions))
        self.ref_reset[env_ids] = False
        self.ref_motion[env_ids] = -1

    def _reset_ref(self, env_ids: torch.Tensor, start: bool) -> None:
        M = len(env_ids)
        if M == 0:
            return
        ids = self.motion_lib.sample_motions(M, self.generator)
        if start:
            times = torch.zeros(M, device=self.device)
        else:
            times = self.motion_lib.sample_time(ids, generator=self.generator)
        self._write_reference(env_ids, ids, times)

    def _write_reference(self, env_ids: torch.Tensor, motion_ids: torch.Tensor, times: torch.Tensor) -> None:
        """The reference state of ``motion_ids`` at ``times`` (s) into ``env_ids``, AMP history from the clip."""
        M = len(env_ids)
        st = self.motion_lib.get_motion_state(motion_ids, times)
        self._write(env_ids, st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel)
        self.ref_reset[env_ids] = True
        self.ref_motion[env_ids] = motion_ids
        self.ref_time[env_ids] = times.to(self.ref_time.dtype)
        k = self.cfg.numAMPObsSteps
        if k > 1:
            hist_t = terms.history_times(times, k, self.dt)[:, 1:].reshape(-1)
            hist = self._motion_obs(motion_ids.repeat_interleave(k - 1), hist_t)
            self.amp_hist[env_ids, 1:] = hist.reshape(M, k - 1, self.num_obs)

    def reset_to_reference(self, motion_ids: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Start every env from the given reference states (``[N]`` clips and clip times): the
        evaluation's fixed starts. Returns the observation ``[N, obs]``."""
        env_ids = torch.arange(self.num_envs, device=self.device)
        self._write_reference(env_ids, motion_ids.to(self.device), times.to(self.device))
        self.progress.zero_()
        self.terminated.zero_()
        self.truncated.zero_()
        self.unstable.zero_()
        obs = self._sim_obs()
        self.obs[:] = obs
        self.amp_hist[:, 0] = obs
        return self.obs.clone()

    def default_pose_obs(self) -> torch.Tensor:
        """``[obs]`` the observation of the character standing still in its default pose (env 0 is
        written and read; the caller resets it afterwards)."""
        self._reset_default(torch.zeros(1, dtype=torch.long, device=self.device))
        return self._sim_obs(torch.zeros(1, dtype=torch.long, device=self.device))[0]

    def reset_idx(self, env_ids: torch.Tensor) -> None:
        """Reset ``env_ids`` by the configured state-init mode and re-seed their AMP history."""
        env_ids = env_ids.to(self.device).long()
        if env_ids.numel() == 0:
            return
        ref = self._choose_ref(len(env_ids))
        self._reset_default(env_ids[~ref])
        self._reset_ref(env_ids[ref], start=(self.cfg.stateInit == "Start"))
        self.progress[env_ids] = 0
        self.terminated[env_ids] = False
        self.truncated[env_ids] = False
        self.unstable[env_ids] = False
        obs = self._sim_obs(env_ids)
        self.obs[env_ids] = obs
        self.amp_hist[env_ids, 0] = obs
        if (~ref).any():
            self.amp_hist[env_ids[~ref]] = terms.history_of(obs[~ref], self.cfg.numAMPObsSteps)

    def reset(self) -> torch.Tensor:
        self.reset_idx(torch.arange(self.num_envs, device=self.device))
        return self.obs.clone()

    def _choose_ref(self, n: int) -> torch.Tensor:
        """Per env: reference-state reset (True) or default pose (False), by ``stateInit``."""
        mode = self.cfg.stateInit
        if mode == "Default":
            return torch.zeros(n, dtype=torch.bool, device=self.device)
        if mode in ("Start", "Random"):
            return torch.ones(n, dtype=torch.bool, device=self.device)
        return torch.rand(n, device=self.device, generator=self.generator) < self.cfg.hybridInitProb

    def reset_mask(self, mask: torch.Tensor) -> None:
        """Reset the envs where ``mask`` [N] is true without looking at it on the host: new states
        are drawn for every env (fixed shapes) and written where the mask is set; the others
        keep their state and observation."""
        N, k = self.num_envs, self.cfg.numAMPObsSteps
        ref = self._choose_ref(N)
        ids = self.motion_lib.sample_motions(N, self.generator)
        if self.cfg.stateInit == "Start":
            times = torch.zeros(N, device=self.device)
        else:
            times = self.motion_lib.sample_time(ids, generator=self.generator)
        st = self.motion_lib.get_motion_state(ids, times)
        s = self.sim
        default = [torch.zeros(N, d, device=self.device) for d in (3, 4, 3, 3)]
        default[0][:, 2] = self.default_root_height
        default[1][:, 0] = 1.0
        default += [self.default_dof_pos.expand(N, -1), torch.zeros(N, self.num_actions, device=self.device)]
        drawn = (st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel)
        r, m = ref.unsqueeze(-1), mask.unsqueeze(-1)
        rp, rq, rv, rw, dp, dv = (torch.where(r, a, b) for a, b in zip(drawn, default))
        s.write_state(None, rp, rq, rv, rw, dp, dv, mask=mask)
        obs = self._sim_obs()
        hist = terms.history_of(obs, k - 1)
        if k > 1:
            hist_t = terms.history_times(times, k, self.dt)[:, 1:].reshape(-1)
            ref_hist = self._motion_obs(ids.repeat_interleave(k - 1), hist_t)
            hist = torch.where(r.unsqueeze(-1), ref_hist.reshape(N, k - 1, self.num_obs), hist)
        self.amp_hist[:, 1:] = torch.where(m.unsqueeze(-1), hist, self.amp_hist[:, 1:])
        self.amp_hist[:, 0] = torch.where(m, obs, self.amp_hist[:, 0])
        self.obs[:] = torch.where(m, obs, self.obs)
        # state is updated in place: a captured step (SimBackend.graphed) replays into these tensors
        self.progress.masked_fill_(mask, 0)
        self.ref_reset.copy_(torch.where(mask, ref, self.ref_reset))
        self.ref_motion.copy_(torch.where(mask, torch.where(ref, ids, torch.full_like(ids, -1)), self.ref_motion))
        self.ref_time.copy_(torch.where(mask, times.to(self.ref_time.dtype), self.ref_time))
        self.terminated &= ~mask
        self.truncated &= ~mask
        self.unstable &= ~mask

    def reset_done(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Reset every environment whose episode ended; returns (obs, which envs were reset:
        ids, or a bool mask with ``sync_free_resets``)."""
        done = self.terminated | self.truncated
        if self.sync_free_resets:
            self.reset_mask(done)
            return self.obs.clone(), done
        ids = done.nonzero(as_tuple=False).flatten()
        self.reset_idx(ids)
        return self.obs.clone(), ids

    # ----------------------------------------------------------------- stepping
    def step(self, actions: torch.Tensor):
        """Returns ``obs [N, O]``, ``reward [N]``, ``terminated [N]``, ``truncated [N]``."""
        actions = actions.to(self.device, torch.float32)
        targets = terms.pd_targets(actions, self.action_offset, self.action_scale, self.target_low, self.target_high)
        self.sim.set_pd_targets(targets)
        self.sim.step()
        self.progress += 1
        # a blown-up env keeps its previous (finite) observation: nothing downstream sees NaN
        out = terms.after_step(
            self._sim_obs(),
            self.amp_hist,
            self.sim.unstable(self.cfg.maxStateSpeed),
            self.sim.contact_forces_w,
            self.sim.body_pos_w,
            self.allowed_contact,
            self.progress,
            self.rules,
        )
        # state is updated in place: a captured step (SimBackend.graphed) replays into these tensors
        self.unstable.copy_(out.unstable)
        self._note_unstable_start(out.unstable)
        self.obs.copy_(out.obs)
        self.amp_hist.copy_(out.amp_hist)
        self.terminated.copy_(out.terminated)
        self.truncated.copy_(out.truncated)
        # IsaacGymEnvs' constant task reward; nothing for a transition into a blown-up state
        reward = (~out.unstable).to(torch.float32)
        return self.obs.clone(), reward, self.terminated.clone(), self.truncated.clone()

    def _note_unstable_start(self, unstable: torch.Tensor) -> None:
        """Keep (clip, clip time) of the reference start of one env that blew up this step."""
        k = torch.argmax(unstable.to(torch.int32)).view(1)  # index_select: a 0-d index would be read on the host
        dt = self.last_unstable_start.dtype
        seen = torch.cat((self.ref_motion.index_select(0, k).to(dt), self.ref_time.index_select(0, k).to(dt)))
        self.last_unstable_start.copy_(torch.where(unstable.any(), seen, self.last_unstable_start))

    def describe_unstable_start(self) -> str:
        """Where the last env that blew up had started (reads the device once)."""
        clip, t = self.last_unstable_start.tolist()
        if clip <= -2:
            return "no env has blown up"
        if clip < 0:
            return "it had started from the default pose"
        name = self.motion_lib.clips[int(clip)].name
        return f"it had started from clip {name!r} at t={t:.3f} s"
