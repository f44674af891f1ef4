"""HumanoidAMP task: observation layout, agent/demo AMP parity, PD mapping, resets, terminations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isaacgymenvs.tasks import make_task, terms


@pytest.fixture(scope="module")
def task(humanoid):
    return make_task("HumanoidAMP", dict(numEnvs=8, motion_file="amp_humanoid_walk.npy", stateInit="Random"), seed=3)


def test_sizes(task):
    assert (task.num_obs, task.num_amp_obs, task.num_actions) == (105, 210, 28)
    assert [n for _, n in task.obs_layout] == [1, 6, 3, 3, 52, 28, 12]
    assert task.dt == pytest.approx(1 / 30, rel=0.01)


def test_reference_state_gives_the_demo_amp_observation(task):
    """Write the reference state at time t into the simulator: the agent's AMP observation after
    the reset equals the demonstration sampler's at t (history t, t - dt), to float precision."""
    lib = task.motion_lib
    ids = torch.zeros(8, dtype=torch.long)
    times = torch.linspace(0.1, 2.4, 8)
    st = lib.get_motion_state(ids, times)
    env_ids = torch.arange(8)
    task.sim.write_state(
        env_ids, st.root_pos, st.root_quat_wxyz, st.root_lin_vel, st.root_ang_vel, st.dof_pos, st.dof_vel
    )
    agent = task._sim_obs()
    demo = task._motion_obs(ids, times)
    assert (agent - demo).abs().max().item() < 1e-4
    # and the full 2-step history built by a reference reset equals the demo sampler's layout
    k = task.cfg.numAMPObsSteps
    hist_times = torch.stack([times - j * task.dt for j in range(k)], dim=1).reshape(-1)
    demo_amp = task._motion_obs(ids.repeat_interleave(k), hist_times).reshape(8, -1)
    task.amp_hist[:, 0] = agent
    for j in range(1, k):
        task.amp_hist[:, j] = task._motion_obs(ids, times - j * task.dt)
    assert (task.amp_obs - demo_amp).abs().max().item() < 1e-4


def test_demo_sampler_shape_and_history_order(task):
    demo = task.amp_obs_demo(64)
    assert demo.shape == (64, 210) and torch.isfinite(demo).all()
    # newest first: slot 0 and slot 1 are one control step apart, so the root heights differ slightly
    assert (demo[:, 0] - demo[:, 105]).abs().max() < 0.2


def test_observation_by_hand():
    """Root at height 0.9, yawed 90 degrees, moving +y at 1 m/s: in the heading frame that is +x."""
    q = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]])
    groups = [terms.JointGroup("elbow", (0,), ((0.0, 1.0, 0.0),))]
    obs = terms.character_obs(
        torch.tensor([[1.0, 2.0, 0.9]]),
        q,
        torch.tensor([[0.0, 1.0, 0.0]]),
        torch.tensor([[0.0, 0.0, 2.0]]),
        torch.tensor([[-0.5]]),
        torch.tensor([[0.25]]),
        torch.tensor([[[1.0, 3.0, 0.5]]]),
        groups,
    )
    expect = [
        0.9,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,  # height, tangent = yawed x axis, normal = z
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
        2.0,  # heading-frame velocities
        -0.5,
        0.25,  # hinge angle and velocity
        1.0,
        0.0,
        -0.4,
    ]  # key body (0, 1, -0.4) relative in world -> (1, 0, -0.4) in heading frame
    assert torch.allclose(obs[0], torch.tensor(expect), atol=1e-6)


def test_three_hinge_joint_as_tan_norm():
    groups = [terms.JointGroup("j", (0, 1, 2), ((1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0)))]
    # 90 degrees about z only: x axis -> y axis, z axis stays
    out = terms.dof_to_obs(torch.tensor([[0.0, 0.0, math.pi / 2]]), groups)
    assert torch.allclose(out[0], torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]), atol=1e-6)


def test_pd_action_mapping(task):
    """IsaacGymEnvs' mapping: 3-DoF joints span [-pi, pi]; the elbow ([-160, 0] deg) spans
    mid -80 deg +- 0.7 * 160 deg, so offset = -1.3963 rad and scale = 1.9548 rad."""
    names = task.sim.dof_names
    e = names.index("right_elbow")
    assert task.action_offset[e].item() == pytest.approx(math.radians(-80), abs=1e-5)
    assert task.action_scale[e].item() == pytest.approx(math.radians(112), abs=1e-5)
    h = names.index("right_hip_y")
    assert task.action_offset[h].item() == pytest.approx(0.0, abs=1e-7)
    assert task.action_scale[h].item() == pytest.approx(math.pi, abs=1e-6)


def test_pd_targets_reach_actuators_through_the_transmission(humanoid):
    """The hip actuators run x, z, y while the joints run x, y, z: a target on hip_y must move hip_y."""
    from isaacgymenvs.sim import make_backend

    model, _ = humanoid
    sim = make_backend("mujoco", model, 1, 1 / 30)
    targets = torch.zeros(1, sim.num_dof)
    hy = sim.dof_names.index("right_hip_y")
    targets[0, hy] = -0.5
    quat = torch.tensor([[1.0, 0, 0, 0]])
    z = torch.zeros
    sim.write_state(torch.tensor([0]), torch.tensor([[0, 0, 5.0]]), quat, z(1, 3), z(1, 3), z(1, 28), z(1, 28))
    sim.set_pd_targets(targets)
    for _ in range(10):
        sim.step()
    assert sim.dof_pos[0, hy].item() == pytest.approx(-0.5, abs=0.05)
    assert abs(sim.dof_pos[0, sim.dof_names.index("right_hip_z")].item()) < 0.05


def test_fall_termination_by_hand():
    B = 3  # body 0: foot (allowed), 1: torso, 2: head
    allowed = torch.tensor([True, False, False])
    pos = torch.tensor(
        [
            [[0, 0, 0.0], [0, 0, 1.0], [0, 0, 1.5]],  # upright, foot touching
            [[0, 0, 0.0], [0, 0, 0.3], [0, 0, 0.2]],  # lying, head touching
            [[0, 0, 0.0], [0, 0, 0.3], [0, 0, 0.2]],  # lying, but only the foot touches
            [[0, 0, 0.0], [0, 0, 0.3], [0, 0, 0.2]],
        ]
    )  # lying and touching, first step
    force = torch.zeros(4, B, 3)
    force[:, 0, 2] = 400.0
    force[1, 2, 2] = 50.0
    force[3, 2, 2] = 50.0
    progress = torch.tensor([5, 5, 5, 1])
    out = terms.fall_termination(force, pos, allowed, 0.5, progress)
    assert out.tolist() == [False, True, False, False]


@pytest.mark.parametrize("mode", ["Default", "Start", "Random", "Hybrid"])
def test_reset_modes(humanoid, mode):
    t = make_task(
        "HumanoidAMP", dict(numEnvs=16, motion_file="amp_humanoid_walk.npy", stateInit=mode, hybridInitProb=0.5), seed=1
    )
    t.reset()
    ref = t.ref_reset
    if mode == "Default":
        assert not ref.any()
        assert torch.allclose(t.sim.root_pos_w[:, 2].float(), torch.full((16,), 0.89))
        # after a default reset every history slot holds the current observation
        assert torch.equal(t.amp_hist[:, 0], t.amp_hist[:, 1])
    elif mode == "Start":
        clip = t.motion_lib.clips[0]
        assert ref.all()
        assert torch.allclose(t.sim.root_pos_w.float(), torch.tensor(clip.root_pos[0]).float().expand(16, 3), atol=1e-5)
    elif mode == "Random":
        assert ref.all()
        assert t.sim.root_pos_w[:, 0].std() > 0.1  # different phases of a walk
    else:
        assert 0 < ref.sum() < 16


@pytest.mark.slow
def test_random_actions_step_64_envs(humanoid):
    t = make_task("HumanoidAMP", dict(numEnvs=64, motion_file="amp_humanoid_run.npy"), seed=0)
    obs = t.reset()
    g = torch.Generator().manual_seed(0)
    ended = 0
    for _ in range(20):
        obs, rew, term, trunc = t.step(0.3 * torch.randn(64, 28, generator=g))
        assert torch.isfinite(obs).all() and torch.isfinite(t.amp_obs).all()
        assert torch.equal(rew, torch.ones(64))
        ended += int((term | trunc).sum())
        obs, done_ids = t.reset_done()
        assert (t.progress[done_ids] == 0).all()
    assert ended > 0  # 20 steps of noise topple some runners


def test_episode_times_out(humanoid):
    t = make_task(
        "HumanoidAMP",
        dict(numEnvs=2, motion_file="amp_humanoid_walk.npy", episodeLength=5, enableEarlyTermination=False),
        seed=0,
    )
    t.reset()
    outs = [t.step(torch.zeros(2, 28))[3].tolist() for _ in range(4)]
    assert outs == [[False, False], [False, False], [False, False], [True, True]]


@pytest.mark.parametrize(
    "cfg,match",
    [
        (dict(stateInit="Sideways"), "stateInit must be one of"),
        (dict(numAMPObsSteps=1), "numAMPObsSteps must be at least 2"),
        (dict(hybridInitProb=1.5), "hybridInitProb"),
        (dict(motion_file="/nope/clip.npy"), "does not exist"),
        (dict(motion_file="amp_humanoid_moonwalk.npy"), "make assets"),
    ],
)
def test_bad_task_config(humanoid, cfg, match):
    base = dict(numEnvs=2, motion_file="amp_humanoid_walk.npy")
    base.update(cfg)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        make_task("HumanoidAMP", base)


def test_mask_resets_match_id_resets(humanoid):
    """The GPU path (reset by mask, no host sync) leaves running envs untouched and resets the
    finished ones exactly as the id path does: progress 0, a reference state, the AMP history
    seeded from the clip."""
    t = make_task(
        "HumanoidAMP",
        dict(numEnvs=8, motion_file="amp_humanoid_walk.npy", episodeLength=6, enableEarlyTermination=False),
        seed=0,
    )
    t.sync_free_resets = True
    t.reset()
    t.progress[:] = torch.tensor([0, 0, 0, 0, 4, 4, 4, 4])  # the last four end at the next step
    t.step(torch.zeros(8, 28))
    before = (t.sim.root_pos_w.clone(), t.sim.dof_pos.clone(), t.amp_hist.clone())
    obs, mask = t.reset_done()
    assert mask.tolist() == [False] * 4 + [True] * 4
    assert t.progress.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert not (t.terminated | t.truncated).any()
    assert torch.equal(t.sim.root_pos_w[:4], before[0][:4]) and torch.equal(t.sim.dof_pos[:4], before[1][:4])
    assert torch.equal(t.amp_hist[:4], before[2][:4])
    assert not torch.equal(t.sim.root_pos_w[4:], before[0][4:])
    # the reset envs' AMP observation equals the demonstration sampler's at their reference time
    assert torch.allclose(t.amp_hist[4:, 0], t._sim_obs()[4:], atol=1e-6)
    assert torch.allclose(obs, t._sim_obs().float())


@pytest.mark.parametrize("sync_free", [True, False], ids=["mask", "ids"])
def test_vec_env_amp_obs_is_the_transitions_not_the_reset_states(humanoid, sync_free):
    """The discriminator must see the transition that ended an episode: the AMP observation the
    vec env hands out is taken before the resets rewrite the history (it used to be a view of it)."""
    from isaacgymenvs.learning.vecenv import AMPVecEnv

    t = make_task(
        "HumanoidAMP",
        dict(
            numEnvs=4,
            motion_file="amp_humanoid_walk.npy",
            episodeLength=3,
            enableEarlyTermination=False,
            syncFreeResets=sync_free,
        ),
        seed=0,
    )
    env = AMPVecEnv(t)
    env.reset()
    seen = []
    step = t.step
    t.step = lambda a: seen.append(step(a)) or seen[-1]  # the task's own step output, before resets
    prev = t.obs.clone()
    for _ in range(2):
        obs, _, done, infos = env.step(torch.zeros(4, 28))
        last_obs = seen[-1][0]
        assert torch.equal(infos["amp_obs"][:, :105], last_obs) and torch.equal(infos["amp_obs"][:, 105:], prev)
        prev = obs.clone()
    assert done.all() and not torch.equal(obs, last_obs)  # all ended at step 2: obs is the reset state's


def _random_state(rng, N, D, K):
    q = rng.standard_normal((N, 4))
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return terms.CharacterState(
        f(N, 3),
        (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(np.float32),
        f(N, 3),
        f(N, 3),
        f(N, D),
        f(N, D),
        f(N, K, 3),
    )


def test_terms_give_the_same_numbers_on_numpy_and_torch(task):
    """The deployed step is written once: each term on numpy arrays (sim2sim) gives what it gives
    on torch tensors (the trainer), for both root-rotation frames."""
    rng = np.random.default_rng(0)
    N, D, K = 16, task.num_actions, len(task.cfg.keyBodies)
    state = _random_state(rng, N, D, K)
    t = lambda x: torch.from_numpy(np.asarray(x))  # noqa: E731
    for local in (False, True):
        layout = terms.obs_layout(task.groups, D, K, local)
        on_np = terms.observation(state, task.groups, layout)
        on_torch = terms.observation(terms.CharacterState(*map(t, state)), task.groups, layout)
        assert isinstance(on_np, np.ndarray) and on_np.dtype == np.float32 and on_np.shape == (N, 105)
        assert np.abs(on_np - on_torch.numpy()).max() < 1e-5
    off, scale = task.action_offset.numpy(), task.action_scale.numpy()
    low, high = np.full(D, -0.5, np.float32), np.full(D, np.inf, np.float32)
    a = rng.uniform(-2, 2, (N, D)).astype(np.float32)
    assert np.array_equal(
        terms.pd_targets(a, off, scale, low, high), terms.pd_targets(t(a), t(off), t(scale), t(low), t(high)).numpy()
    )
    hist = rng.standard_normal((N, 3, 105)).astype(np.float32)
    obs = on_np.copy()
    obs[3, 7] = np.nan  # a blown-up env
    B = 5
    forces, pos = rng.uniform(0, 1, (N, B, 3)), rng.uniform(0, 1, (N, B, 3))
    allowed, progress = np.array([True, False, False, True, False]), rng.integers(0, 10, N)
    rules = terms.EpisodeRules(0.3, 8)
    unstable = np.zeros(N, dtype=bool)
    unstable[5] = True
    ours = terms.after_step(obs, hist, unstable, forces, pos, allowed, progress, rules)
    theirs = terms.after_step(t(obs), t(hist), t(unstable), t(forces), t(pos), t(allowed), t(progress), rules)
    for x, y in zip(ours, theirs):
        assert np.array_equal(x, y.numpy())
    assert ours.unstable[[3, 5]].all() and ours.terminated[[3, 5]].all() and np.array_equal(ours.obs[3], hist[3, 0])
    assert np.array_equal(ours.amp_hist[:, 1:], hist[:, :2]) and np.array_equal(ours.amp_hist[:, 0], ours.obs)
    assert ours.terminated.any() and not ours.terminated.all() and ours.truncated.any()


def test_amp_windows_are_the_pushed_history():
    """A sequence's AMP windows (sim2sim's reference set) are what pushing its observations one by
    one into the history gives (the trainer's agent AMP observation), newest first."""
    seq = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)
    hist = terms.history_of(seq[:1], 3)
    pushed = []
    for o in seq[1:]:
        hist = terms.push_history(hist, o[None])
        pushed.append(terms.amp_obs(hist)[0])
    windows = terms.amp_windows(seq, 3)
    assert windows.shape == (4, 6) and np.array_equal(windows, np.array(pushed[1:]))
    assert np.array_equal(windows[0], [4, 5, 2, 3, 0, 1])
    assert terms.amp_windows(seq[:2], 3).shape == (0, 6)
    times = terms.history_times(torch.tensor([1.0, 2.0]), 3, 0.25)
    assert times.tolist() == [[1.0, 0.75, 0.5], [2.0, 1.75, 1.5]]


def test_layout_names_the_blocks_and_their_frame(task):
    layout = terms.obs_layout(task.groups, 28, 4, local_root_obs=True)
    assert [n for n, _ in layout][:2] == ["root_height", "root_rot_tan_norm_heading"]
    assert terms.layout_from_json(terms.layout_to_json(layout)) == layout
    world = terms.layout_to_json(task.obs_layout)
    assert terms.layout_from_json(world) == task.obs_layout
    # exports before the block named its frame: root_rot_tan_norm with observation.local_root_obs
    assert terms.layout_from_json(world, local_root_obs=True) == layout
    with pytest.raises(terms.LayoutError, match="unknown block 'root_spin'"):
        terms.layout_from_json(world + [{"name": "root_spin", "size": 3}])
    with pytest.raises(terms.LayoutError, match="'key_body_pos_heading' has size 12 in the layout, the model gives 15"):
        terms.check_layout(task.obs_layout, task.groups, 28, 5)
    assert task.deploy_info()["obs_layout"] == world
