"""Run an exported ONNX policy in the MuJoCo C library on the CPU, without torch: the deployment check.

    python -m isaacgymenvs.sim2sim policy=EXPORT_DIR [episodes=10] [motion=CLIP] [video=out.gif] [seed=0] [model=eval|train]
    python -m isaacgymenvs.sim2sim policy=models:/HumanoidAMP-policy@champion [episodes=10] [video=out.gif|none]

``EXPORT_DIR`` is what ``python -m isaacgymenvs.export`` wrote (``policy.onnx`` + ``policy.json``).
A ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI (what ``make promote`` registers) is
downloaded from the MLflow store (``MLFLOW_TRACKING_URI``, else the embedded one); the JSON and the
video (rendered by default, ``video=none`` skips it) are logged to the model version's run under
``sim2sim/v<version>/``, and the numbers become tags of the version.

The policy runs in the character's evaluation model (the G1: the full-mesh ``scene.xml``, trained on
the primitive-collider ``scene_mjx.xml``); ``model=train`` runs it in the training model instead.
Everything task-specific (PD gains, action mapping, key bodies, fall test, reference clip) comes
from ``policy.json``.

Episodes start from reference states of the clip (random times), run the policy's mean action
through the PD law in ``policy.json`` at its control period, and end by a fall (a non-foot body
touching something below ``termination_height``) or after ``episode_length`` steps. It prints JSON
with ``fall_rate``, ``survival``, ``motion_nn_dist`` and ``score``, defined as the trainer's
``eval/*`` (``isaacgymenvs/eval_metrics.py``; the reference set is every frame of the clip at the
control period, the "reference" anchor the states half a period later), and renders the first
episode offscreen to a GIF (``MUJOCO_GL=egl`` or ``osmesa`` on a machine without a display).

Everything here is numpy, onnxruntime and mujoco (and MLflow, through ``tracking``, for a
``models:/`` URI): the same observation as the trainer's (``isaacgymenvs.tasks.terms``), written
again without torch, and checked against it by the tests.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

# ------------------------------------------------------------------ quaternions (wxyz), numpy


def _qmul(a, b):
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack((aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw), axis=-1)


def _qrot(q, v):
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def _tan_norm(q):
    shape = q.shape[:-1] + (3,)
    x = np.broadcast_to(np.array([1.0, 0, 0]), shape)
    z = np.broadcast_to(np.array([0, 0, 1.0]), shape)
    return np.concatenate((_qrot(q, x), _qrot(q, z)), axis=-1)


def _heading_inv(q):
    d = _qrot(q, np.array([1.0, 0, 0]))
    h = -np.arctan2(d[..., 1], d[..., 0])
    return np.stack((np.cos(h / 2), 0 * h, 0 * h, np.sin(h / 2)), axis=-1)


@dataclass
class NumpySkeleton:
    """The fields of ``motion.skeleton.Skeleton`` that clip conversion reads, as numpy arrays."""

    body_names: list
    dof_names: list
    dof_body: list
    dof_axis: np.ndarray
    dof_limits: np.ndarray
    rest_quat_wxyz: np.ndarray

    @property
    def num_dof(self):
        return len(self.dof_names)

    @classmethod
    def from_model(cls, m: mujoco.MjModel) -> "NumpySkeleton":
        joints = range(1, m.njnt)
        return cls(
            [m.body(b).name for b in range(1, m.nbody)],
            [m.joint(j).name for j in joints],
            [int(m.jnt_bodyid[j]) - 1 for j in joints],
            np.array([m.jnt_axis[j] for j in joints]),
            np.array([m.jnt_range[j] if m.jnt_limited[j] else (-np.pi, np.pi) for j in joints]),
            np.array(m.body_quat[1:]),
        )


class Observer:
    """The trainer's per-step observation (``terms.character_obs``), in numpy, from MuJoCo data."""

    def __init__(self, m: mujoco.MjModel, key_bodies: list[str], local_root_obs: bool = False):
        sk = NumpySkeleton.from_model(m)
        groups: dict[int, list[int]] = {}
        for d, b in enumerate(sk.dof_body):
            groups.setdefault(b, []).append(d)
        self.groups = sorted(groups.values(), key=lambda g: g[0])
        self.axes = sk.dof_axis
        self.key_ids = [m.body(n).id for n in key_bodies]
        self.local_root_obs = local_root_obs

    def __call__(self, d: mujoco.MjData) -> np.ndarray:
        q = d.qpos[3:7].copy()
        root = d.qpos[0:3]
        hinv = _heading_inv(q)
        ang_w = _qrot(q, d.qvel[3:6])  # free-joint angular velocity is in the body frame
        dof = d.qpos[7:]
        rot = _qmul(hinv, q) if self.local_root_obs else q
        parts = [root[2:3], _tan_norm(rot), _qrot(hinv, d.qvel[0:3]), _qrot(hinv, ang_w)]
        for g in self.groups:
            if len(g) == 3:
                r = np.array([1.0, 0, 0, 0])
                for k in g:
                    half = 0.5 * dof[k]
                    r = _qmul(r, np.concatenate(([np.cos(half)], self.axes[k] * np.sin(half))))
                parts.append(_tan_norm(r))
            else:
                parts.append(dof[g])
        parts.append(d.qvel[6:])
        rel = d.xpos[self.key_ids] - root
        parts.append(_qrot(np.broadcast_to(hinv, (len(self.key_ids), 4)), rel).reshape(-1))
        return np.concatenate(parts).astype(np.float32)


def _set_state(m, d, qpos, lin_w, ang_w, dof_vel):
    mujoco.mj_resetData(m, d)
    d.qpos[:] = qpos
    q = qpos[3:7]
    conj = q * np.array([1.0, -1, -1, -1])
    d.qvel[:] = np.concatenate((lin_w, _qrot(conj, ang_w), dof_vel))
    mujoco.mj_forward(m, d)


def _resample(clip, dt: float, skeleton, offset: float = 0.0):
    """The clip's states every ``dt`` seconds, interpolated as the MotionLib does (positions and
    velocities linear, root rotation and 3-hinge joints through their rotations):
    ``qpos [T', nq], root_lin_vel, root_ang_vel, dof_vel``, so that one control step is one frame
    whatever the clip's fps."""
    from scipy.spatial.transform import Rotation, Slerp

    from isaacgymenvs.motion.hinge_chain import chains_by_axes, interpolate_hinges

    t_src = np.arange(clip.num_frames) / clip.fps
    t = np.arange(offset, t_src[-1] + 1e-9, dt)
    lerp = lambda x: np.stack([np.interp(t, t_src, x[:, i]) for i in range(x.shape[1])], axis=1)  # noqa: E731
    q = clip.root_quat_wxyz
    rot = Slerp(t_src, Rotation.from_quat(q[:, [1, 2, 3, 0]]))(t).as_quat()
    quat = rot[:, [3, 0, 1, 2]]
    f0 = np.minimum(np.floor(t * clip.fps).astype(int), clip.num_frames - 2)
    blend = np.clip(t * clip.fps - f0, 0.0, 1.0)
    dof = interpolate_hinges(clip.dof_pos[f0], clip.dof_pos[f0 + 1], blend, chains_by_axes(skeleton))
    qpos = np.concatenate((lerp(clip.root_pos), quat, dof), axis=1)
    return qpos, lerp(clip.root_lin_vel), lerp(clip.root_ang_vel), lerp(clip.dof_vel)


def _resolve_clip(motion: str | None, info: dict, motion_dir: str) -> tuple[Path, str, float | None, float]:
    """The reference clip (path, ground, fps, root_vel_sigma): ``motion`` if given, else the one the
    policy was trained on."""
    from isaacgymenvs.task_registry import resolve_motion_file

    dep = info.get("motion") or {}
    name = motion or dep.get("file") or "amp_humanoid_run.npy"  # exports before motion info: HumanoidAMP
    ground = dep.get("ground", "rolling_min") if not motion or motion == dep.get("file") else (
        "rolling_min" if str(motion).endswith(".npy") else "none")
    return resolve_motion_file(name, motion_dir), ground, dep.get("fps"), float(dep.get("root_vel_sigma") or 0.0)


def run(policy_dir, episodes: int = 10, motion: str | None = None, video: str | None = None, seed: int = 0,
        episode_length: int | None = None, termination_height: float | None = None, amp_steps: int | None = None,
        model: str = "eval") -> dict:
    """Run the export in the character's evaluation model (``model="eval"``: for the G1 the full-mesh
    scene.xml) or its training model (``"train"``: tells the policy's own failures from the gap
    between the two), with the PD gains, action mapping, key bodies and fall test of its ``policy.json``."""
    import onnxruntime as ort

    from isaacgymenvs import characters, eval_metrics
    from isaacgymenvs.motion.clip import load_clip
    from isaacgymenvs.task_registry import TASKS

    policy_dir = Path(policy_dir)
    for f in ("policy.onnx", "policy.json"):
        if not (policy_dir / f).is_file():
            raise FileNotFoundError(f"{policy_dir}: no {f}; export a checkpoint with `python -m isaacgymenvs.export`")
    info = json.loads((policy_dir / "policy.json").read_text())
    task = info["task"]
    if task not in TASKS:
        raise ValueError(f"{policy_dir}: policy.json is for task {task!r}, which this version does not know")
    character, motion_dir = TASKS[task]
    spec = characters.get_character(info.get("character", character))
    pd = info["pd_gains"]
    if model not in ("eval", "train"):
        raise ValueError(f"model must be 'eval' (the full model) or 'train' (the training model), got {model!r}")
    m = characters.load_model(spec, variant=model, pd_gains=(pd["kp"], pd["kd"]), torque_limit=pd.get("torque_limit"))
    if [m.joint(j).name for j in range(1, m.njnt)] != info["joint_order"]:
        raise ValueError(f"{policy_dir}: policy.json joint order does not match the {spec.name} model")
    ev = info.get("evaluation", {})
    episode_length = int(episode_length or ev.get("episode_length", 300))
    termination_height = float(termination_height if termination_height is not None else ev.get("termination_height", 0.5))
    amp_steps = int(amp_steps or ev.get("amp_obs_steps", 2))
    control_dt = float(info["control_period_s"])
    substeps = max(1, round(control_dt / m.opt.timestep))
    act = info["action"]
    offset, scale = np.array(act["offset"]), np.array(act["scale"])
    tgt_low = np.array([-np.inf if x is None else x for x in act.get("target_low", [None] * len(offset))])
    tgt_high = np.array([np.inf if x is None else x for x in act.get("target_high", [None] * len(offset))])
    act_dof = characters.actuator_dof_index(m)
    sk = NumpySkeleton.from_model(m)
    motion_path, ground, fps, root_vel_sigma = _resolve_clip(motion, info, motion_dir)
    clip = load_clip(motion_path, sk, m, ground=ground, fps=fps, root_vel_sigma=root_vel_sigma)
    obs_info = info["observation"]
    observe = Observer(m, list(obs_info.get("key_bodies", spec.key_bodies)), bool(obs_info.get("local_root_obs", False)))
    if len(observe(mujoco.MjData(m))) != int(obs_info["size"]):
        raise ValueError(f"{policy_dir}: the {spec.name} model gives {len(observe(mujoco.MjData(m)))} observations, "
                         f"policy.json says {obs_info['size']}")
    allowed = np.zeros(m.nbody - 1, dtype=bool)
    allowed[[m.body(n).id - 1 for n in ev.get("contact_bodies", spec.contact_bodies)]] = True

    # reference AMP observations: the clip every control period, each frame with its history
    d = mujoco.MjData(m)
    frames = _resample(clip, control_dt, sk)
    n_frames = len(frames[0])
    if n_frames < amp_steps + 1:
        raise ValueError(f"{motion_path}: {clip.duration_s:.2f} s is too short for {amp_steps} AMP steps of {control_dt:.3f} s")
    lag = 1

    def amp_windows(states):  # every state with its history, newest first
        obs = []
        for t in range(len(states[0])):
            _set_state(m, d, *(x[t] for x in states))
            obs.append(observe(d))
        obs = np.array(obs)
        return obs, np.array([np.concatenate([obs[t - k * lag] for k in range(amp_steps)])
                              for t in range((amp_steps - 1) * lag, len(obs))])

    frame_obs, ref = amp_windows(frames)
    mean, std = ref.mean(0), ref.std(0)
    # the score's anchors, as the trainer's evaluation takes them: reference states that are not in the
    # set (half a control period later), and the character standing still in its default pose
    _, fresh = amp_windows(_resample(clip, control_dt, sk, offset=0.5 * control_dt))
    nn_ref = float(eval_metrics.nn_dist(fresh, ref, mean, std)) if len(fresh) else 0.0
    still = info.get("default_pose") or {}
    qpos0 = np.zeros(m.nq)
    qpos0[2], qpos0[3] = float(still.get("root_height") or 0.89), 1.0  # exports before default_pose: the humanoid's
    qpos0[7:] = np.asarray(still.get("dof_pos") or np.zeros(m.nq - 7), dtype=np.float64)
    _set_state(m, d, qpos0, np.zeros(3), np.zeros(3), np.zeros(m.nv - 6))
    nn_still = float(eval_metrics.nn_dist(np.tile(observe(d), amp_steps)[None], ref, mean, std))

    sess = ort.InferenceSession(str(policy_dir / "policy.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    recorder = None
    falls, lengths, agent_amp = 0, [], []
    for ep in range(episodes):
        t0 = int(rng.integers((amp_steps - 1) * lag, n_frames))
        _set_state(m, d, *(x[t0] for x in frames))
        hist = [frame_obs[t0 - k * lag] for k in range(amp_steps)]
        if video and ep == 0:
            from isaacgymenvs.video import VideoRecorder

            recorder = VideoRecorder(m, video, fps=0.5 / control_dt)
        for step in range(1, episode_length):
            obs = observe(d)
            a = sess.run(None, {"obs": obs[None]})[0][0]
            target = np.clip(offset + scale * np.clip(a, -1.0, 1.0), tgt_low, tgt_high)
            d.ctrl[:] = target[act_dof]
            mujoco.mj_step(m, d, nstep=substeps)
            mujoco.mj_rnePostConstraint(m, d)
            hist = [observe(d)] + hist[:-1]
            agent_amp.append(np.concatenate(hist))
            if recorder is not None and step % 2 == 0:
                recorder.capture_data(d)
            force = np.abs(d.cfrc_ext[1:, 3:6]).max(1) > 0.1
            low = d.xpos[1:, 2] < termination_height
            if step > 1 and (force & ~allowed).any() and (low & ~allowed).any():
                falls += 1
                break
        lengths.append(step)
        if recorder is not None:
            if not recorder.frames:
                recorder.capture_data(d)
            out_video = recorder.save()
            recorder = None
    nn = float(eval_metrics.nn_dist(np.array(agent_amp), ref, mean, std))
    survival = float(np.mean(lengths) / (episode_length - 1))
    out = {
        "policy": str(policy_dir), "task": task, "mjcf": (spec.eval_mjcf or spec.mjcf) if model == "eval" else spec.mjcf, "motion": str(motion_path),
        "episodes": episodes,
        # the trainer's eval/* numbers, computed the same way (isaacgymenvs/eval_metrics.py)
        "fall_rate": falls / episodes, "survival": survival, "mean_episode_length": float(np.mean(lengths)),
        "motion_nn_dist": nn, "score": float(eval_metrics.score(survival, nn, nn_still, nn_ref)),
        "nn_dist_standing_still": nn_still, "nn_dist_reference": nn_ref,
    }
    if video:
        out.update(out_video)
    return out


def run_registered(model_uri: str, episodes: int = 10, motion: str | None = None, video: str | None = "", seed: int = 0,
                   tracking_uri: str | None = None, model: str = "eval") -> dict:
    """:func:`run` on a registered model version (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``).

    The version's export folder is downloaded into a temporary folder; the result JSON and the
    video (``video=""``: rendered into the temporary folder; None: none) are logged to the version's
    run under ``sim2sim/v<version>/`` and the numbers set as ``sim2sim.*`` tags of the version.
    MLflow is reached through ``tracking`` (imported here, never torch)."""
    import tempfile

    from tracking import resolve_uri
    from tracking.registry import Registry, parse_models_uri
    from tracking.store import redact

    parse_models_uri(model_uri)  # a malformed URI is an error before any store is opened
    reg = Registry(resolve_uri(tracking_uri or ""))
    mv = reg.resolve(model_uri)
    with tempfile.TemporaryDirectory(prefix="sim2sim-") as tmp:
        policy_dir = reg.download_policy(mv, Path(tmp) / "model")
        out_video = (str(Path(tmp) / f"sim2sim_v{mv.version}.gif") if video == "" else video) or None
        res = run(policy_dir, episodes, motion, out_video, seed, model=model)
        res.update(policy=model_uri, model=mv.name, model_version=int(mv.version), tracking_uri=redact(reg.uri))
        if out_video:
            res["video_artifact"] = f"sim2sim/v{mv.version}/{Path(out_video).name}"
            if video == "":
                res.pop("video", None)  # the temporary file: only the logged artifact remains
        res["logged_to_run"] = reg.log_evaluation(mv, res, [out_video] if out_video else [])
    return res


def main(argv=None) -> int:
    from isaacgymenvs.utils.cli import parse_kv, run_json

    args = parse_kv(sys.argv[1:] if argv is None else argv, {"policy", "episodes", "motion", "video", "seed", "model"}, {"policy"})
    if args is None:
        print("usage: python -m isaacgymenvs.sim2sim policy=EXPORT_DIR|models:/NAME@ALIAS [episodes=N] [motion=CLIP] "
              "[video=out.gif|none] [seed=S] [model=eval|train]", file=sys.stderr)
        return 2
    video = args.get("video")
    if video is not None and video.strip().lower() in ("", "none", "0", "false", "no"):
        video = None

    def go() -> dict:
        episodes, seed, motion = int(args.get("episodes", 10)), int(args.get("seed", 0)), args.get("motion")
        which = args.get("model", "eval")
        if args["policy"].startswith("models:/"):  # the registry; a video unless video=none
            return run_registered(args["policy"], episodes, motion, "" if "video" not in args else video, seed, model=which)
        return run(args["policy"], episodes, motion, video, seed, model=which)

    from isaacgymenvs.video import RenderUnavailableError

    errors: tuple = (FileNotFoundError, ValueError, RenderUnavailableError)
    if args["policy"].startswith("models:/"):
        from tracking import TrackingError

        errors += (TrackingError,)
    return run_json(go, errors)


if __name__ == "__main__":
    sys.exit(main())
