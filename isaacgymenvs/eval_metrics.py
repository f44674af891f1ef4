"""The evaluation's numbers, defined once: the trainer's deterministic evaluation (torch, on the
training device) and sim2sim (numpy, without torch) compute them with these functions.

* ``reference_stats``: the mean and std of the reference AMP observations that standardise the
  features (the std with Bessel's correction, torch's default, for numpy too).
* ``episode_stats``: ``fall_rate`` (the share of the episodes that ended in a fall or a blow-up) and
  ``survival`` (the mean share of the episode's steps the policy stayed up).
* ``nn_dist``: the mean distance from each agent AMP observation to its nearest reference AMP
  observation, both standardised by the reference mean and std. The std is floored
  (``STD_FLOOR``): a feature that barely varies in the clip (a joint that never moves) would
  otherwise turn millimetre differences into huge distances.
* ``score``: ``survival * clip((nn_still - nn) / (nn_still - nn_ref), 0, 1)``. ``survival`` is the
  mean share of the episode length the policy stayed up; ``nn_still`` is the distance of a
  character standing still in its default pose (0 points: standing is not imitating), ``nn_ref``
  that of fresh reference samples (1 point: as close as the clip is to itself). A policy that
  stays up and moves like the clip scores near 1; one that falls at once, or stands still, near 0.
"""

from __future__ import annotations

from isaacgymenvs.utils.array_namespace import namespace

#: Floor on the reference std used to standardise features (m, rad, m/s, rad/s alike).
STD_FLOOR = 0.05


def nn_dist(agent, ref, mean, std, std_floor: float = STD_FLOOR, chunk: int = 2048):
    """Mean nearest-neighbour distance (a 0-d array or tensor) from ``agent [A, D]`` to ``ref [R, D]``."""
    xp = namespace(agent)
    if agent.shape[0] == 0 or ref.shape[0] == 0:
        raise ValueError("nn_dist needs at least one agent and one reference row")
    s = xp.clip(std, std_floor, None)
    a = (agent - mean) / s
    r = (ref - mean) / s
    r2 = (r * r).sum(-1)
    total = 0.0
    for i in range(0, a.shape[0], chunk):
        x = a[i : i + chunk]
        d2 = (x * x).sum(-1)[:, None] - 2.0 * (x @ r.T) + r2[None]
        total = total + xp.sqrt(xp.clip(xp.amin(d2, 1), 0.0, None)).sum()
    return total / a.shape[0]


def score(survival, nn, nn_still, nn_ref):
    """See the module docstring; plain floats (or arrays) in, the same out."""
    span = nn_still - nn_ref
    if not span > 0:  # a clip that is its own standing pose: imitation cannot be told from standing
        return survival * 0.0
    closeness = (nn_still - nn) / span
    closeness = (
        min(max(closeness, 0.0), 1.0)
        if isinstance(closeness, float)
        else namespace(closeness).clip(closeness, 0.0, 1.0)
    )
    return survival * closeness


def reference_stats(ref):
    """``(mean [D], std [D])`` of the reference AMP observations ``ref [R, D]`` (std with Bessel's
    correction, as torch's ``Tensor.std`` and the trainer's evaluation take it)."""
    mean = ref.mean(0)
    n = ref.shape[0]
    var = ((ref - mean) ** 2).sum(0) / max(n - 1, 1)
    return mean, namespace(ref).sqrt(var)


def episode_stats(fell, steps, episode_steps: int) -> tuple[float, float]:
    """``(fall_rate, survival)`` of episodes that fell (``fell [E]`` bool) after ``steps [E]`` control
    steps, out of ``episode_steps`` (the episode length minus one: where the task truncates)."""
    return float((fell * 1.0).mean()), float((steps * 1.0 / episode_steps).mean())
