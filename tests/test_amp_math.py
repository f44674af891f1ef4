"""Hand-computed checks of isaacgymenvs/learning/amp_math.py."""

import math

import pytest
import torch

from isaacgymenvs.learning.amp_math import (
    bound_loss,
    combine_rewards,
    disc_accuracy,
    disc_bce_loss,
    disc_grad_penalty,
    disc_logit_reg,
    disc_reward,
    disc_weight_decay,
    gae,
    motion_nn_dist,
)

LN3 = math.log(3.0)  # sigmoid(ln 3) = 3 / (3 + 1) = 0.75


def t(x, **kw):
    return torch.tensor(x, dtype=torch.float64, **kw)


def close(a, b, tol=1e-6):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return torch.allclose(a, b, atol=tol, rtol=0)


# ---------------------------------------------------------------- disc_bce_loss
def test_disc_bce_loss_by_hand():
    # agent label 0: bce = -log(1 - sigmoid(x))
    #   x = 0    -> -log(0.5)  = ln 2            = 0.693147
    #   x = ln 3 -> -log(0.25) = 2 ln 2          = 1.386294
    #   mean_agent = 1.5 ln 2                    = 1.039721
    # demo label 1: bce = -log(sigmoid(x))
    #   x = ln 3 -> -log(0.75) = ln 4 - ln 3     = 0.287682
    # loss = 0.5 * (1.039721 + 0.287682)         = 0.663701
    agent = t([[0.0], [LN3]])
    demo = t([[LN3]])
    expected = 0.5 * (1.5 * math.log(2) + math.log(4 / 3))
    assert abs(expected - 0.663701) < 1e-6
    assert close(disc_bce_loss(agent, demo), expected)


def test_disc_bce_loss_zero_logits_is_ln2():
    # every logit 0 -> every bce is ln 2, whatever the batch sizes
    loss = disc_bce_loss(torch.zeros(5, 1), torch.zeros(3, 1))
    assert close(loss, math.log(2))


def test_disc_bce_loss_empty_raises():
    with pytest.raises(ValueError, match="agent_logits"):
        disc_bce_loss(torch.zeros(0, 1), torch.zeros(3, 1))


# ---------------------------------------------------------------- regularisers
def test_disc_logit_reg_sum_of_squares():
    # 1 + 4 + 9 + 1 = 15
    assert close(disc_logit_reg(t([[1.0, 2.0], [3.0, -1.0]])), 15.0)


def test_disc_weight_decay_sums_all_tensors():
    # 15 (as above) + 0.5^2 = 15.25
    w = [t([[1.0, 2.0], [3.0, -1.0]]), t([[0.5]])]
    assert close(disc_weight_decay(w), 15.25)


def test_disc_weight_decay_empty_raises():
    with pytest.raises(ValueError):
        disc_weight_decay([])


# ---------------------------------------------------------------- grad penalty
def test_grad_penalty_linear_disc_is_w_norm_squared():
    # logit_b = w . x_b  ->  d logit_b / d x_b = w for every b
    # penalty = mean_b ||w||^2 = 1 + 4 + 4 = 9 (w = [1, -2, 2])
    w = t([1.0, -2.0, 2.0], requires_grad=True)
    obs = t([[0.1, 0.2, 0.3], [-1.0, 4.0, 2.0]], requires_grad=True)
    logits = (obs @ w).unsqueeze(-1)  # [2, 1]
    gp = disc_grad_penalty(logits, obs)
    assert close(gp, 9.0)
    # create_graph=True: gp = ||w||^2 can be backpropagated, d gp / d w = 2 w
    gp.backward()
    assert close(w.grad, [2.0, -4.0, 4.0])


def test_grad_penalty_quadratic_disc_per_sample():
    # logit_b = sum(x_b^2) -> grad = 2 x_b, ||grad||^2 = 4 ||x_b||^2
    # x = [[1, 0], [1, 1]] -> 4 * 1 = 4 and 4 * 2 = 8 -> mean 6
    obs = t([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    logits = (obs**2).sum(-1, keepdim=True)
    assert close(disc_grad_penalty(logits, obs), 6.0)


def test_grad_penalty_requires_grad_and_matching_batch():
    obs = torch.ones(2, 3)
    with pytest.raises(ValueError, match="requires_grad"):
        disc_grad_penalty(obs.sum(-1, keepdim=True), obs)
    obs = torch.ones(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="batch sizes"):
        disc_grad_penalty(obs.sum().reshape(1, 1), obs)


# ---------------------------------------------------------------- accuracy
def test_disc_accuracy_by_hand():
    # agent: -1 < 0 yes, 2 no, -3 yes, 0 no (not strictly < 0) -> 2/4 = 0.5
    # demo:   1 > 0 yes, -1 no, 0.5 yes                         -> 2/3
    agent_acc, demo_acc = disc_accuracy(t([[-1.0], [2.0], [-3.0], [0.0]]), t([[1.0], [-1.0], [0.5]]))
    assert close(agent_acc, 0.5)
    assert close(demo_acc, 2 / 3)


# ---------------------------------------------------------------- disc_reward
def test_disc_reward_bce_by_hand():
    # scale = 2
    #   logit 0    : 1 - sigmoid(0)    = 0.5  -> -log(0.5)  * 2 = 1.386294
    #   logit ln 3 : 1 - 0.75          = 0.25 -> -log(0.25) * 2 = 2.772589
    #   logit 20   : 1 - sigmoid(20) ~ 2e-9 < 1e-4, clamped -> -log(1e-4) * 2 = 18.420681
    r = disc_reward(t([[0.0], [LN3], [20.0]]), scale=2.0, kind="bce")
    assert r.shape == (3, 1)
    assert close(r, [[1.386294], [2.772589], [18.420681]])


def test_disc_reward_bce_is_default_kind():
    x = t([[0.3], [-1.2]])
    assert torch.equal(disc_reward(x, 2.0), disc_reward(x, 2.0, kind="bce"))


def test_disc_reward_lsgan_by_hand():
    # max(0, 1 - 0.25 (x - 1)^2) * 2
    #   x =  1 : 1 - 0           = 1    -> 2   (= scale)
    #   x =  3 : 1 - 0.25 * 4    = 0    -> 0
    #   x =  0 : 1 - 0.25 * 1    = 0.75 -> 1.5
    #   x = -1 : 1 - 0.25 * 4    = 0    -> 0
    #   x =  5 : 1 - 0.25 * 16   = -3   -> clamped to 0
    r = disc_reward(t([1.0, 3.0, 0.0, -1.0, 5.0]), scale=2.0, kind="lsgan")
    assert close(r, [2.0, 0.0, 1.5, 0.0, 0.0])


@pytest.mark.parametrize("kind", ["bce", "lsgan"])
def test_disc_reward_has_no_grad(kind):
    logits = torch.zeros(4, 1, requires_grad=True)
    assert not disc_reward(logits, 1.0, kind=kind).requires_grad


def test_disc_reward_unknown_kind_names_allowed_values():
    with pytest.raises(ValueError, match="bce.*lsgan"):
        disc_reward(torch.zeros(2, 1), 1.0, kind="wgan")


# ---------------------------------------------------------------- bound_loss
def test_bound_loss_by_hand():
    # mu = [1.5, -2.0, 0.3], soft bound 1:
    #   1.5  -> (1.5 - 1)^2  = 0.25
    #   -2.0 -> (-2.0 + 1)^2 = 1.0
    #   0.3  -> inside       = 0
    # sum = 1.25; second sample all zeros -> 0; batch mean = 0.625
    assert close(bound_loss(t([[1.5, -2.0, 0.3]])), 1.25)
    assert close(bound_loss(t([[1.5, -2.0, 0.3], [0.0, 0.0, 0.0]])), 0.625)


def test_bound_loss_custom_bound():
    # soft bound 2: 1.5 inside, -2.0 on the edge -> 0; 3.0 -> (3 - 2)^2 = 1
    assert close(bound_loss(t([[1.5, -2.0, 3.0]]), soft_bound=2.0), 1.0)


# ---------------------------------------------------------------- gae
# 3 steps, 1 env, gamma = 0.9, lam = 0.5 (gamma * lam = 0.45)
# rewards = [1, 2, 3], values = [0.5, 1.0, 1.5]
R = [1.0, 2.0, 3.0]
V = [0.5, 1.0, 1.5]


def col(x):
    return t(x).unsqueeze(-1)  # [T] -> [T, 1]


def test_gae_termination_by_hand():
    # episode terminates at step 1 (no bootstrap): next_values[1] = 9 is junk,
    # the reset state's value, and must be ignored.
    # delta_2 = 3 + 0.9 * 2.0 - 1.5          = 3.3     A_2 = 3.3
    # delta_1 = 2 + 0.9 * 0 * 9.0 - 1.0      = 1.0     A_1 = 1.0 + 0.45 * 0 * 3.3 = 1.0
    # delta_0 = 1 + 0.9 * 1.0 - 0.5          = 1.4     A_0 = 1.4 + 0.45 * 1.0      = 1.85
    # returns = A + V = [2.35, 2.0, 4.8]
    adv, ret = gae(col(R), col(V), col([1.0, 9.0, 2.0]), col([0, 1, 0]), col([0, 1, 0]), 0.9, 0.5)
    assert close(adv, col([1.85, 1.0, 3.3]))
    assert close(ret, col([2.35, 2.0, 4.8]))


def test_gae_timeout_by_hand():
    # episode times out at step 1: next_values[1] = 4.0 is the bootstrap value
    # of the truncated final state and IS used; the recursion still stops.
    # delta_2 = 3.3                              A_2 = 3.3
    # delta_1 = 2 + 0.9 * 4.0 - 1.0 = 4.6        A_1 = 4.6 + 0.45 * 0 * 3.3 = 4.6
    # delta_0 = 1.4                              A_0 = 1.4 + 0.45 * 4.6     = 3.47
    # returns = [3.97, 5.6, 4.8]
    adv, ret = gae(col(R), col(V), col([1.0, 4.0, 2.0]), col([0, 0, 0]), col([0, 1, 0]), 0.9, 0.5)
    assert close(adv, col([3.47, 4.6, 3.3]))
    assert close(ret, col([3.97, 5.6, 4.8]))


def test_gae_envs_are_independent():
    # the two cases above side by side as N = 2 give the same columns
    rewards = torch.cat([col(R), col(R)], 1)
    values = torch.cat([col(V), col(V)], 1)
    next_values = torch.cat([col([1.0, 9.0, 2.0]), col([1.0, 4.0, 2.0])], 1)
    terminated = torch.cat([col([0, 1, 0]), col([0, 0, 0])], 1)
    dones = torch.cat([col([0, 1, 0]), col([0, 1, 0])], 1)
    adv, _ = gae(rewards, values, next_values, terminated, dones, 0.9, 0.5)
    assert close(adv, [[1.85, 3.47], [1.0, 4.6], [3.3, 3.3]])


def test_gae_no_done_lam1_is_discounted_return_minus_value():
    # lam = 1, no episode end: A_0 + V_0 = r0 + g r1 + g^2 r2 + g^3 next_v2
    #   = 1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 2.0 = 1 + 1.8 + 2.43 + 1.458 = 6.688
    _, ret = gae(col(R), col(V), col([1.0, 1.5, 2.0]), col([0, 0, 0]), col([0, 0, 0]), 0.9, 1.0)
    assert close(ret[0], [6.688])


def test_gae_shape_mismatch_raises():
    ok = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="dones"):
        gae(ok, ok, ok, ok, torch.zeros(3, 1), 0.9, 0.95)
    with pytest.raises(ValueError, match=r"\[T, N\]"):
        z = torch.zeros(3)
        gae(z, z, z, z, z, 0.9, 0.95)


# ---------------------------------------------------------------- combine_rewards
def test_combine_rewards_by_hand():
    # 0.5 * [1, 2] + 0.25 * [4, 8] = [0.5 + 1, 1 + 2] = [1.5, 3]
    assert close(combine_rewards(t([1.0, 2.0]), t([4.0, 8.0]), 0.5, 0.25), [1.5, 3.0])


def test_combine_rewards_shape_mismatch_raises():
    # [N] vs [N, 1] would broadcast to [N, N]
    with pytest.raises(ValueError, match="shapes differ"):
        combine_rewards(torch.zeros(4), torch.zeros(4, 1), 0.5, 0.5)


# ---------------------------------------------------------------- motion_nn_dist
def test_motion_nn_dist_identity_stats():
    # agent [0,0] -> nearest ref [0,0] at 0; agent [3,4] -> nearest ref [0,0] at 5
    # ([10,10] is sqrt(49 + 36) = 9.2 away); mean = (0 + 5) / 2 = 2.5
    agent = t([[0.0, 0.0], [3.0, 4.0]])
    ref = t([[0.0, 0.0], [10.0, 10.0]])
    mean, std = t([0.0, 0.0]), t([1.0, 1.0])
    assert close(motion_nn_dist(agent, ref, mean, std), 2.5)


@pytest.mark.parametrize("chunk", [1, 2, 3, 4096])
def test_motion_nn_dist_chunking_does_not_change_result(chunk):
    # 1-D points: agent {0, 1, 7}, ref {0.5, 6, 10}
    #   0 -> 0.5 (0.5), 1 -> 0.5 (0.5), 7 -> 6 (1) ; mean = 2 / 3
    agent = t([[0.0], [1.0], [7.0]])
    ref = t([[10.0], [0.5], [6.0]])
    assert close(motion_nn_dist(agent, ref, t([0.0]), t([1.0]), chunk=chunk), 2 / 3)


def test_motion_nn_dist_standardises_with_ref_stats():
    # mean [1, 1], std [2, 2]: agent [[1,1],[7,9]] -> [[0,0],[3,4]],
    # ref [[1,1],[21,21]] -> [[0,0],[10,10]]; same as the identity case: 2.5
    agent = t([[1.0, 1.0], [7.0, 9.0]])
    ref = t([[1.0, 1.0], [21.0, 21.0]])
    assert close(motion_nn_dist(agent, ref, t([1.0, 1.0]), t([2.0, 2.0])), 2.5)


def test_motion_nn_dist_clamps_zero_std():
    # std 0 -> 1e-6: agent 0 -> 0, ref 1e-6 -> 1e-6 / 1e-6 = 1; distance 1
    assert close(motion_nn_dist(t([[0.0]]), t([[1e-6]]), t([0.0]), t([0.0])), 1.0)


def test_motion_nn_dist_bad_shapes_raise():
    with pytest.raises(ValueError, match="feature sizes"):
        motion_nn_dist(torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="ref_mean"):
        motion_nn_dist(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="2-D"):
        motion_nn_dist(torch.zeros(2), torch.zeros(2, 2), torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="ref_obs is empty"):
        motion_nn_dist(torch.zeros(2, 2), torch.zeros(0, 2), torch.zeros(2), torch.ones(2))
