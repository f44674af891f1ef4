"""The SimBackend contract, run against every backend that can start on this machine."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

from isaacgymenvs.sim import BackendUnavailableError, make_backend


def _backends():
    out = [pytest.param(("mujoco", "cpu"), id="mujoco")]
    warp_device = os.environ.get("AMP_WARP_TEST_DEVICE", "cuda:0")  # cpu: Warp's CPU build, for development
    gpu = importlib.util.find_spec("mujoco_warp") is not None and (warp_device == "cpu" or torch.cuda.is_available())
    out.append(
        pytest.param(
            ("mujoco_warp", warp_device),
            id="mujoco_warp",
            marks=pytest.mark.skipif(not gpu, reason="mujoco_warp backend needs mujoco-warp and a CUDA GPU"),
        )
    )
    return out


@pytest.fixture(params=_backends())
def make(request, humanoid):
    name, device = request.param
    model, _ = humanoid
    made = []

    def _make(n):
        b = make_backend(name, model, n, 1.0 / 30.0, device=device)
        made.append(b)
        return b

    yield _make
    for b in made:
        b.close()


def _state(sim, M, z=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(M, 3, generator=g)
    pos[:, 2] = z
    quat = torch.nn.functional.normalize(torch.randn(M, 4, generator=g), dim=-1)
    lin = torch.randn(M, 3, generator=g)
    ang = torch.randn(M, 3, generator=g)
    lim = torch.tensor(np.array([[-0.3, 0.3]] * sim.num_dof))
    dof = (torch.rand(M, sim.num_dof, generator=g) * 0.6 - 0.3).clamp(lim[:, 0], lim[:, 1])
    dvel = torch.randn(M, sim.num_dof, generator=g)
    return [t.to(sim.device) for t in (pos, quat, lin, ang, dof, dvel)]


def test_shapes(make):
    sim = make(3)
    N, D, B = 3, sim.num_dof, sim.num_bodies
    assert (D, B, sim.substeps) == (28, 15, 6)
    assert sim.control_dt == pytest.approx(6 * 0.00555)
    shapes = {
        "root_pos_w": (N, 3),
        "root_quat_w": (N, 4),
        "root_lin_vel_w": (N, 3),
        "root_ang_vel_w": (N, 3),
        "dof_pos": (N, D),
        "dof_vel": (N, D),
        "body_pos_w": (N, B, 3),
        "contact_forces_w": (N, B, 3),
    }
    for name, shape in shapes.items():
        t = getattr(sim, name)
        assert tuple(t.shape) == shape, name
        assert t.device.type == sim.device.type


def test_write_then_read_round_trip(make):
    sim = make(4)
    ids = torch.tensor([1, 3], device=sim.device)
    st = _state(sim, 2)
    sim.write_state(ids, *st)
    got = [sim.root_pos_w, sim.root_quat_w, sim.root_lin_vel_w, sim.root_ang_vel_w, sim.dof_pos, sim.dof_vel]
    for want, have in zip(st, got):
        assert torch.allclose(have[ids].double().cpu(), want.double().cpu(), atol=1e-5)
    # body positions follow the written pose: the root body sits at the root position
    assert torch.allclose(sim.body_pos_w[ids, 0].double().cpu(), st[0].double().cpu(), atol=1e-5)


def test_env_id_isolation(make):
    sim = make(3)
    before = [t.clone() for t in (sim.root_pos_w, sim.dof_pos, sim.dof_vel)]
    sim.write_state(torch.tensor([1], device=sim.device), *_state(sim, 1, z=2.0))
    after = (sim.root_pos_w, sim.dof_pos, sim.dof_vel)
    for b, a in zip(before, after):
        assert torch.equal(b[[0, 2]], a[[0, 2]])
        assert not torch.equal(b[1], a[1])
    # stepping: an env's future does not depend on what the other envs do
    a = make(2)
    b = make(2)
    st = _state(a, 2, z=1.2)
    for sim_ in (a, b):
        sim_.write_state(torch.arange(2, device=sim_.device), *st)
    ta = torch.zeros(2, a.num_dof, device=a.device)
    tb = ta.clone()
    tb[1] = 0.5  # only env 1 differs
    for _ in range(5):
        a.set_pd_targets(ta)
        b.set_pd_targets(tb)
        a.step()
        b.step()
    assert torch.allclose(a.dof_pos[0], b.dof_pos[0], atol=1e-6)
    assert not torch.allclose(a.dof_pos[1], b.dof_pos[1], atol=1e-3)


def test_masked_write_leaves_the_others_bit_for_bit(make):
    """write_state(None, ..., mask=m): the masked envs get the new state, the others keep theirs
    exactly, so their next steps are those of a sim that was never written to."""
    a, b = make(3), make(3)
    st = _state(a, 3, z=1.1)
    for sim in (a, b):
        sim.write_state(None, *st)
        sim.set_pd_targets(torch.zeros(3, sim.num_dof, device=sim.device))
        sim.step()
    new = _state(a, 3, z=2.0, seed=5)
    mask = torch.tensor([False, True, False], device=a.device)
    a.write_state(None, *new, mask=mask)
    assert torch.allclose(a.root_pos_w[1], new[0][1].to(a.root_pos_w.dtype), atol=1e-6)
    for _ in range(3):
        for sim in (a, b):
            sim.step()
    # bit for bit on the CPU; on a GPU the contact solver's parallel reductions differ in the last
    # bits between two sims (measured on an H100: 1.2e-5 after 3 steps)
    tol = 0.0 if a.device.type == "cpu" else 1e-4
    for x, y in (
        (a.root_pos_w, b.root_pos_w),
        (a.dof_pos, b.dof_pos),
        (a.dof_vel, b.dof_vel),
        (a.body_pos_w, b.body_pos_w),
    ):
        assert (x[[0, 2]] - y[[0, 2]]).abs().max().item() <= tol
        assert (x[1] - y[1]).abs().max().item() > 1e-3


def test_body_positions_after_a_step_are_those_of_the_new_state(make):
    """After step(), body_pos_w is the kinematics of the current root and joint state (what a
    write of that same state gives), not of the state one substep earlier."""
    sim = make(2)
    sim.write_state(None, *_state(sim, 2, z=1.5))
    sim.set_pd_targets(torch.full((2, sim.num_dof), 0.3, device=sim.device))
    for _ in range(2):
        sim.step()
    stepped = sim.body_pos_w.clone()
    state = [
        t.clone()
        for t in (sim.root_pos_w, sim.root_quat_w, sim.root_lin_vel_w, sim.root_ang_vel_w, sim.dof_pos, sim.dof_vel)
    ]
    sim.write_state(None, *state)
    assert torch.allclose(stepped, sim.body_pos_w, atol=1e-5)


def test_free_fall_matches_the_analytic_answer(make):
    """Far above the floor, with the PD servos holding the pose, the root falls as a point mass.

    MuJoCo integrates velocity first (semi-implicit Euler), so after n steps of dt from rest:
    v_n = -g n dt and z_n = z0 - g dt^2 n (n + 1) / 2, exactly.
    """
    sim = make(2)
    ids = torch.arange(2, device=sim.device)
    z0 = 10.0
    zeros = lambda *s: torch.zeros(*s, device=sim.device)  # noqa: E731
    quat = zeros(2, 4)
    quat[:, 0] = 1.0
    pos = zeros(2, 3)
    pos[:, 2] = z0
    sim.write_state(ids, pos, quat, zeros(2, 3), zeros(2, 3), zeros(2, sim.num_dof), zeros(2, sim.num_dof))
    sim.set_pd_targets(zeros(2, sim.num_dof))
    steps = 10
    for _ in range(steps):
        sim.step()
    n = steps * sim.substeps
    dt = sim.control_dt / sim.substeps
    g = 9.81
    assert sim.root_pos_w[:, 2].cpu().double().numpy() == pytest.approx(z0 - g * dt * dt * n * (n + 1) / 2, abs=1e-6)
    assert sim.root_lin_vel_w[:, 2].cpu().double().numpy() == pytest.approx(-g * n * dt, abs=1e-6)
    assert torch.all(sim.contact_forces_w == 0)


def test_contact_forces_on_the_floor(make):
    sim = make(1)
    ids = torch.tensor([0], device=sim.device)
    zeros = lambda *s: torch.zeros(*s, device=sim.device)  # noqa: E731
    quat = zeros(1, 4)
    quat[:, 0] = 1.0
    pos = zeros(1, 3)
    pos[:, 2] = 0.95
    sim.write_state(ids, pos, quat, zeros(1, 3), zeros(1, 3), zeros(1, sim.num_dof), zeros(1, sim.num_dof))
    for _ in range(30):
        sim.set_pd_targets(zeros(1, sim.num_dof))
        sim.step()
    f = sim.contact_forces_w[0].cpu()
    feet = [sim.body_names.index("right_foot"), sim.body_names.index("left_foot")]
    # standing still, the floor carries the weight (48.89 kg) through the feet
    total_up = f[feet, 2].sum().item()
    assert total_up == pytest.approx(48.89 * 9.81, rel=0.1)


def test_bad_inputs(make, humanoid):
    sim = make(2)
    with pytest.raises(ValueError, match=r"PD targets must be \[2, 28\]"):
        sim.set_pd_targets(torch.zeros(2, 5, device=sim.device))
    with pytest.raises(IndexError, match="env ids"):
        sim.write_state(torch.tensor([5], device=sim.device), *_state(sim, 1))
    model, _ = humanoid
    with pytest.raises(ValueError, match="unknown sim"):
        make_backend("physx", model, 1, 1 / 30)


@pytest.mark.skipif(
    importlib.util.find_spec("mujoco_warp") is not None and torch.cuda.is_available(), reason="GPU present"
)
def test_warp_without_gpu_names_the_fix(humanoid):
    model, _ = humanoid
    with pytest.raises(BackendUnavailableError, match="sim=mujoco"):
        make_backend("mujoco_warp", model, 1, 1 / 30, device="cuda")


@pytest.mark.parametrize("fault", ["nan", "huge_velocity"])
def test_a_broken_env_is_flagged_and_the_others_stay_finite(make, fault):
    """One env's state is broken (a NaN velocity, or a joint at 1e4 rad/s): after a step that env
    alone is flagged ``unstable``, and every other env's state is finite and unflagged."""
    sim = make(4)
    pos, quat, lin, ang, dof, dvel = _state(sim, 4, z=1.2)
    sim.write_state(torch.arange(4, device=sim.device), pos, quat, lin, ang, dof, dvel)
    sim.set_pd_targets(torch.zeros(4, sim.num_dof, device=sim.device))
    sim.step()
    assert not sim.unstable(100.0).any()
    dvel = dvel.clone()
    dvel[2, 5] = float("nan") if fault == "nan" else 1e4
    sim.write_state(torch.tensor([2], device=sim.device), pos[2:3], quat[2:3], lin[2:3], ang[2:3], dof[2:3], dvel[2:3])
    sim.step()
    flagged = sim.unstable(100.0).cpu()
    assert flagged.tolist() == [False, False, True, False]
    others = torch.tensor([0, 1, 3])
    for x in (sim.root_pos_w, sim.root_quat_w, sim.root_lin_vel_w, sim.root_ang_vel_w, sim.dof_pos, sim.dof_vel):
        assert torch.isfinite(x.cpu()[others]).all()
    # writing a good state clears it
    sim.write_state(torch.tensor([2], device=sim.device), pos[2:3], quat[2:3], lin[2:3], ang[2:3], dof[2:3], dvel[1:2])
    sim.step()
    assert not sim.unstable(100.0).any()


def test_warp_overflow_warnings_keep_buffer_overflows_and_drop_iteration_limits():
    """MuJoCo Warp 4.0.0's OverflowType bits (types.py): the mask drops exactly the solver's and
    the line search's iteration caps (bits 9 and 10) and keeps every buffer overflow."""
    import enum
    import types

    from isaacgymenvs.sim.mujoco_warp import quiet_overflow_mask

    names = ["NEFC", "NJMAX_NNZ", "BROADPHASE", "NARROWPHASE", "CCD", "HFIELD", "CONTACT_MATCH", "NVMAX"]
    names += ["EPA_HORIZON", "ITERATIONS", "LS_ITERATIONS", "TACTILE"]
    flags = {n: 1 << i for i, n in enumerate(names)}
    overflow = enum.IntFlag("OverflowType", {**flags, "ALL": (1 << len(names)) - 1})
    mask = quiet_overflow_mask(types.SimpleNamespace(OverflowType=overflow))
    assert mask == 0b1001_1111_1111  # 4095 - 512 - 1024
    assert not mask & overflow.ITERATIONS and not mask & overflow.LS_ITERATIONS
    assert mask & overflow.NEFC and mask & overflow.NARROWPHASE and mask & overflow.TACTILE
