"""Export a trained policy with its observation normalizer: TorchScript, ONNX, npz, json.

``export(checkpoint, out)`` writes into ``out``:

* ``policy.pt``: TorchScript of the actor (MLP and mean head; an LSTM policy: MLP, LSTM and mean
  head in rl_games' order, see :mod:`.modules`), taking **normalized** observations;
* ``obs_norm.npz``: ``mean`` and ``std`` of the observation normalizer (``std = sqrt(var + 1e-5)``,
  float32); normalize as ``clip((obs - mean) / std, -5, 5)``;
* ``policy.onnx``: **raw** observations in, actions (the policy mean) out, with the normalization
  and the clip to ±5 inside the graph, so nobody can forget them;
* ``policy.json``: observation layout, action scale and offset per joint, PD gains, control period,
  joint order, clip limits, task, source checkpoint and epoch, and (``policy``) the inputs and
  outputs of both files with their shapes.

An LSTM policy takes and returns its state explicitly, one control step per call:
``policy.onnx`` ``(obs [B, O], h0 [L, B, H], c0 [L, B, H]) -> (actions [B, A], h1, c1)``,
``policy.pt`` ``forward(obs_norm, h, c) -> (actions, h, c)`` (``L`` layers, ``H`` units); the state
starts at zeros, is fed back each step and is set to zeros at an episode's start.

Before it returns, it checks that the training model, ``policy.pt`` with the npz normalization
done by hand, and ``policy.onnx`` under onnxruntime give the same actions on a batch of random
observations (an LSTM policy: over :data:`CHECK_STEPS` steps, the state carried, half the envs
reset half-way) within 1e-5, and raises :class:`ExportCheckError` if not. The files are written
into a temporary folder beside ``out`` and moved into place only after that check passed: a
failed export leaves ``out`` as it was (an earlier good export stays whole, never mixed).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isaacgymenvs.export.modules import (
    OBS_CLIP,
    Actor,
    ExportError,
    NormalizedActor,
    NormalizedRecurrentActor,
    RecurrentActor,
)

ACTION_CLIP = 1.0
#: max |action difference| between the files and the training model: float32 rounding of a few
#: layers is ~1e-7 on actions of size ~1; an LSTM's gates (sigmoid, tanh, a forget gate < 1) keep it
#: from growing over the check's steps (measured: <= 1e-7 for ONNX, 0 for TorchScript)
TOLERANCE = 1e-5
#: the length of an LSTM policy's check sequence (its state carried, half the envs reset half-way)
CHECK_STEPS = 24


class ExportCheckError(ExportError):
    pass


def _actor_from_state(state: dict, network: dict) -> Actor:
    from isaacgymenvs.learning.rl_games_adapter import actor_layers

    units = list(network.get("mlp", {}).get("units", []))
    hidden, (mw, mb) = actor_layers(state, len(units))
    layers = []
    for i, wb in enumerate(hidden):
        if wb is None:
            raise ExportError(f"the checkpoint has no actor layer {i} (network units {units})")
        w, b = wb
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data.copy_(w)
        lin.bias.data.copy_(b)
        layers.append(lin)
    mu = nn.Linear(mw.shape[1], mw.shape[0])
    mu.weight.data.copy_(mw)
    mu.bias.data.copy_(mb)
    return Actor(layers, mu, network.get("mlp", {}).get("activation", "relu")).eval()


def _recurrent_actor_from_state(state: dict, network: dict, num_obs: int) -> RecurrentActor:
    """The actor MLP and mean head with the checkpoint's actor LSTM, in rl_games' order (``modules``)."""
    from isaacgymenvs.learning.rl_games_adapter import actor_rnn

    rnn = network["rnn"]
    if rnn.get("name") != "lstm":
        raise ExportError(
            f"network.rnn.name={rnn.get('name')!r}: export writes MLP and LSTM policies only "
            "(train with train.params.network.rnn.name=lstm, or without train.params.network.rnn)"
        )
    weights, norm = actor_rnn(state, network) or ({}, None)
    if "weight_ih_l0" not in weights:
        raise ExportError(f"the checkpoint has no actor LSTM weights (network.rnn {rnn})")
    units, num_layers = int(rnn["units"]), int(rnn.get("layers", 1))
    lstm = nn.LSTM(weights["weight_ih_l0"].shape[1], units, num_layers)
    try:
        lstm.load_state_dict(weights)
    except RuntimeError as e:
        raise ExportError(
            f"the checkpoint's actor LSTM does not fit network.rnn {rnn}: {str(e).splitlines()[-1]}"
        ) from None
    layer_norm: nn.Module = nn.Identity()
    if rnn.get("layer_norm", False):
        if norm is None:
            raise ExportError(f"network.rnn {rnn} asks for a layer norm the checkpoint does not hold")
        layer_norm = nn.LayerNorm(units)
        layer_norm.load_state_dict(norm)
    return RecurrentActor(
        _actor_from_state(state, network),
        lstm,
        layer_norm,
        num_obs,
        bool(rnn.get("before_mlp", False)),
        bool(rnn.get("concat_input", False)),
        bool(rnn.get("concat_output", False)),
    ).eval()


def _training_model(state: dict, meta: dict):
    """The network the trainer used, rebuilt from the checkpoint's network config, with its weights."""
    from isaacgymenvs.learning.rl_games_adapter import build_policy_model

    network = meta["network"]
    net = build_policy_model(
        network,
        meta["obs"],
        meta["actions"],
        normalize_input=meta.get("normalize_input", True),
        normalize_value=meta.get("normalize_value", True),
    )
    try:
        net.load_state_dict(state)
    except RuntimeError as e:  # torch lists every mismatch over many lines: one line, the first
        import re

        found = re.findall(
            r"size mismatch for ([\w.]+): copying a param with shape torch.Size\((\[[^\]]*\])\) from "
            r"checkpoint, the shape in current model is torch.Size\((\[[^\]]*\])\)",
            str(e),
        )
        what = (
            (
                f"{found[0][0]} is {found[0][1]} in the checkpoint, {found[0][2]} in the network"
                + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
            )
            if found
            else str(e).splitlines()[0]
        )
        raise ExportError(
            f"the checkpoint's weights do not fit its own network description "
            f"(mlp units {network.get('mlp', {}).get('units')}): {what}"
        ) from None
    return net.eval()


def _legacy_deploy(task: str) -> dict:
    """Deployment info of a checkpoint saved before checkpoints carried it (HumanoidAMP, default config)."""
    from isaacgymenvs import characters
    from isaacgymenvs.motion.skeleton import skeleton_from_model
    from isaacgymenvs.task_registry import get_task
    from isaacgymenvs.tasks import terms
    from isaacgymenvs.tasks.amp_task import AMPTaskConfig

    character = get_task(task).character.name
    model = characters.load_model(character)
    sk = skeleton_from_model(model)
    offset, scale, _, _ = terms.action_mapping("limits", terms.joint_groups(sk), sk.dof_limits)
    kp, kd = characters.pd_gains_arrays(model)
    cfg = AMPTaskConfig()
    return {
        "character": character,
        "joint_order": sk.dof_names,
        "key_bodies": list(cfg.keyBodies),
        "contact_bodies": list(cfg.contactBodies),
        "termination_height": cfg.terminationHeight,
        "episode_length": cfg.episodeLength,
        "amp_obs_steps": cfg.numAMPObsSteps,
        "local_root_obs": cfg.localRootObs,
        "action_mapping": "limits",
        "action_offset": [float(x) for x in offset],
        "action_scale": [float(x) for x in scale],
        "target_low": [None] * sk.num_dof,
        "target_high": [None] * sk.num_dof,
        "pd_gains": {
            "kp": kp.tolist(),
            "kd": kd.tolist(),
            "torque_limit": [None if np.isinf(x) else float(x) for x in characters.torque_limits(model)],
        },
        "physics_timestep_s": float(model.opt.timestep),
    }


def policy_interface(meta: dict) -> dict:
    """``policy.json``'s ``policy``: the inputs and outputs of ``policy.onnx`` and ``policy.pt`` with
    their shapes (``"batch"``: any number of envs) and, for an LSTM policy, how its state is run."""
    num_obs, num_actions = int(meta["obs"]), int(meta["actions"])
    rnn = (meta.get("network") or {}).get("rnn")
    if not rnn:
        return {
            "kind": "mlp",
            "onnx": {"inputs": {"obs": ["batch", num_obs]}, "outputs": {"actions": ["batch", num_actions]}},
            "torchscript": f"policy.pt: forward(obs_norm [batch, {num_obs}]) -> actions [batch, {num_actions}]",
            "recurrent_state": None,
        }
    layers, units = int(rnn.get("layers", 1)), int(rnn["units"])
    state = [layers, "batch", units]
    return {
        "kind": "lstm",
        "onnx": {
            "inputs": {"obs": ["batch", num_obs], "h0": state, "c0": state},
            "outputs": {"actions": ["batch", num_actions], "h1": state, "c1": state},
        },
        "torchscript": f"policy.pt: forward(obs_norm [batch, {num_obs}], h [{layers}, batch, {units}], "
        f"c [{layers}, batch, {units}]) -> (actions [batch, {num_actions}], h, c)",
        "recurrent_state": {
            "cell": "lstm",
            "layers": layers,
            "units": units,
            "inputs": ["h0", "c0"],
            "outputs": ["h1", "c1"],
            "dtype": "float32",
            "initial": "zeros",
            "carry": "feed a step's h1, c1 as the next step's h0, c0 (per env: batch index)",
            "reset": "set an env's h0, c0 to zeros at the start of each of its episodes (as the trainer does)",
        },
    }


def _policy_json(meta: dict, checkpoint: Path, epoch: int) -> dict:
    from isaacgymenvs import characters
    from isaacgymenvs.motion.skeleton import skeleton_from_model
    from isaacgymenvs.task_registry import UnknownTaskError, get_task
    from isaacgymenvs.tasks import terms

    task = meta.get("task")
    try:
        spec = get_task(task)
    except UnknownTaskError as e:
        raise ExportError(f"checkpoint {str(checkpoint)!r} is for a task this version does not know: {e}") from None
    dep = meta.get("deploy") or _legacy_deploy(task)
    sk = skeleton_from_model(
        characters.load_model(spec.character.name, pd_gains=(dep["pd_gains"]["kp"], dep["pd_gains"]["kd"]))
    )
    groups = terms.joint_groups(sk)
    local_root_obs = bool(dep.get("local_root_obs", False))
    # the layout the trainer built its observation from (checkpoints before it: the default one)
    try:
        if dep.get("obs_layout") is not None:
            layout = terms.layout_from_json(dep["obs_layout"])
        else:
            layout = terms.obs_layout(groups, sk.num_dof, len(dep["key_bodies"]), local_root_obs)
        terms.check_layout(layout, groups, sk.num_dof, len(dep["key_bodies"]), size=int(meta["obs"]))
    except terms.LayoutError as e:
        raise ExportError(f"checkpoint {str(checkpoint)!r} does not fit the {task} model: {e}") from None
    return {
        "task": task,
        "character": dep.get("character", spec.character.name),
        "source_checkpoint": str(checkpoint),
        "epoch": epoch,
        # what goes into and comes out of policy.onnx / policy.pt (an LSTM's state too)
        "policy": policy_interface(meta),
        # sim2sim builds its observation by walking this layout (isaacgymenvs.tasks.terms.OBS_BLOCKS)
        "observation": {
            "size": int(meta["obs"]),
            "layout": terms.layout_to_json(layout),
            "normalization": "clip((obs - mean) / std, -5, 5), mean/std in obs_norm.npz",
            "clip": OBS_CLIP,
            "key_bodies": dep["key_bodies"],
            "local_root_obs": local_root_obs,
        },
        "action": {
            "size": int(meta["actions"]),
            "clip": [-ACTION_CLIP, ACTION_CLIP],
            "pd_target": "target = clip(offset + scale * clip(action, -1, 1), target_low, target_high), per joint in "
            "joint_order (null: no bound)",
            "mapping": dep.get("action_mapping", "limits"),
            "offset": dep["action_offset"],
            "scale": dep["action_scale"],
            "target_low": dep["target_low"],
            "target_high": dep["target_high"],
        },
        "joint_order": dep.get("joint_order", sk.dof_names),
        "pd_gains": {
            **dep["pd_gains"],
            "law": "tau = clip(kp * (target - q) - kd * qdot, -torque_limit, torque_limit)",
        },
        "control_period_s": float(meta.get("control_dt", 1.0 / 30.0)),
        "physics_timestep_s": float(dep["physics_timestep_s"]),
        "quaternion_order": "wxyz (MuJoCo)",
        "motion": {
            "file": dep.get("motion_file", spec.default_clip),
            "ground": dep.get("motion_ground", spec.motion_ground),
            "fps": dep.get("motion_fps"),
            "root_vel_sigma": dep.get("motion_root_vel_sigma", 0.0),
        },
        "evaluation": {
            "contact_bodies": dep["contact_bodies"],
            "termination_height": dep["termination_height"],
            "episode_length": dep["episode_length"],
            "amp_obs_steps": dep["amp_obs_steps"],
            "early_termination": bool(dep.get("early_termination", True)),
        },
        # the Default reset pose: the "standing still" anchor of the evaluation's score
        "default_pose": {"root_height": dep.get("default_root_height"), "dof_pos": dep.get("default_dof_pos")},
    }


def export(checkpoint, out=None, batch: int = 256, seed: int = 0) -> dict:
    """Write the four files and check them against each other; returns a summary dict."""
    from isaacgymenvs.learning.learner import load_checkpoint_file

    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint_file(checkpoint)
    meta = ckpt.get("meta") or {}
    if "network" not in meta:
        raise ExportError(
            f"checkpoint {str(checkpoint)!r} has no network description (saved by an older version); "
            "resume it for one epoch to write a new checkpoint, then export that"
        )
    state = ckpt["model"]
    bad = [
        k
        for k, v in state.items()
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise ExportError(
            f"checkpoint {str(checkpoint)!r} has NaN or infinite values in {', '.join(bad[:4])}"
            f"{' ...' if len(bad) > 4 else ''} (the training diverged); export an earlier checkpoint"
        )
    out = Path(out) if out else checkpoint.parent.parent / "export" / checkpoint.stem
    try:  # a checkpoint that cannot be rebuilt stops here, before any file is written
        _policy_from_state(state, meta)  # first: a kind of policy it cannot write is named as such
        _training_model(state, meta)
    except ExportError as e:
        raise ExportError(f"checkpoint {str(checkpoint)!r}: {e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        check = _write(tmp, ckpt, state, meta, checkpoint, batch, seed)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "files": sorted(p.name for p in out.iterdir()), **check}


def _replace_dir(new: Path, out: Path) -> None:
    """Put the folder ``new`` where ``out`` is, in two renames (the old one is removed after)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _policy_from_state(state: dict, meta: dict) -> Actor | RecurrentActor:
    if meta["network"].get("rnn"):
        return _recurrent_actor_from_state(state, meta["network"], int(meta["obs"]))
    return _actor_from_state(state, meta["network"])


def _write(out: Path, ckpt: dict, state: dict, meta: dict, checkpoint: Path, batch: int, seed: int) -> dict:
    """The four files into ``out`` and their check (see the module docstring)."""
    from isaacgymenvs.learning.rl_games_adapter import obs_normalizer

    mean, std = obs_normalizer(state) or (
        torch.zeros(meta["obs"]),
        torch.ones(meta["obs"]),
    )  # None: trained without one
    actor = _policy_from_state(state, meta)
    np.savez(out / "obs_norm.npz", mean=mean.numpy().astype(np.float32), std=std.numpy().astype(np.float32))
    torch.jit.script(actor).save(str(out / "policy.pt"))
    info = _policy_json(meta, checkpoint, int(ckpt.get("epoch", 0)))
    ports = info["policy"]["onnx"]
    example: tuple[torch.Tensor, ...] = (torch.zeros(2, meta["obs"]),)
    full: nn.Module
    if isinstance(actor, RecurrentActor):
        full = NormalizedRecurrentActor(actor, mean, std)
        example += (torch.zeros(actor.num_layers, 2, actor.hidden_size),) * 2  # h0, c0
    else:
        full = NormalizedActor(actor, mean, std)
    # the batch dimension of every input and output: 0, except the state's [layers, batch, units]
    axes = {name: {shape.index("batch"): "batch"} for name, shape in {**ports["inputs"], **ports["outputs"]}.items()}
    with warnings.catch_warnings():  # torch warns that an LSTM's batch may be fixed: it is not (the check runs 256)
        warnings.filterwarnings("ignore", message=".*LSTM.*batch", category=UserWarning)
        torch.onnx.export(
            full.eval(),
            example,
            str(out / "policy.onnx"),
            input_names=list(ports["inputs"]),
            output_names=list(ports["outputs"]),
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    (out / "policy.json").write_text(json.dumps(info, indent=2))
    return check_export(out, state, meta, batch=batch, seed=seed)


def check_export(out: Path, state: dict, meta: dict, batch: int = 256, seed: int = 0) -> dict:
    """Training model vs policy.pt (npz normalization by hand) vs policy.onnx on random raw
    observations: one batch for an MLP policy; for an LSTM policy a sequence of
    :data:`CHECK_STEPS` steps, the state carried, and half the envs reset (their state zeroed, as
    the trainer zeroes it at an episode's end) half-way."""
    import onnxruntime as ort

    out = Path(out)
    norm = np.load(out / "obs_norm.npz")
    mean, std = norm["mean"], norm["std"]
    recurrent = bool(meta["network"].get("rnn"))
    steps = CHECK_STEPS if recurrent else 1
    rng = np.random.default_rng(seed)
    obs = (mean + std * rng.standard_normal((steps, batch, mean.shape[0])) * 2.0).astype(np.float32)
    keep = np.ones((steps, batch), dtype=np.float32)  # 0: the env's episode starts at this step
    keep[steps // 2, ::2] = 0.0
    sess = ort.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        model = _training_model(state, meta)
        pt = torch.jit.load(str(out / "policy.pt"))
        by_hand = np.clip((obs - mean) / std, -OBS_CLIP, OBS_CLIP).astype(np.float32)
        if not recurrent:
            ref = model({"is_train": False, "obs": torch.from_numpy(obs[0]), "prev_actions": None})["mus"].numpy()
            a_pt = pt(torch.from_numpy(by_hand[0])).numpy()
            a_onnx = sess.run(["actions"], {"obs": obs[0]})[0]
        else:
            ref, a_pt, a_onnx = _run_sequence(model, pt, sess, obs, by_hand, keep)
    err_pt = float(np.abs(a_pt - ref).max())
    err_onnx = float(np.abs(a_onnx - ref).max())
    if not (err_pt <= TOLERANCE and err_onnx <= TOLERANCE):
        raise ExportCheckError(
            f"export check failed: max |policy.pt - model| = {err_pt:.3g}, max |policy.onnx - model| = "
            f"{err_onnx:.3g} (tolerance {TOLERANCE:g}{f', over {steps} steps' if recurrent else ''}); "
            "do not deploy these files"
        )
    return {
        "check": "passed",
        "max_abs_err_policy_pt": err_pt,
        "max_abs_err_policy_onnx": err_onnx,
        "batch": batch,
        **({"steps": steps} if recurrent else {}),
    }


def _run_sequence(model, pt, sess, obs: np.ndarray, by_hand: np.ndarray, keep: np.ndarray):
    """``[T, B, A]`` mean actions of the training model (rl_games' network, its state tuple carried
    as the trainer carries it), ``policy.pt`` (normalized observations, ``h``, ``c``) and
    ``policy.onnx`` (raw observations, ``h0``, ``c0``) over the observations ``[T, B, O]``; an env's
    state is zeroed before step ``t`` where ``keep[t]`` is 0."""
    batch = obs.shape[1]
    states = [torch.zeros(s.shape[0], batch, s.shape[2]) for s in model.get_default_rnn_state()]
    layers, units = states[0].shape[0], states[0].shape[2]
    h_pt = c_pt = torch.zeros(layers, batch, units)
    h_ox = c_ox = np.zeros((layers, batch, units), dtype=np.float32)
    ref, a_pt, a_onnx = [], [], []
    for t in range(obs.shape[0]):
        k = keep[t][None, :, None]
        states = [s * torch.from_numpy(k) for s in states]
        h_pt, c_pt = h_pt * torch.from_numpy(k), c_pt * torch.from_numpy(k)
        h_ox, c_ox = h_ox * k, c_ox * k
        res = model({"is_train": False, "obs": torch.from_numpy(obs[t]), "prev_actions": None, "rnn_states": states})
        ref.append(res["mus"].numpy())
        states = list(res["rnn_states"])
        a, h_pt, c_pt = pt(torch.from_numpy(by_hand[t]), h_pt, c_pt)
        a_pt.append(a.numpy())
        a, h_ox, c_ox = sess.run(["actions", "h1", "c1"], {"obs": obs[t], "h0": h_ox, "c0": c_ox})
        a_onnx.append(a)
    return np.stack(ref), np.stack(a_pt), np.stack(a_onnx)
