"""Run an exported ONNX policy in the MuJoCo C library on the CPU, without torch: the deployment check.

    python -m isaacgymenvs.sim2sim policy=EXPORT_DIR [episodes=10] [motion=CLIP] [video=out.gif] [seed=0] [model=eval|train]

``EXPORT_DIR`` is what ``python -m isaacgymenvs.export`` wrote (``policy.onnx`` + ``policy.json``).
A registered model (``models:/NAME@ALIAS``, what ``make promote`` registers) is run by
``python -m sweeps.sim2sim`` (``amp-sim2sim``), which downloads it from the MLflow store and logs
the result to the model version: the store is above this package.

The policy runs in the character's evaluation model (the G1: the full-mesh ``scene.xml``, trained on
the primitive-collider ``scene_mjx.xml``); ``model=train`` runs it in the training model instead.
Everything task-specific (PD gains, action mapping, key bodies, fall test, reference clip) comes
from ``policy.json``.

Episodes start from reference states of the clip (random times), run the policy's mean action
through the PD law in ``policy.json`` at its control period (an LSTM policy from a zero state at
every episode's start, its state carried from step to step: :class:`OnnxPolicy`), and end by a fall (a non-foot body
touching something below ``termination_height``), a blow-up (a state MuJoCo could not integrate or
a non-finite observation: counted as a fall, its transition left out of ``motion_nn_dist``, as in
the trainer's evaluation) or after ``episode_length`` steps. It prints JSON
with ``fall_rate``, ``survival``, ``motion_nn_dist`` and ``score``, defined as the trainer's
``eval/*`` (``isaacgymenvs/eval_metrics.py``; the reference set is every frame of the clip at the
control period, the "reference" anchor the states half a period later), and renders whole
episodes one after another, until the video lasts 10 s or every episode ran, offscreen to a GIF (``MUJOCO_GL=egl`` or ``osmesa`` on a machine without a display).

Everything here is numpy, onnxruntime and mujoco, and nothing of the deployed step is written here: the observation (built by
walking ``policy.json``'s ``observation.layout``), the AMP history, the PD targets, the fall test
and the episode end are the trainer's own functions (``isaacgymenvs.tasks.terms``, which run on
numpy arrays as well as torch tensors), the MjData state write/step/read is ``isaacgymenvs.mjstate``,
the numbers are ``isaacgymenvs.eval_metrics``. ``tests/test_sim2sim.py`` checks, over every
registered task, that :class:`Deployment` gives the trainer's observation, AMP observation and fall
flags for the same MuJoCo state.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from isaacgymenvs import mjstate
from isaacgymenvs.tasks import terms

#: A video shows whole episodes one after another until it lasts at least this long (seconds of
#: simulated time, played in real time), or every episode ran.
VIDEO_MIN_S = 10.0


@dataclass
class NumpySkeleton:
    """The fields of ``motion.skeleton.Skeleton`` that clip conversion and ``terms.joint_groups``
    read, as numpy arrays."""

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


#: MuJoCo's warnings of a state it could not integrate (it then resets the MjData to the rest pose).
_BAD_STATE = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQPOS)


def _bounds(values, fill: float) -> np.ndarray:
    return np.array([fill if x is None else x for x in values], dtype=np.float32)


class Deployment:
    """The deployed step of one ``policy.json`` on one ``MjModel``, numpy only: observation (from
    the json's layout), PD targets, control step, AMP history, fall test and episode end, each a
    ``terms`` function the trainer runs too. Arrays keep ``terms``' batch dimension (of 1).

    ``info`` is the parsed ``policy.json``; ``key_bodies``, ``contact_bodies`` (the character's) and
    the evaluation keys fill in what exports before them did not write. A layout with a block this
    version does not know, a block whose size is not the model's, or sizes that do not add up to
    ``observation.size``, is a one-line :class:`terms.LayoutError` (a ``ValueError``)."""

    def __init__(
        self,
        m: mujoco.MjModel,
        info: dict,
        key_bodies=(),
        contact_bodies=(),
        episode_length: int | None = None,
        termination_height: float | None = None,
        amp_steps: int | None = None,
    ):
        self.m = m
        if [m.joint(j).name for j in range(1, m.njnt)] != list(info["joint_order"]):
            raise ValueError("policy.json joint order does not match the model's")
        self.skeleton = NumpySkeleton.from_model(m)
        self.groups = terms.joint_groups(self.skeleton)
        obs = info["observation"]
        self.key_ids = self._body_ids(obs.get("key_bodies", list(key_bodies)), "observation.key_bodies")
        if "layout" not in obs:
            raise ValueError("policy.json has no observation.layout; export the checkpoint again")
        self.layout = terms.layout_from_json(obs["layout"], local_root_obs=bool(obs.get("local_root_obs", False)))
        terms.check_layout(self.layout, self.groups, self.skeleton.num_dof, len(self.key_ids), size=int(obs["size"]))
        self.num_obs = int(obs["size"])
        ev = info.get("evaluation", {})
        self.rules = terms.EpisodeRules(
            float(termination_height if termination_height is not None else ev.get("termination_height", 0.5)),
            int(episode_length or ev.get("episode_length", 300)),
            bool(ev.get("early_termination", True)),
        )
        self.amp_steps = int(amp_steps or ev.get("amp_obs_steps", 2))
        self.allowed_contact = np.zeros(m.nbody - 1, dtype=bool)
        self.allowed_contact[
            self._body_ids(ev.get("contact_bodies", list(contact_bodies)), "evaluation.contact_bodies")
        ] = True
        act = info["action"]
        # float32, as the trainer computes its targets: the same numbers to the last bit
        self.action_offset = np.asarray(act["offset"], dtype=np.float32)
        self.action_scale = np.asarray(act["scale"], dtype=np.float32)
        n = len(self.action_offset)
        self.target_low = _bounds(act.get("target_low", [None] * n), -np.inf)
        self.target_high = _bounds(act.get("target_high", [None] * n), np.inf)
        self.control_dt = float(info["control_period_s"])
        self.substeps = max(1, round(self.control_dt / m.opt.timestep))
        from isaacgymenvs.characters import actuator_dof_index

        self.act_dof = actuator_dof_index(m)

    def _body_ids(self, names, what: str) -> np.ndarray:
        missing = [n for n in names if n not in self.skeleton.body_names]
        if missing:
            raise ValueError(f"policy.json {what} names bodies the model does not have: {missing}")
        return np.array([self.skeleton.body_names.index(n) for n in names], dtype=np.int64)

    # --- state and observation
    def state(self, d: mujoco.MjData) -> terms.CharacterState:
        """The observed state of ``d`` (float32, as the trainer observes its simulator's)."""
        s = mjstate.read(d)
        f = lambda x: np.asarray(x, dtype=np.float32)  # noqa: E731
        return terms.CharacterState(
            f(s["root_pos_w"]),
            f(s["root_quat_w"]),
            f(s["root_lin_vel_w"]),
            f(s["root_ang_vel_w"]),
            f(s["dof_pos"]),
            f(s["dof_vel"]),
            f(s["body_pos_w"][:, self.key_ids]),
        )

    def observe(self, d: mujoco.MjData) -> np.ndarray:
        """``[1, O]`` the observation of ``d``, its blocks in ``policy.json``'s order."""
        return terms.observation(self.state(d), self.groups, self.layout)

    # --- acting
    def pd_targets(self, actions) -> np.ndarray:
        """``[1, D]`` PD targets (DoF order) of ``actions [1, D]``."""
        return terms.pd_targets(
            np.asarray(actions, dtype=np.float32).reshape(1, -1),
            self.action_offset,
            self.action_scale,
            self.target_low,
            self.target_high,
        )

    def control_step(self, d: mujoco.MjData, actions) -> np.ndarray:
        """One control step of ``d`` with ``actions`` through the PD law; returns ``[1]`` whether
        MuJoCo flagged the state as one it could not integrate."""
        before = sum(d.warning[w].number for w in _BAD_STATE)
        mjstate.step(self.m, d, self.pd_targets(actions)[0][self.act_dof], self.substeps)
        return np.array([sum(d.warning[w].number for w in _BAD_STATE) > before])

    def after_step(self, d: mujoco.MjData, amp_hist, progress: int, sim_unstable=None) -> terms.StepOutcome:
        """``terms.after_step`` on ``d``: observation, AMP history ``[1, k, O]``, termination."""
        s = mjstate.read(d)
        bad = np.zeros(1, dtype=bool) if sim_unstable is None else np.asarray(sim_unstable, dtype=bool)
        return terms.after_step(
            self.observe(d),
            amp_hist,
            bad,
            s["contact_forces_w"],
            s["body_pos_w"],
            self.allowed_contact,
            np.array([progress]),
            self.rules,
        )

    # --- reference states
    def write_frame(self, d: mujoco.MjData, frames: dict, t: int) -> None:
        mjstate.write(self.m, d, *(frames[k][t] for k in _FRAME_KEYS))

    def frame_obs(self, frames: dict) -> np.ndarray:
        """``[T, O]`` the observation of every frame of ``frames`` (:func:`resample`) written into MuJoCo."""
        d = mujoco.MjData(self.m)
        out = []
        for t in range(len(frames["root_pos"])):
            self.write_frame(d, frames, t)
            out.append(self.observe(d)[0])
        return np.array(out)


class OnnxPolicy:
    """``policy.onnx`` under onnxruntime, one control step per call, for ``batch`` envs: raw
    observations ``[B, O]`` in, actions ``[B, A]`` (the policy mean) out. An LSTM policy's state
    (``policy.json``'s ``policy.recurrent_state``: ``h0``/``c0`` in, ``h1``/``c1`` out,
    ``[layers, B, units]``) lives here: carried from one call to the next, and set to zeros by
    :meth:`reset` (at an episode's start; it starts at zeros). An MLP policy has no state."""

    def __init__(self, policy_dir, info: dict, batch: int = 1):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(Path(policy_dir) / "policy.onnx"), providers=["CPUExecutionProvider"])
        rec = (info.get("policy") or {}).get("recurrent_state")  # exports before "policy": MLP policies
        self.state_in = list(rec["inputs"]) if rec else []
        self.state_out = list(rec["outputs"]) if rec else []
        self.state_shape = (int(rec["layers"]), int(batch), int(rec["units"])) if rec else None
        takes = sorted(i.name for i in self.session.get_inputs())
        if takes != sorted(["obs", *self.state_in]):
            raise ValueError(
                f"{policy_dir}: policy.onnx takes {takes}, policy.json describes {sorted(['obs', *self.state_in])}; "
                "export the checkpoint again"
            )
        self.state: list[np.ndarray] = []
        self.reset()

    def reset(self, envs=None) -> None:
        """Zero the recurrent state of ``envs`` (indices or a boolean mask ``[B]``; None: all)."""
        if self.state_shape is None:
            return
        if envs is None or not self.state:
            self.state = [np.zeros(self.state_shape, dtype=np.float32) for _ in self.state_in]
        else:
            for s in self.state:
                s[:, envs] = 0.0

    def __call__(self, obs) -> np.ndarray:
        feed = {"obs": np.asarray(obs, dtype=np.float32), **dict(zip(self.state_in, self.state))}
        actions, *self.state = self.session.run(["actions", *self.state_out], feed)
        return actions


_FRAME_KEYS = ("root_pos", "root_quat_wxyz", "root_lin_vel", "root_ang_vel", "dof_pos", "dof_vel")


def resample(clip, dt: float, skeleton, offset: float = 0.0) -> dict:
    """The clip's states every ``dt`` seconds from ``offset`` (``[T, ...]`` arrays named as
    ``MotionState``'s), interpolated as the MotionLib does: frame ``floor(t fps)`` (at most the
    second last) and the blend to the next, positions and velocities linear, the root rotation
    slerped, 3-hinge joints through their rotations (``hinge_chain``, shared with the MotionLib)."""
    from isaacgymenvs.motion.hinge_chain import chains_by_axes, interpolate_hinges, slerp

    t = np.arange(offset, clip.duration_s + 1e-9, dt)
    ft = np.maximum(t, 0.0) * clip.fps
    f0 = np.maximum(np.minimum(np.floor(ft).astype(np.int64), clip.num_frames - 2), 0)
    f1 = f0 + 1
    blend = np.clip(ft - f0, 0.0, 1.0)
    lerp = lambda x: x[f0] + blend[:, None] * (x[f1] - x[f0])  # noqa: E731
    return {
        "root_pos": lerp(clip.root_pos),
        "root_quat_wxyz": slerp(clip.root_quat_wxyz[f0], clip.root_quat_wxyz[f1], blend),
        "root_lin_vel": lerp(clip.root_lin_vel),
        "root_ang_vel": lerp(clip.root_ang_vel),
        "dof_pos": interpolate_hinges(clip.dof_pos[f0], clip.dof_pos[f1], blend, chains_by_axes(skeleton)),
        "dof_vel": lerp(clip.dof_vel),
    }


def _resolve_clip(motion: str | None, info: dict) -> tuple[Path, str, float | None, float]:
    """The reference clip (path, ground, fps, root_vel_sigma): ``motion`` if given, else the one the
    policy was trained on (exports before policy.json named it: the task's default clip)."""
    from isaacgymenvs.task_registry import get_task, resolve_motion_file, task_for_clip

    spec = get_task(info["task"])
    dep = info.get("motion") or {}
    name = motion or dep.get("file") or spec.default_clip
    if not motion or motion == dep.get("file"):
        ground = dep.get("ground", spec.motion_ground)
    else:  # another clip: the ground correction its own format trains with
        ground = task_for_clip(motion).motion_ground
    return resolve_motion_file(name, spec.clip_dir), ground, dep.get("fps"), float(dep.get("root_vel_sigma") or 0.0)


def load_policy_info(policy_dir) -> dict:
    """``policy.json`` of an export folder (which must hold ``policy.onnx`` too)."""
    policy_dir = Path(policy_dir)
    for f in ("policy.onnx", "policy.json"):
        if not (policy_dir / f).is_file():
            raise FileNotFoundError(f"{policy_dir}: no {f}; export a checkpoint with `python -m isaacgymenvs.export`")
    return json.loads((policy_dir / "policy.json").read_text())


def deployment(info: dict, model: str = "eval", where: str = "policy.json", **overrides):
    """``(character spec, MjModel, Deployment)`` of a parsed ``policy.json``: the character's
    evaluation model (``model="eval"``) or training model (``"train"``) with the json's PD gains."""
    from isaacgymenvs import characters
    from isaacgymenvs.task_registry import UnknownTaskError, get_task

    try:
        task_spec = get_task(info["task"])
    except UnknownTaskError as e:
        raise ValueError(f"{where}: policy.json is for a task this version does not know: {e}") from None
    if model not in ("eval", "train"):
        raise ValueError(f"model must be 'eval' (the full model) or 'train' (the training model), got {model!r}")
    spec = characters.get_character(info.get("character") or task_spec.character.name)
    pd = info["pd_gains"]
    m = characters.load_model(spec, variant=model, pd_gains=(pd["kp"], pd["kd"]), torque_limit=pd.get("torque_limit"))
    try:
        dep = Deployment(m, info, spec.key_bodies, spec.contact_bodies, **overrides)
    except ValueError as e:
        raise ValueError(f"{where}: {e} ({spec.name} model)") from None
    return spec, m, dep


def run(
    policy_dir,
    episodes: int = 10,
    motion: str | None = None,
    video: str | None = None,
    seed: int = 0,
    episode_length: int | None = None,
    termination_height: float | None = None,
    amp_steps: int | None = None,
    model: str = "eval",
) -> dict:
    """Run the export in the character's evaluation model (``model="eval"``: for the G1 the full-mesh
    scene.xml) or its training model (``"train"``: tells the policy's own failures from the gap
    between the two), with the PD gains, action mapping, key bodies and fall test of its ``policy.json``."""
    from isaacgymenvs import eval_metrics
    from isaacgymenvs.motion.loader import load_clip

    policy_dir = Path(policy_dir)
    info = load_policy_info(policy_dir)
    spec, m, dep = deployment(
        info,
        model,
        where=str(policy_dir),
        episode_length=episode_length,
        termination_height=termination_height,
        amp_steps=amp_steps,
    )
    task = info["task"]
    k, rules, control_dt = dep.amp_steps, dep.rules, dep.control_dt
    motion_path, ground, fps, root_vel_sigma = _resolve_clip(motion, info)
    clip = load_clip(motion_path, dep.skeleton, m, ground=ground, fps=fps, root_vel_sigma=root_vel_sigma)

    # reference AMP observations: the clip every control period, each frame with its history
    frames = resample(clip, control_dt, dep.skeleton)
    n_frames = len(frames["root_pos"])
    if n_frames < k + 1:
        raise ValueError(f"{motion_path}: {clip.duration_s:.2f} s is too short for {k} AMP steps of {control_dt:.3f} s")
    frame_obs = dep.frame_obs(frames)
    ref = terms.amp_windows(frame_obs, k)  # row i: the frame i + k - 1 and its history
    mean, std = eval_metrics.reference_stats(ref)
    # the score's anchors, as the trainer's evaluation takes them: reference states that are not in the
    # set (half a control period later), and the character standing still in its default pose
    fresh_frames = resample(clip, control_dt, dep.skeleton, offset=0.5 * control_dt)
    fresh = terms.amp_windows(dep.frame_obs(fresh_frames), k)
    nn_ref = float(eval_metrics.nn_dist(fresh, ref, mean, std)) if len(fresh) else 0.0
    still = info.get("default_pose") or {}
    d = mujoco.MjData(m)
    root_h = float(still.get("root_height") or 0.89)  # exports before default_pose: the humanoid's
    dof0 = np.asarray(still.get("dof_pos") or np.zeros(m.nq - 7), dtype=np.float64)
    mjstate.write(m, d, [0.0, 0.0, root_h], [1.0, 0.0, 0.0, 0.0], np.zeros(3), np.zeros(3), dof0, np.zeros(m.nv - 6))
    nn_still = float(eval_metrics.nn_dist(terms.amp_obs(terms.history_of(dep.observe(d), k)), ref, mean, std))

    policy = OnnxPolicy(policy_dir, info)
    rng = np.random.default_rng(seed)
    recorder = None
    fell, lengths, agent_amp = [], [], []
    for ep in range(episodes):
        t0 = int(rng.integers(k - 1, n_frames))
        dep.write_frame(d, frames, t0)
        hist = ref[t0 - (k - 1)].reshape(1, k, -1)  # the reference state's history, newest first
        obs = dep.observe(d)
        policy.reset()  # an LSTM policy starts every episode from a zero state, as in training
        if video and ep == 0:
            from isaacgymenvs.video import VideoRecorder

            recorder = VideoRecorder(m, video, fps=0.5 / control_dt)  # every 2nd control step, in real time
        progress = 0
        while True:
            bad = dep.control_step(d, policy(obs))
            progress += 1
            out = dep.after_step(d, hist, progress, bad)
            obs, hist = out.obs, out.amp_hist
            if not out.unstable[0]:  # a blown-up transition is not evaluated (as in the trainer's evaluation)
                agent_amp.append(terms.amp_obs(hist)[0])
            if recorder is not None and progress % 2 == 0:
                recorder.capture_data(d)
            if out.terminated[0] or out.truncated[0]:
                break
        fell.append(bool(out.terminated[0]))
        lengths.append(progress)
        # the video: whole episodes, one after another, until it shows VIDEO_MIN_S (or every episode ran)
        if recorder is not None and (len(recorder.frames) * 2 * control_dt >= VIDEO_MIN_S or ep == episodes - 1):
            if not recorder.frames:
                recorder.capture_data(d)
            out_video = recorder.save()
            out_video["video_episodes"] = ep + 1
            out_video["video_s"] = round(len(recorder.frames) * 2 * control_dt, 3)
            recorder = None
    fall_rate, survival = eval_metrics.episode_stats(np.array(fell), np.array(lengths), rules.episode_length - 1)
    nn = float(eval_metrics.nn_dist(np.array(agent_amp), ref, mean, std)) if agent_amp else float("nan")
    out = {
        "policy": str(policy_dir),
        "task": task,
        "mjcf": (spec.eval_mjcf or spec.mjcf) if model == "eval" else spec.mjcf,
        "motion": str(motion_path),
        "episodes": episodes,
        # the trainer's eval/* numbers, computed the same way (isaacgymenvs/eval_metrics.py)
        "fall_rate": fall_rate,
        "survival": survival,
        "mean_episode_length": float(np.mean(lengths)),
        "motion_nn_dist": nn,
        "score": float(eval_metrics.score(survival, nn, nn_still, nn_ref)) if agent_amp else 0.0,
        "nn_dist_standing_still": nn_still,
        "nn_dist_reference": nn_ref,
    }
    if video:
        out.update(out_video)
    return out


def main(argv=None) -> int:
    from isaacgymenvs.utils.cli import parse_kv, run_json
    from isaacgymenvs.video import RenderUnavailableError

    args = parse_kv(
        sys.argv[1:] if argv is None else argv, {"policy", "episodes", "motion", "video", "seed", "model"}, {"policy"}
    )
    if args is None:
        print(
            "usage: python -m isaacgymenvs.sim2sim policy=EXPORT_DIR [episodes=N] [motion=CLIP] "
            "[video=out.gif|none] [seed=S] [model=eval|train]",
            file=sys.stderr,
        )
        return 2
    if args["policy"].startswith("models:/"):  # the registry is above this package (tracking)
        print(
            f"error: policy={args['policy']} is a registered model: run `python -m sweeps.sim2sim "
            f"policy={args['policy']} ...` (or amp-sim2sim), which downloads it from the MLflow store",
            file=sys.stderr,
        )
        return 2
    video = args.get("video")
    if video is not None and video.strip().lower() in ("", "none", "0", "false", "no"):
        video = None

    def go() -> dict:
        return run(
            args["policy"],
            int(args.get("episodes", 10)),
            args.get("motion"),
            video,
            int(args.get("seed", 0)),
            model=args.get("model", "eval"),
        )

    return run_json(go, (FileNotFoundError, ValueError, RenderUnavailableError))


if __name__ == "__main__":
    sys.exit(main())
