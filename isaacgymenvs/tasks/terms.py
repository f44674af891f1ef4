"""The deployed step, written once: observation blocks, AMP observation history, PD targets from
actions, fall test and episode end, as pure functions of numpy arrays **or** torch tensors.

The trainer (``amp_task.AMPTask``) runs them on torch tensors, on the GPU and inside captured CUDA
graphs; sim2sim runs the very same functions on numpy arrays read from one ``MjData``, without
torch (this module imports neither torch nor anything that does). The namespace comes from the
inputs (``isaacgymenvs.utils.array_namespace``): no host synchronization, no Python branch on an
array's value, constants made once per device.

Shapes: ``N`` environments, ``D`` hinge DoFs, ``K`` key bodies, ``B`` bodies, ``k`` AMP steps.
Quaternions wxyz.

**The observation is a named layout**: an ordered list of ``(block name, size)``
(:func:`obs_layout`), which the trainer uses to build its observation and export writes into
``policy.json`` (``observation.layout``: ``[{"name": ..., "size": ...}, ...]``); sim2sim builds its
observation by walking that list (:func:`layout_from_json`, :func:`check_layout`,
:func:`observation`), so training and deployment cannot disagree on the order. The blocks
(:data:`OBS_BLOCKS`), in the default (IsaacGymEnvs) order, 105 numbers for the AMP humanoid:

=============================  ====  ==========================================================
root_height                      1   root z
root_rot_tan_norm                6   tangent/normal of the root orientation, world frame
root_rot_tan_norm_heading        6   the same in the heading frame (``localRootObs``; replaces it)
root_lin_vel_heading             3   root linear velocity in the heading frame
root_ang_vel_heading             3   root angular velocity in the heading frame
dof_pos_obs                     52   3-DoF joints as tangent/normal (8 x 6), hinges as angles (4)
dof_vel                         28   hinge velocities
key_body_pos_heading            12   key bodies relative to the root, in the heading frame
=============================  ====  ==========================================================

The AMP observation of one step is that observation; the agent's AMP observation is the history
of the last ``k`` steps, **newest first** (:func:`push_history`, :func:`amp_windows`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from isaacgymenvs.utils import quaternions as qt
from isaacgymenvs.utils.array_namespace import arange_like, as_kind, constant, namespace, to_numpy


class LayoutError(ValueError):
    """An observation layout that cannot be built (unknown block, wrong size): one line."""


# ------------------------------------------------------------------ joints


@dataclass(frozen=True)
class JointGroup:
    """The hinges of one body: ``dofs`` (indices into DoF order) and their axes ``[len, 3]``."""

    body: str
    dofs: tuple[int, ...]
    axes: tuple[tuple[float, ...], ...]


def joint_groups(skeleton) -> list[JointGroup]:
    """Group the hinge DoFs by the body they move, in DoF order (a torch ``Skeleton`` or any
    description with ``body_names``, ``dof_body`` and ``dof_axis``, e.g. sim2sim's numpy one)."""
    groups: dict[int, list[int]] = {}
    for d, b in enumerate(skeleton.dof_body):
        groups.setdefault(int(b), []).append(d)
    axes = [[float(x) for x in a] for a in skeleton.dof_axis.tolist()]
    out = [JointGroup(skeleton.body_names[b], tuple(ds), tuple(tuple(axes[d]) for d in ds)) for b, ds in groups.items()]
    return sorted(out, key=lambda g: g.dofs[0])


def dof_obs_size(groups) -> int:
    return sum(6 if len(g.dofs) == 3 else len(g.dofs) for g in groups)


def _dof_obs_tables(groups: tuple) -> dict:
    """Batched form of the groups (numpy): 3-hinge joints ``[G, 3]`` with their axes ``[G, 3, 3]``,
    the single hinges, and the order that puts the pieces back in group order."""
    tri = [g for g in groups if len(g.dofs) == 3]
    single = [d for g in groups if len(g.dofs) != 3 for d in g.dofs]
    order, t, s, n_tri = [], 0, 0, 6 * len(tri)
    for g in groups:
        if len(g.dofs) == 3:
            order += list(range(6 * t, 6 * t + 6))
            t += 1
        else:
            order += list(range(n_tri + s, n_tri + s + len(g.dofs)))
            s += len(g.dofs)
    return {
        "tri_idx": np.array([g.dofs for g in tri], dtype=np.int64).reshape(-1, 3),
        "tri_axes": np.array([g.axes for g in tri], dtype=np.float64).reshape(-1, 3, 3),
        "single": np.array(single, dtype=np.int64),
        "order": np.array(order, dtype=np.int64),
    }


def dof_to_obs(dof_pos, groups):
    """``[N, D] -> [N, dof_obs_size]``: a 3-hinge joint becomes the tangent/normal of its rotation,
    a single hinge stays an angle."""
    xp = namespace(dof_pos)
    groups = tuple(groups)

    def tab(name, index):
        return constant(("dof_obs", groups, name), lambda: _dof_obs_tables(groups)[name], dof_pos, index=index)

    tri_idx, single, order = tab("tri_idx", True), tab("single", True), tab("order", True)
    N = dof_pos.shape[0]
    parts = []
    if tri_idx.shape[0]:
        q = qt.quat_from_axis_angle(tab("tri_axes", False), dof_pos[:, tri_idx])  # [N, G, 3, 4]
        joint = qt.quat_mul(qt.quat_mul(q[:, :, 0], q[:, :, 1]), q[:, :, 2])
        parts.append(qt.quat_to_tan_norm(joint).reshape(N, -1))
    if single.shape[0]:
        parts.append(dof_pos[:, single])
    return xp.concat(parts, axis=-1)[:, order]


# ------------------------------------------------------------------ observation


class CharacterState(NamedTuple):
    """What the observation is made of, batch first ``[N, ...]``, world frame, quaternion wxyz.
    The trainer fills it from its simulator or its MotionLib, sim2sim from one ``MjData``."""

    root_pos_w: Any  # [N, 3]
    root_quat_w: Any  # [N, 4] wxyz
    root_lin_vel_w: Any  # [N, 3]
    root_ang_vel_w: Any  # [N, 3] (world frame, not MuJoCo's body-frame qvel)
    dof_pos: Any  # [N, D]
    dof_vel: Any  # [N, D]
    key_body_pos_w: Any  # [N, K, 3]


@dataclass(frozen=True)
class ObsBlock:
    """One named piece of the observation: its size from ``(groups, num_dof, num_key_bodies)``,
    and its value ``[N, size]`` from ``(state, heading_inv [N, 4], groups)``."""

    size: Callable[[tuple, int, int], int]
    compute: Callable[[CharacterState, Any, tuple], Any]
    doc: str


def _key_bodies_heading(s: CharacterState, hinv, groups):
    rel = s.key_body_pos_w - s.root_pos_w[:, None, :]
    return qt.quat_rotate(hinv[:, None, :], rel).reshape(rel.shape[0], 3 * rel.shape[1])


#: Every observation block a layout may name (see the module docstring).
OBS_BLOCKS: dict[str, ObsBlock] = {
    "root_height": ObsBlock(lambda g, d, k: 1, lambda s, h, g: s.root_pos_w[:, 2:3], "root z (m)"),
    "root_rot_tan_norm": ObsBlock(
        lambda g, d, k: 6,
        lambda s, h, g: qt.quat_to_tan_norm(s.root_quat_w),
        "root orientation, world frame, as tangent/normal",
    ),
    "root_rot_tan_norm_heading": ObsBlock(
        lambda g, d, k: 6,
        lambda s, h, g: qt.quat_to_tan_norm(qt.quat_mul(h, s.root_quat_w)),
        "root orientation in the heading frame, as tangent/normal",
    ),
    "root_lin_vel_heading": ObsBlock(
        lambda g, d, k: 3,
        lambda s, h, g: qt.quat_rotate(h, s.root_lin_vel_w),
        "root linear velocity, heading frame (m/s)",
    ),
    "root_ang_vel_heading": ObsBlock(
        lambda g, d, k: 3,
        lambda s, h, g: qt.quat_rotate(h, s.root_ang_vel_w),
        "root angular velocity, heading frame (rad/s)",
    ),
    "dof_pos_obs": ObsBlock(
        lambda g, d, k: dof_obs_size(g),
        lambda s, h, g: dof_to_obs(s.dof_pos, g),
        "3-DoF joints as tangent/normal, single hinges as angles (rad)",
    ),
    "dof_vel": ObsBlock(lambda g, d, k: d, lambda s, h, g: s.dof_vel, "hinge velocities (rad/s)"),
    "key_body_pos_heading": ObsBlock(
        lambda g, d, k: 3 * k, _key_bodies_heading, "key bodies relative to the root, heading frame (m)"
    ),
}


def obs_layout(groups, num_dof: int, num_key_bodies: int, local_root_obs: bool = False) -> list[tuple[str, int]]:
    """The observation's ``(block name, size)`` list, in order (IsaacGymEnvs' order)."""
    names = (
        "root_height",
        "root_rot_tan_norm_heading" if local_root_obs else "root_rot_tan_norm",
        "root_lin_vel_heading",
        "root_ang_vel_heading",
        "dof_pos_obs",
        "dof_vel",
        "key_body_pos_heading",
    )
    return [(n, OBS_BLOCKS[n].size(tuple(groups), num_dof, num_key_bodies)) for n in names]


def layout_to_json(layout) -> list[dict]:
    """What ``policy.json`` holds under ``observation.layout``."""
    return [{"name": n, "size": int(s)} for n, s in layout]


def layout_from_json(entries, local_root_obs: bool = False) -> list[tuple[str, int]]:
    """The layout ``policy.json`` carries (``[{"name", "size"}, ...]``) as ``(name, size)`` pairs;
    a block this version does not know is a :class:`LayoutError` naming it. ``local_root_obs``:
    exports written before the root-rotation block named its frame called the heading-frame block
    ``root_rot_tan_norm`` and set ``observation.local_root_obs``."""
    if not isinstance(entries, list) or not entries:
        raise LayoutError(f"the observation layout must be a non-empty list of {{name, size}}, got {entries!r}")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not isinstance(e.get("size"), int):
            raise LayoutError(f'observation layout entry {i} must be {{"name": str, "size": int}}, got {e!r}')
        name = e["name"]
        if name == "root_rot_tan_norm" and local_root_obs:
            name = "root_rot_tan_norm_heading"
        if name not in OBS_BLOCKS:
            raise LayoutError(
                f"observation layout entry {i}: unknown block {name!r} (known blocks: {', '.join(OBS_BLOCKS)})"
            )
        out.append((name, int(e["size"])))
    return out


def check_layout(layout, groups, num_dof: int, num_key_bodies: int, size: int | None = None) -> None:
    """A :class:`LayoutError` unless every block has the size this model gives it and the sizes add
    up to ``size`` (when given)."""
    for name, n in layout:
        want = OBS_BLOCKS[name].size(tuple(groups), num_dof, num_key_bodies)
        if n != want:
            raise LayoutError(f"observation block {name!r} has size {n} in the layout, the model gives {want}")
    total = sum(n for _, n in layout)
    if size is not None and total != int(size):
        raise LayoutError(f"the observation layout's blocks add up to {total} numbers, the observation size is {size}")


def observation(state: CharacterState, groups, layout):
    """``[N, sum of sizes]``: the blocks of ``layout`` in its order."""
    xp = namespace(state.root_quat_w)
    groups = tuple(groups)
    hinv = qt.heading_quat_inv(state.root_quat_w)
    try:
        return xp.concat([OBS_BLOCKS[name].compute(state, hinv, groups) for name, _ in layout], axis=-1)
    except KeyError as e:
        raise LayoutError(f"unknown observation block {e.args[0]!r} (known blocks: {', '.join(OBS_BLOCKS)})") from None


def character_obs(
    root_pos_w,
    root_quat_w,
    root_lin_vel_w,
    root_ang_vel_w,
    dof_pos,
    dof_vel,
    key_body_pos_w,
    groups,
    local_root_obs: bool = False,
):
    """The observation in the default layout (:func:`obs_layout`) from its pieces."""
    state = CharacterState(root_pos_w, root_quat_w, root_lin_vel_w, root_ang_vel_w, dof_pos, dof_vel, key_body_pos_w)
    layout = obs_layout(groups, dof_pos.shape[-1], key_body_pos_w.shape[-2], local_root_obs)
    return observation(state, groups, layout)


# ------------------------------------------------------------------ AMP observation history


def history_times(times, k: int, dt: float):
    """``[N] -> [N, k]`` the clip times of the ``k`` history slots of a reference state at
    ``times``, newest first: ``times - j dt`` for slot ``j``."""
    return times[:, None] - arange_like(0, k, times) * dt


def push_history(hist, obs):
    """``[N, k, O]`` with ``obs [N, O]`` as the newest step (slot 0), the oldest dropped."""
    xp = namespace(hist)
    return xp.concat((obs[:, None], hist[:, :-1]), axis=1)


def history_of(obs, k: int):
    """``[N, k, O]`` every slot ``obs [N, O]`` (a character that has not moved: default resets,
    the score's standing-still anchor)."""
    xp = namespace(obs)
    return xp.concat([obs[:, None]] * k, axis=1)


def amp_obs(hist):
    """``[N, k, O] -> [N, k * O]`` the AMP observation (newest step first)."""
    return hist.reshape(hist.shape[0], -1)


def amp_windows(obs_seq, k: int):
    """``[T, O] -> [T - k + 1, k * O]``: the AMP observation at every step of a sequence of
    consecutive observations that has ``k - 1`` before it (row ``i`` ends at step ``i + k - 1``),
    newest first, as :func:`push_history` builds it."""
    xp = namespace(obs_seq)
    steps = obs_seq.shape[0]
    if steps < k:  # no full window (and no negative slice bounds)
        return xp.concat([obs_seq[:0]] * k, axis=-1)
    return xp.concat([obs_seq[k - 1 - j : steps - j] for j in range(k)], axis=-1)


# ------------------------------------------------------------------ actions


def pd_action_offset_scale(groups, limits, hinge_scale: float = 0.7):
    """IsaacGymEnvs' PD action mapping ``target = offset + scale * action``.

    3-DoF joints span [-pi, pi]; a single hinge spans ``mid +- hinge_scale * (high - low)``
    (1.4x its range, so the policy can push against the limit). ``limits`` is ``[D, 2]``; set-up
    code (it reads ``limits`` on the host), the result in ``limits``' kind and dtype."""
    lim = to_numpy(limits).astype(np.float64)
    low, high = np.empty(lim.shape[0]), np.empty(lim.shape[0])
    for g in groups:
        for d in g.dofs:
            if len(g.dofs) == 3:
                low[d], high[d] = -math.pi, math.pi
            else:
                lo, hi = lim[d]
                mid, half = 0.5 * (hi + lo), hinge_scale * (hi - lo)
                low[d], high[d] = mid - half, mid + half
    return as_kind(0.5 * (high + low), limits), as_kind(0.5 * (high - low), limits)


def default_pose_offset_scale(default_dof_pos, limits, action_scale: float = 1.0):
    """A robot's PD action mapping ``target = offset + scale * action`` around a standing pose:
    ``offset`` is the pose, ``scale`` is ``action_scale`` times half of each joint's range (targets
    are clamped to the range, see :func:`action_mapping`). ``limits`` is ``[D, 2]``."""
    lim = to_numpy(limits).astype(np.float64)
    half = 0.5 * (lim[:, 1] - lim[:, 0])
    return as_kind(to_numpy(default_dof_pos).astype(np.float64), limits), as_kind(action_scale * half, limits)


#: ``task.env.actionMapping`` values.
ACTION_MAPPINGS = ("limits", "default_pose")


def action_mapping(mapping: str, groups, limits, default_dof_pos=None, action_scale: float = 1.0):
    """``(offset, scale, target_low, target_high) [D]`` of :func:`pd_targets` for
    ``task.env.actionMapping``: ``limits`` (IsaacGymEnvs: unbounded targets) or ``default_pose``
    (targets clamped to the joint range)."""
    if mapping == "limits":
        offset, scale = pd_action_offset_scale(groups, limits)
        inf = np.full(to_numpy(limits).shape[0], np.inf)
        return offset, scale, as_kind(-inf, limits), as_kind(inf, limits)
    if mapping == "default_pose":
        offset, scale = default_pose_offset_scale(default_dof_pos, limits, action_scale)
        lim = to_numpy(limits)
        return offset, scale, as_kind(lim[:, 0], limits), as_kind(lim[:, 1], limits)
    raise ValueError(f"task.env.actionMapping must be one of {ACTION_MAPPINGS}, got {mapping!r}")


def pd_targets(actions, offset, scale, target_low, target_high):
    """``[N, D]`` PD targets ``clip(offset + scale * clip(actions, -1, 1), target_low, target_high)``
    (per joint, in DoF order; infinite bounds: none)."""
    xp = namespace(actions)
    return xp.clip(offset + scale * xp.clip(actions, -1.0, 1.0), target_low, target_high)


# ------------------------------------------------------------------ terminations


def fall_termination(
    contact_forces_w, body_pos_w, allowed_contact, termination_height: float, progress, force_threshold: float = 0.1
):
    """IsaacGymEnvs' fall test ``[N]`` bool: some body that may not touch the ground has a contact
    force component above ``force_threshold`` **and** some such body is below
    ``termination_height``; never in the first two steps of an episode.
    ``contact_forces_w`` and ``body_pos_w`` are ``[N, B, 3]``, ``allowed_contact`` a ``[B]`` bool
    mask (feet), ``progress`` ``[N]`` steps since the reset."""
    forbidden = ~allowed_contact  # masks, not boolean indexing: no host synchronization
    touching = ((abs(contact_forces_w) > force_threshold).any(-1) & forbidden).any(-1)
    low = ((body_pos_w[..., 2] < termination_height) & forbidden).any(-1)
    return touching & low & (progress > 1)


@dataclass(frozen=True)
class EpisodeRules:
    """When an episode ends (``policy.json``'s ``evaluation`` section, the task's config keys)."""

    #: A non-contact body below this height (m) while one touches something: a fall.
    termination_height: float
    #: Control steps of an episode; it is cut (truncated) at ``episode_length - 1`` steps.
    episode_length: int
    #: Falls end the episode (``enableEarlyTermination``); a blown-up state always does.
    early_termination: bool = True
    #: Contact force component (N) that counts as touching.
    force_threshold: float = 0.1


class StepOutcome(NamedTuple):
    obs: Any  # [N, O] the observation (a blown-up env's previous one)
    amp_hist: Any  # [N, k, O] the AMP history with it as the newest step
    unstable: Any  # [N] the state is not to be trusted (non-finite observation or the simulator's flag)
    terminated: Any  # [N] a fall (with early termination) or a blow-up
    truncated: Any  # [N] the episode length reached, not terminated


def after_step(
    obs, amp_hist, sim_unstable, contact_forces_w, body_pos_w, allowed_contact, progress, rules: EpisodeRules
) -> StepOutcome:
    """What follows one control step, from the observation of the new state ``obs [N, O]`` and
    ``progress [N]`` (steps since the reset, this one counted): a blown-up env (``sim_unstable [N]``
    or a non-finite observation) keeps its previous observation (finite: nothing downstream sees
    NaN) and is terminated; the AMP history gets the observation; the fall test and the episode
    length decide termination and truncation."""
    xp = namespace(obs)
    unstable = sim_unstable | ~xp.isfinite(obs).all(-1)
    obs = xp.where(unstable[:, None], amp_hist[:, 0], obs)
    hist = push_history(amp_hist, obs)
    if rules.early_termination:  # a config flag, not an array value
        fell = fall_termination(
            contact_forces_w, body_pos_w, allowed_contact, rules.termination_height, progress, rules.force_threshold
        )
        terminated = fell | unstable
    else:
        terminated = unstable
    truncated = (progress >= rules.episode_length - 1) & ~terminated
    return StepOutcome(obs, hist, unstable, terminated, truncated)
