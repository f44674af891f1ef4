"""Pure-torch math for AMP (Adversarial Motion Priors) training.

Every function here is stateless and free of rl_games, so it can be unit
tested on tiny hand-computed tensors. The agent (``amp_continuous``) wires them
together; the losses follow IsaacGymEnvs' ``AMPAgent`` unless stated otherwise.

Shape conventions used in the docstrings:
    B  batch of discriminator samples (agent or demo), may differ per argument
    D  feature size of one AMP observation
    A  action size
    T  rollout horizon, N number of parallel environments
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from isaacgymenvs import eval_metrics

REWARD_KINDS = ("bce", "lsgan")
"""Allowed values of ``disc_reward(kind=...)``."""

_MIN_PROB = 1e-4
"""Floor on ``1 - sigmoid(logit)`` in the "bce" reward (IsaacGymEnvs' 0.0001),
so a very confident discriminator gives at most ``-log(1e-4) = 9.21`` per step
(before ``scale``) instead of an unbounded reward."""

_MIN_STD = 1e-6
"""Floor on the reference standard deviation in ``motion_nn_dist`` so constant
features do not divide by zero."""


# ----------------------------------------------------------------------------
# discriminator losses
# ----------------------------------------------------------------------------
def disc_bce_loss(agent_logits: torch.Tensor, demo_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy loss of the discriminator.

    The agent's transitions are labelled 0 (fake) and the demo's 1 (real); the
    two means are averaged so each side weighs half regardless of batch size.

    Args:
        agent_logits: [B_agent, 1] (or [B_agent]) logits of agent transitions,
            i.e. the concatenation of current-rollout and replay-buffer logits.
        demo_logits: [B_demo, 1] (or [B_demo]) logits of demo transitions.

    Returns:
        Scalar tensor ``0.5 * (mean_bce_agent + mean_bce_demo)``.
    """
    _check_nonempty(agent_logits, "agent_logits")
    _check_nonempty(demo_logits, "demo_logits")
    loss_agent = F.binary_cross_entropy_with_logits(agent_logits, torch.zeros_like(agent_logits))
    loss_demo = F.binary_cross_entropy_with_logits(demo_logits, torch.ones_like(demo_logits))
    return 0.5 * (loss_agent + loss_demo)


def disc_logit_reg(logit_weight: torch.Tensor) -> torch.Tensor:
    """L2 penalty on the final (logit) layer of the discriminator.

    Args:
        logit_weight: weight of the last linear layer, e.g. [1, H].

    Returns:
        Scalar tensor, the sum of squares of ``logit_weight`` (multiply by
        ``disc_logit_reg`` coefficient in the caller).
    """
    return torch.sum(torch.square(logit_weight))


def disc_grad_penalty(demo_logits: torch.Tensor, demo_obs: torch.Tensor) -> torch.Tensor:
    """Gradient penalty on demo samples (AMP paper eq. 8, without the w_gp/2).

    Computes ``mean_b || d logit_b / d demo_obs_b ||^2``. The gradient is built
    with ``create_graph=True`` so the penalty can itself be backpropagated into
    the discriminator's parameters.

    Args:
        demo_logits: [B, 1] (or [B]) logits computed from ``demo_obs``.
        demo_obs: [B, D] (or [B, ...]) demo observations with
            ``requires_grad=True`` that ``demo_logits`` was computed from.

    Returns:
        Scalar tensor, the batch mean of the squared L2 gradient norm.
    """
    if not demo_obs.requires_grad:
        raise ValueError("disc_grad_penalty: demo_obs must have requires_grad=True")
    if demo_logits.shape[0] != demo_obs.shape[0]:
        raise ValueError(
            f"disc_grad_penalty: batch sizes differ, demo_logits {tuple(demo_logits.shape)} "
            f"vs demo_obs {tuple(demo_obs.shape)}"
        )
    (grad,) = torch.autograd.grad(
        outputs=demo_logits,
        inputs=demo_obs,
        grad_outputs=torch.ones_like(demo_logits),
        create_graph=True,
        retain_graph=True,
    )
    # Each sample's logit depends only on its own row, so the gradient of the
    # summed logits, row by row, is the per-sample gradient.
    per_sample = torch.sum(torch.square(grad.flatten(start_dim=1)), dim=-1)
    return torch.mean(per_sample)


def disc_weight_decay(weights: list[torch.Tensor]) -> torch.Tensor:
    """L2 weight decay over the discriminator's weights.

    Args:
        weights: list of weight tensors of any shapes (typically the MLP's and
            the logit layer's weights, not biases).

    Returns:
        Scalar tensor, the sum of squares of all entries of all tensors.
    """
    if len(weights) == 0:
        raise ValueError("disc_weight_decay: weights is empty")
    return torch.stack([torch.sum(torch.square(w)) for w in weights]).sum()


def disc_accuracy(agent_logits: torch.Tensor, demo_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """How often the discriminator classifies correctly (a diagnostic).

    Args:
        agent_logits: [B_agent, 1] (or any shape) logits of agent samples.
        demo_logits: [B_demo, 1] (or any shape) logits of demo samples.

    Returns:
        ``(agent_acc, demo_acc)`` scalar tensors: the share of agent logits
        ``< 0`` and the share of demo logits ``> 0``.
    """
    _check_nonempty(agent_logits, "agent_logits")
    _check_nonempty(demo_logits, "demo_logits")
    with torch.no_grad():
        agent_acc = (agent_logits < 0).float().mean()
        demo_acc = (demo_logits > 0).float().mean()
    return agent_acc, demo_acc


# ----------------------------------------------------------------------------
# rewards and policy regularisers
# ----------------------------------------------------------------------------
def disc_reward(logits: torch.Tensor, scale: float, kind: str = "bce") -> torch.Tensor:
    """Style reward from discriminator logits (no gradient).

    Args:
        logits: [...] discriminator logits of agent transitions, e.g. [T*N, 1].
        scale: multiplier of the reward (``disc_reward_scale``, 2.0 in
            IsaacGymEnvs' humanoid AMP configs).
        kind: "bce" for IsaacGymEnvs' form
            ``-log(max(1 - sigmoid(logit), 1e-4)) * scale``, or "lsgan" for the
            AMP paper's least-squares form
            ``max(0, 1 - 0.25 * (logit - 1)^2) * scale``.

    Returns:
        Tensor with the shape of ``logits``, detached from the graph.
    """
    if kind not in REWARD_KINDS:
        raise ValueError(f"disc_reward: unknown kind {kind!r}, allowed values are {REWARD_KINDS}")
    with torch.no_grad():
        if kind == "bce":
            # 1 - sigmoid(x) == sigmoid(-x), which does not round to 0 as early.
            prob_fake = torch.sigmoid(-logits)
            reward = -torch.log(torch.clamp(prob_fake, min=_MIN_PROB))
        else:
            reward = torch.clamp(1.0 - 0.25 * torch.square(logits - 1.0), min=0.0)
        return reward * scale


def bound_loss_per_sample(mu: torch.Tensor, soft_bound: float = 1.0) -> torch.Tensor:
    """``[B, A] -> [B]``: the per-sample sum of :func:`bound_loss` (before the batch mean)."""
    high = torch.clamp(mu - soft_bound, min=0.0) ** 2
    low = torch.clamp(mu + soft_bound, max=0.0) ** 2
    return torch.sum(high + low, dim=-1)


def bound_loss(mu: torch.Tensor, soft_bound: float = 1.0) -> torch.Tensor:
    """Quadratic penalty on action means outside ``[-soft_bound, soft_bound]``.

    Args:
        mu: [B, A] policy action means.
        soft_bound: half-width of the penalty-free box (1.0 in IsaacGymEnvs).

    Returns:
        Scalar tensor: per sample the sum over A of
        ``clamp(mu - soft_bound, min=0)^2 + clamp(mu + soft_bound, max=0)^2``,
        then the mean over B.
    """
    return torch.mean(bound_loss_per_sample(mu, soft_bound))


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation that separates termination from time-out.

    All tensors are [T, N]:
        rewards[t]: reward of step t.
        values[t]: V(s_t).
        next_values[t]: V of the state after step t; for a time-out this is
            already the bootstrap value of the truncated final state.
        terminated[t]: 1.0 when step t ended the episode by early termination
            (no bootstrap), else 0.0.
        dones[t]: 1.0 when the episode ended at step t for any reason
            (termination or time-out); stops the advantage recursion.

    Args:
        gamma: discount factor.
        lam: GAE lambda, trading bias (0) against variance (1).

    Returns:
        ``(advantages, returns)``, both [T, N], with ``returns = advantages + values``:
            delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t
            A_t = delta_t + gamma * lam * (1 - dones_t) * A_{t+1}
    """
    shape = rewards.shape
    if rewards.dim() != 2:
        raise ValueError(f"gae: expected [T, N] tensors, got rewards of shape {tuple(shape)}")
    for name, x in (("values", values), ("next_values", next_values), ("terminated", terminated), ("dones", dones)):
        if x.shape != shape:
            raise ValueError(f"gae: {name} has shape {tuple(x.shape)}, expected {tuple(shape)} like rewards")

    not_terminated = 1.0 - terminated.to(values.dtype)
    not_done = 1.0 - dones.to(values.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    advantages = torch.zeros_like(values)
    last_adv = torch.zeros_like(values[0])
    for t in reversed(range(shape[0])):
        last_adv = deltas[t] + gamma * lam * not_done[t] * last_adv
        advantages[t] = last_adv
    return advantages, advantages + values


def combine_rewards(task_reward: torch.Tensor, disc_reward: torch.Tensor, task_w: float, disc_w: float) -> torch.Tensor:
    """Weighted sum ``task_w * task_reward + disc_w * disc_reward``.

    Args:
        task_reward: [...] environment (task) reward.
        disc_reward: same shape, style reward from ``disc_reward()``.
        task_w: weight of the task reward (``task_reward_w``).
        disc_w: weight of the style reward (``disc_reward_w``).

    Shapes must match exactly: [N] vs [N, 1] would otherwise broadcast to
    [N, N] silently.
    """
    if task_reward.shape != disc_reward.shape:
        raise ValueError(
            f"combine_rewards: shapes differ, task_reward {tuple(task_reward.shape)} "
            f"vs disc_reward {tuple(disc_reward.shape)}"
        )
    return task_w * task_reward + disc_w * disc_reward


# ----------------------------------------------------------------------------
# evaluation metric
# ----------------------------------------------------------------------------
def motion_nn_dist(
    agent_obs: torch.Tensor,
    ref_obs: torch.Tensor,
    ref_mean: torch.Tensor,
    ref_std: torch.Tensor,
    chunk: int = 4096,
) -> torch.Tensor:
    """Mean nearest-neighbour distance from agent motion to reference motion.

    Both sets are standardised with the reference statistics,
    ``(x - ref_mean) / max(ref_std, 1e-6)``; then for each agent row the
    Euclidean distance to the closest reference row is taken, and averaged.

    Args:
        agent_obs: [B_agent, D] agent AMP observations.
        ref_obs: [B_ref, D] reference (demo) AMP observations.
        ref_mean: [D] per-feature mean of the reference.
        ref_std: [D] per-feature standard deviation of the reference.
        chunk: rows per block of both sets; ``torch.cdist`` only ever sees a
            [chunk, chunk] block, so memory stays bounded for large sets.

    Returns:
        Scalar tensor (no gradient).
    """
    if agent_obs.dim() != 2 or ref_obs.dim() != 2:
        raise ValueError(
            f"motion_nn_dist: expected 2-D tensors, got agent_obs {tuple(agent_obs.shape)} "
            f"and ref_obs {tuple(ref_obs.shape)}"
        )
    dim = ref_obs.shape[1]
    if agent_obs.shape[1] != dim:
        raise ValueError(f"motion_nn_dist: feature sizes differ, agent {agent_obs.shape[1]} vs ref {dim}")
    if ref_mean.shape != (dim,) or ref_std.shape != (dim,):
        raise ValueError(
            f"motion_nn_dist: ref_mean {tuple(ref_mean.shape)} and ref_std {tuple(ref_std.shape)} must both be ({dim},)"
        )
    _check_nonempty(agent_obs, "agent_obs")
    _check_nonempty(ref_obs, "ref_obs")
    if chunk < 1:
        raise ValueError(f"motion_nn_dist: chunk must be >= 1, got {chunk}")

    with torch.no_grad():  # one implementation with the evaluation and sim2sim (eval_metrics.nn_dist)
        return eval_metrics.nn_dist(agent_obs, ref_obs, ref_mean, ref_std, std_floor=_MIN_STD, chunk=chunk)


def _check_nonempty(x: torch.Tensor, name: str) -> None:
    if x.numel() == 0:
        raise ValueError(f"{name} is empty")
