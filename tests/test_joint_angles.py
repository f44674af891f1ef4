"""Hinge angles on the branch inside the limits, rates from angular velocity, slerp interpolation,
and the clip checks: against rotations built by hand and synthetic clips with known answers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from isaacgymenvs import motion_check
from isaacgymenvs.motion import joint_angles as ja
from isaacgymenvs.motion.clip import clip_from_skeleton_motion
from isaacgymenvs.motion.hinge_chain import (
    ChainAxes,
    chain_quat,
    decompose,
    interpolate_chain,
    quat_mul,
    quat_to_matrix,
    rate_jacobian,
    slerp,
)
from tests.helpers.stress_clips import STRESS_CASES, make_stress_clip

XYZ = ChainAxes((0, 1, 2), (1.0, 1.0, 1.0))
#: Central differences of the stress clips' smooth bumps at 60 fps are off by less than 0.02 rad/s.
RATE_TOL = 0.05


def _angle_between(qa, qb):
    return 2 * np.arccos(np.clip(np.abs(np.sum(qa * qb, -1)), 0, 1))


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_both_branches_give_the_same_rotation(order):
    rng = np.random.default_rng(1)
    for signs in itertools.product((1.0, -1.0), repeat=3):
        axes = ChainAxes(order, signs)
        ang = rng.uniform(-3, 3, (200, 3))
        R = quat_to_matrix(chain_quat(ang, axes))
        first, other = decompose(R, axes)
        for reading in (first, other):
            assert np.abs(quat_to_matrix(chain_quat(reading, axes)) - R).max() < 1e-9
        # the second branch is (p1 + pi, pi - p2, p3 + pi) of the first, in axis-signed angles
        p, p_other = np.array(signs) * first, np.array(signs) * other
        assert np.allclose(np.cos(p_other[:, 0] - p[:, 0] - math.pi), 1.0)
        assert np.allclose(np.cos(p_other[:, 1] + p[:, 1] - math.pi), 1.0)
        assert np.allclose(np.cos(p_other[:, 2] - p[:, 2] - math.pi), 1.0)
        assert np.all(np.abs(p[:, 1]) <= math.pi / 2 + 1e-12)  # the principal branch


def test_rate_jacobian_matches_finite_differences():
    rng = np.random.default_rng(2)
    axes = ChainAxes((2, 0, 1), (1.0, -1.0, 1.0))
    ang = rng.uniform(-2, 2, (50, 3))
    rate = rng.normal(size=(50, 3))
    h = 1e-7
    q0, q1 = chain_quat(ang - h * rate, axes), chain_quat(ang + h * rate, axes)
    omega = np.stack([ja.local_angular_velocity(np.stack((a, b)), 1.0)[0] for a, b in zip(q0, q1)]) / (2 * h)
    assert np.abs(np.einsum("tij,tj->ti", rate_jacobian(ang, axes), rate) - omega).max() < 1e-5


def test_the_backflip_thigh_takes_the_branch_inside_its_limits(humanoid):
    """The issue's numbers: scipy reads the backflip's left thigh as (2.93, -0.91, 3.12); the same
    rotation is (-0.22, -2.23, -0.03), inside left_hip's ranges (x [-15, 60], y [-140, 60] deg)."""
    _, sk = humanoid
    hinges = next(g for g in ja.body_hinges(sk) if g.body == "left_thigh")
    truth = np.array([[-0.22, -2.23, -0.03]])
    q = chain_quat(truth, hinges.axes)
    first, _ = decompose(quat_to_matrix(q), hinges.axes)
    assert np.allclose(first, [[2.9216, -0.9116, 3.1116]], atol=1e-4)  # the principal branch is the wrong one
    got = ja.choose_readings(ja.candidate_readings(hinges, q), hinges.limits)
    assert np.allclose(got, truth, atol=1e-12)


def test_unwrap_offsets_do_not_survive(humanoid):
    """A knee flexing from 6 to 155 deg, with quaternion signs flipped at random: each frame's angle
    is the reading inside the limits and nearest its neighbours, never 2 pi away."""
    _, sk = humanoid
    hinges = next(g for g in ja.body_hinges(sk) if g.body == "right_shin")
    truth = np.linspace(0.1, 2.7, 40)[:, None]
    q = chain_quat(truth, hinges.axes)
    q[::3] *= -1  # the stored sign of a quaternion is arbitrary
    got = ja.choose_readings(ja.candidate_readings(hinges, q), hinges.limits)
    assert np.allclose(got, truth, atol=1e-12)


@pytest.mark.parametrize("case", STRESS_CASES)
def test_stress_clip_known_answers(case, humanoid):
    model, sk = humanoid
    sc = make_stress_clip(sk, case)
    clip = clip_from_skeleton_motion(sc.motion, sk, model, ground="none")
    # FK exact
    pos, _ = sk.forward_kinematics(
        torch.tensor(clip.root_pos), torch.tensor(clip.root_quat_wxyz), torch.tensor(clip.dof_pos)
    )
    assert (pos - torch.tensor(sc.motion.global_positions())).abs().max() < 1e-8
    # every joint inside its range, and the true angles wherever the chain is not locked
    lim = sk.dof_limits.numpy()
    assert ja.limit_excess(clip.dof_pos, lim).max() < 1e-9
    sigma_min = np.ones_like(clip.dof_pos)
    for g in ja.body_hinges(sk):
        if len(g.dofs) == 3:
            sv = np.linalg.svd(rate_jacobian(sc.dof_pos[:, list(g.dofs)], g.axes), compute_uv=False)
            sigma_min[:, list(g.dofs)] = sv[:, -1:]
    well = sigma_min > 1e-3
    assert np.abs(clip.dof_pos - sc.dof_pos)[well].max() < 1e-6
    # rates: exact (to the difference error) where the Jacobian is undamped; near gimbal lock never
    # faster than the truth, and off it only along the damped direction
    err = np.abs(clip.dof_vel - sc.dof_vel)
    undamped = sigma_min >= ja.SIGMA0
    assert err[undamped].max() < RATE_TOL
    assert np.all(np.abs(clip.dof_vel) <= np.abs(sc.dof_vel).max() + RATE_TOL)
    # root angular velocity (world)
    assert np.abs(clip.root_ang_vel - sc.root_ang_vel_w)[2:-2].max() < RATE_TOL
    # and the simulator takes every reference state: written (with the training ground correction)
    # and held for one control step, no joint runs away and MuJoCo flags nothing
    grounded = clip_from_skeleton_motion(sc.motion, sk, model, ground="rolling_min")
    rep = motion_check.check_clip(grounded, model, sk, 1 / 30)
    assert rep["limits"]["ok"] and rep["speeds"]["ok"], rep
    assert rep["step"]["unstable_count"] == 0 and rep["step"]["max"] < motion_check.MAX_STEP_SPEED, rep["step"]


def test_near_gimbal_lock_rates_are_bounded(humanoid):
    """Within 3 degrees of gimbal lock a reading's rates are large where the body barely turns; the
    damped inverse keeps the error to the weak direction and the speed bounded."""
    _, sk = humanoid
    g = next(g for g in ja.body_hinges(sk) if g.body == "torso")
    b = math.radians(87)
    ang = np.array([[0.0, b, 0.0]])
    J = rate_jacobian(ang, g.axes)[0]
    _, sv, vt = np.linalg.svd(J)
    assert sv[-1] == pytest.approx(math.sqrt(1 - math.sin(b)), rel=1e-6)  # sqrt(1 - sin b) by hand: 0.037
    omega = J @ vt[-1] * 1.0  # a body rate that needs 1 rad/s along the weak direction... exactly
    rates = ja.hinge_rates(ang, omega[None], g.axes)[0]
    gain = sv[-1] / (sv[-1] ** 2 + ja.LAMBDA0**2 * (1 - (sv[-1] / ja.SIGMA0) ** 2))
    assert np.allclose(rates, vt[-1] * gain * sv[-1], atol=1e-12)  # damped: 0.39 of the exact rate
    # the worst case: a body rate of 10 rad/s along the weak direction gives at most ~10 / (2 lambda0) / 10
    omega = (J @ vt[-1]) / np.linalg.norm(J @ vt[-1]) * 10.0
    assert np.abs(ja.hinge_rates(ang, omega[None], g.axes)).max() < 10.0 / (2 * ja.LAMBDA0) + 1e-9


def test_exact_gimbal_lock_frame_is_continuous(humanoid):
    """A frame exactly at gimbal lock has a line of equal readings; the one taken is the nearest the
    neighbouring frames (no jump), and the rotation is unchanged."""
    _, sk = humanoid
    g = next(g for g in ja.body_hinges(sk) if g.body == "right_upper_arm")
    t = np.linspace(-1, 1, 21)
    truth = np.stack((0.3 + 0.2 * t, -math.pi / 2 + 0.4 * t * t, -0.2 + 0.1 * t), -1)  # b = -pi/2 at t = 0
    q = chain_quat(truth, g.axes)
    got = ja.settle_gimbal_locks(ja.choose_readings(ja.candidate_readings(g, q), g.limits), g)
    assert _angle_between(chain_quat(got, g.axes), q).max() < 1e-7
    assert np.abs(np.diff(got, axis=0)).max() < 0.1
    assert np.abs(got[10] - truth[10]).max() < 1e-6  # the neighbours' mean lies on the truth's line


@pytest.mark.parametrize("case", ["hip_flex_130", "arm_overhead"])
def test_interpolation_slerps_local_rotations(case, humanoid):
    """Between two frames the MotionLib's 3-hinge joints are at the slerp of the frames' local
    rotations (the linear blend of Euler angles is not), on the branch of the neighbouring frames."""
    from isaacgymenvs.motion.motion_lib import MotionLib

    model, sk = humanoid
    sc = make_stress_clip(sk, case, fps=10.0)  # coarse frames: the blend matters
    clip = clip_from_skeleton_motion(sc.motion, sk, model, ground="none")
    lib = MotionLib([clip], [1.0], sk, ["right_hand"], dtype=torch.float64)
    f = np.arange(1, clip.num_frames - 2)
    st = lib.get_motion_state(torch.zeros(len(f), dtype=torch.long), torch.tensor((f + 0.5) / clip.fps))
    on = lib.get_motion_state(torch.zeros(len(f), dtype=torch.long), torch.tensor(f / clip.fps))
    assert np.abs(on.dof_pos.numpy() - clip.dof_pos[f]).max() < 1e-9
    for g in ja.body_hinges(sk):
        if len(g.dofs) != 3:
            continue
        d = list(g.dofs)
        q0, q1 = chain_quat(clip.dof_pos[f][:, d], g.axes), chain_quat(clip.dof_pos[f + 1][:, d], g.axes)
        want = slerp(q0, q1, np.full(len(f), 0.5))
        assert _angle_between(chain_quat(st.dof_pos.numpy()[:, d], g.axes), want).max() < 1e-7
        # the reading is continuous with the frames: within the frames' own step of both
        step = np.abs(clip.dof_pos[f + 1][:, d] - clip.dof_pos[f][:, d]).max()
        assert np.abs(st.dof_pos.numpy()[:, d] - clip.dof_pos[f][:, d]).max() <= step + 1e-6


def test_interpolation_near_gimbal_lock_follows_the_rotation():
    """Two poses 1 degree from gimbal lock, 5.7 degrees apart: their Euler readings differ a lot in
    the outer angles, so blending the angles leaves the slerp path by 2 degrees (a third of the
    step); reading the slerped rotation back stays on it."""
    q0 = quat_mul(chain_quat(np.array([0.0, -math.radians(89), 0.0]), XYZ), chain_quat(np.array([0.05, 0, 0]), XYZ))
    q1 = quat_mul(chain_quat(np.array([0.0, -math.radians(89), 0.0]), XYZ), chain_quat(np.array([-0.05, 0, 0.0]), XYZ))
    a0, _ = decompose(quat_to_matrix(q0), XYZ)
    a1, _ = decompose(quat_to_matrix(q1), XYZ)
    a1 = a0 + (a1 - a0 + math.pi) % (2 * math.pi) - math.pi  # the nearest reading, as the clip loader keeps it
    blend = np.linspace(0, 1, 11)
    ours = interpolate_chain(np.broadcast_to(a0, (11, 3)), np.broadcast_to(a1, (11, 3)), blend, XYZ)
    want = slerp(np.broadcast_to(q0, (11, 4)), np.broadcast_to(q1, (11, 4)), blend)
    assert _angle_between(chain_quat(ours, XYZ), want).max() < 1e-9
    lerped = chain_quat(a0 + blend[:, None] * (a1 - a0), XYZ)
    assert np.degrees(_angle_between(lerped, want).max()) > 1.9  # the angle blend is off the path
    assert np.degrees(_angle_between(q0, q1)) == pytest.approx(5.73, abs=0.01)


def test_interpolate_chain_same_in_numpy_and_torch():
    rng = np.random.default_rng(3)
    a0 = rng.uniform(-1.4, 1.4, (64, 3))
    a1 = a0 + rng.normal(scale=0.3, size=(64, 3))
    b = rng.uniform(0, 1, 64)
    n = interpolate_chain(a0, a1, b, XYZ)
    t = interpolate_chain(torch.tensor(a0), torch.tensor(a1), torch.tensor(b), XYZ).numpy()
    assert np.abs(n - t).max() < 1e-12
    # at the ends: the frames themselves
    assert np.abs(interpolate_chain(a0, a1, np.zeros(64), XYZ) - a0).max() < 1e-9
    assert np.abs(interpolate_chain(a0, a1, np.ones(64), XYZ) - a1).max() < 1e-9


# ------------------------------------------------------------------ the clip checks
def test_check_names_the_joint_past_its_range(humanoid):
    """A clip whose hip is 2 pi off (the old unwrap's failure) fails the limits check, naming the
    joint, the frame and the amount; a genuine 0.2 rad excursion passes."""
    model, sk = humanoid
    clip = clip_from_skeleton_motion(make_stress_clip(sk, "hip_flex_130").motion, sk, model, ground="none")
    names = list(sk.dof_names)
    d = names.index("left_hip_x")
    dof = clip.dof_pos.copy()
    dof[20:, d] += 2 * math.pi
    rep = motion_check.limit_report(dof, sk.dof_limits.numpy(), names)
    hi = float(sk.dof_limits[d, 1])
    assert not rep["ok"] and rep["joint"] == "left_hip_x" and rep["max"] == pytest.approx(dof[:, d].max() - hi)
    assert rep["frame"] == int(np.argmax(dof[:, d]))
    line = motion_check.failure_line("clip.npy", {"limits": rep, "speeds": {"ok": True}, "step": {"ok": True}})
    assert "left_hip_x" in line and f"frame {rep['frame']}" in line and "\n" not in line
    dof = clip.dof_pos.copy()
    dof[:, names.index("neck_z")] = float(sk.dof_limits[names.index("neck_z"), 1]) + 0.22  # the hop's neck
    assert motion_check.limit_report(dof, sk.dof_limits.numpy(), names)["ok"]


def test_step_check_catches_a_state_the_physics_cannot_take(humanoid):
    """A reference state with a hip 2 pi off (the old unwrap's error, 5 rad past the range) makes the
    body run away when stepped (joints beyond 90 rad/s after one control step); the check names the frame."""
    model, sk = humanoid
    clip = clip_from_skeleton_motion(make_stress_clip(sk, "root_twist").motion, sk, model, ground="rolling_min")
    qpos, qvel = motion_check.clip_states(clip)
    good = motion_check.step_report(model, qpos, qvel, 1 / 30, sk.dof_names)
    assert good["ok"] and good["unstable_count"] == 0
    qpos[12, 7 + list(sk.dof_names).index("left_hip_x")] += 2 * math.pi
    bad = motion_check.step_report(model, qpos, qvel, 1 / 30, sk.dof_names)
    assert not bad["ok"] and bad["frame"] == 12 and bad["max"] > 3 * motion_check.MAX_STEP_SPEED
