"""CPU (MuJoCo C, float64) and MuJoCo Warp (float32) backends agree step by step.

Runs where MuJoCo Warp can run on a GPU; elsewhere it skips and says why. (For development,
AMP_WARP_TEST_DEVICE=cpu runs Warp's CPU build instead.)

Tolerance: 1e-4 (rad, m) after 10 control steps (60 physics steps). Warp computes in float32
(relative precision 6e-8), MuJoCo C in float64; the measured difference on these scenarios is
about 3e-7, so 1e-4 leaves room for error growth over the steps and for GPU reduction order,
while a real disagreement (a wrong PD gain, a transmission mix-up, a missed contact) shows up
as 1e-2 or more within one step. Scenarios avoid touchdowns: contact onset is a threshold on
penetration, so a float32 difference can move it by one physics step and change the impulse;
there the two are compared on the contact count only.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

DEVICE = os.environ.get("AMP_WARP_TEST_DEVICE", "cuda:0")
HAVE_WARP = importlib.util.find_spec("mujoco_warp") is not None
RUNNABLE = HAVE_WARP and (DEVICE == "cpu" or torch.cuda.is_available())
REASON = (
    "needs mujoco-warp" if not HAVE_WARP else "needs a CUDA GPU (set AMP_WARP_TEST_DEVICE=cpu to use Warp's CPU build)"
)

pytestmark = pytest.mark.skipif(not RUNNABLE, reason=REASON)
TOL = 1e-4


@pytest.fixture(scope="module")
def pair(humanoid):
    from isaacgymenvs.sim.mujoco_cpu import MujocoCpuBackend
    from isaacgymenvs.sim.mujoco_warp import MujocoWarpBackend

    model, _ = humanoid
    return MujocoCpuBackend(model, 4, 1 / 30), MujocoWarpBackend(model, 4, 1 / 30, device=DEVICE)


def _write(pair, pos, quat, lin, ang, dof, dvel):
    ids = torch.arange(4)
    for b in pair:
        b.write_state(ids.to(b.device), *(x.to(b.device) for x in (pos, quat, lin, ang, dof, dvel)))


def _diff(a, b):
    return (a.double().cpu() - b.double().cpu()).abs().max().item()


def _run(pair, steps, scale, seed):
    cpu, gpu = pair
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(steps):
        targets = scale * torch.randn(4, 28, generator=g)
        for b in pair:
            b.set_pd_targets(targets.to(b.device))
            b.step()
        worst = max(
            worst,
            _diff(cpu.dof_pos, gpu.dof_pos),
            _diff(cpu.root_pos_w, gpu.root_pos_w),
            _diff(cpu.body_pos_w, gpu.body_pos_w),
        )
    return worst


def test_standing_with_pd_noise(pair):
    z = torch.zeros
    pos = z(4, 3)
    pos[:, 2] = 0.89
    quat = z(4, 4)
    quat[:, 0] = 1
    _write(pair, pos, quat, z(4, 3), z(4, 3), z(4, 28), z(4, 28))
    assert _run(pair, 10, 0.05, 0) < TOL
    cpu, gpu = pair
    up_cpu = cpu.contact_forces_w[..., 2].sum(-1)
    up_gpu = gpu.contact_forces_w[..., 2].sum(-1).double().cpu()
    assert torch.allclose(up_cpu, up_gpu, rtol=1e-2, atol=1.0)


def test_airborne_reference_states(pair, humanoid):
    """Reference states of the run clip lifted 1 m: joints, PD and the free root, no contacts."""
    from isaacgymenvs import assets
    from isaacgymenvs.motion.motion_lib import MotionLib
    from isaacgymenvs.tasks.amp_task import AMPTaskConfig

    model, skeleton = humanoid
    lib = MotionLib.from_file(
        assets.asset_path("amp_humanoid/motions/amp_humanoid_run.npy"), skeleton, model, AMPTaskConfig.keyBodies
    )
    st = lib.get_motion_state(torch.zeros(4, dtype=torch.long), torch.tensor([0.1, 0.4, 0.7, 1.0]))
    pos = st.root_pos.clone()
    pos[:, 2] += 1.0
    vel = st.root_lin_vel.clone()
    vel[:, 2] = 0.0
    _write(pair, pos, st.root_quat_wxyz, vel, st.root_ang_vel, st.dof_pos, st.dof_vel)
    assert _run(pair, 8, 0.1, 1) < TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_captured_env_step_equals_the_eager_step(humanoid):
    """The vec env's step captured as one CUDA graph (physics, observations, termination, resets
    by mask) gives what the same step run eagerly gives from the same state, resets included.

    Each step is taken three times from one saved state: by a graph replay and twice eagerly. (Two
    separate runs cannot be compared over many steps: the GPU contact solver reduces in a varying
    order, and falling bodies amplify those last-bit differences.) The two eager steps measure that
    run-to-run spread on this GPU; the replay must lie within 1e-2 of the eager step or within 4x
    the spread, whichever is larger. A captured graph that reads or writes the wrong memory gives
    errors of order 1 within a step or two (measured: eager spread and replay difference 3e-3 in
    joint velocities on an H100; 2.9e-2 replay difference on an H200)."""
    from isaacgymenvs.learning.vecenv import AMPVecEnv
    from isaacgymenvs.tasks import make_task

    t = make_task(
        "HumanoidAMP",
        dict(numEnvs=64, motion_file="amp_humanoid_run.npy", episodeLength=5, stateInit="Default"),
        sim="mujoco_warp",
        device="cuda:0",
        seed=3,
    )
    env = AMPVecEnv(t, rl_device="cuda:0")
    env.reset()
    g = torch.Generator().manual_seed(0)
    act = lambda: 0.5 * torch.randn(64, 28, generator=g).cuda()  # noqa: E731
    for _ in range(3):  # two eager warm-up calls, then the capture
        env.step(act())
    assert env._step_fn.graph is not None, env._step_fn.error
    s = t.sim

    def state():
        return [
            s._qpos,
            s._qvel,
            s._warm,
            s._ctrl,
            s._cfrc,
            t.progress,
            t.terminated,
            t.truncated,
            t.obs,
            t.amp_hist,
            t.ref_reset,
            t.unstable,
            t.ref_motion,
            t.ref_time,
        ]

    compared = lambda: [s._qpos, s._qvel, t.progress, t.terminated, t.truncated, t.obs, t.amp_hist]  # noqa: E731
    resets, worst, spread = 0, 0.0, 0.0
    diff = lambda xs, ys: max((x.float() - y.float()).abs().max().item() for x, y in zip(xs, ys))  # noqa: E731
    for _ in range(8):
        a = act()
        saved = [x.clone() for x in state()]
        replay = [x.clone() for x in env._step_fn(a)] + [x.clone() for x in compared()]  # the graph
        runs = []
        for _ in range(2):  # the same step, eagerly, twice
            for dst, src in zip(state(), saved):
                dst.copy_(src)
            runs.append(
                [x.clone() for x in env._step(a)] + [x.clone() for x in compared()]
            )  # not the solver's internals
        worst = max(worst, diff(replay, runs[0]))
        spread = max(spread, diff(runs[0], runs[1]))
        resets += int(runs[0][2].sum())
    print(f"captured vs eager: {worst:.3g}; eager vs eager: {spread:.3g}")
    assert resets >= 64  # every env ended (episodeLength 5) and was reset inside the compared steps
    assert worst < max(1e-2, 4 * spread), (worst, spread)
