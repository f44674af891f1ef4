"""Character models: which MJCF, which bodies matter, and how the model is prepared.

A character is loaded through :func:`load_model`, which applies, at load time and never by
editing the file:

* the missing ``grid`` material of ``amp_humanoid.xml`` (the file does not compile without it);
* Isaac Gym's PD semantics: the MJCF joint ``stiffness``/``damping`` are PD gains in Isaac Gym
  (``DOF_MODE_POS``) but passive springs in MuJoCo. They are zeroed on the joints and moved
  into the actuators, which become PD servos ``tau = kp (target - q) - kd qdot`` with the
  torque clipped to the motor's ``gear`` (its peak torque at ``ctrl = 1``);
* the ``implicitfast`` integrator, so the PD damping is integrated implicitly, as PhysX's
  drives are;
* for a robot whose MJCF already has ``position`` servos (the G1), the gains of the real robot's
  joint controller instead of the file's (:func:`apply_pd_gains`, gains by joint-name pattern
  from the task config), the torque limited to each joint's ``actuatorfrcrange``;
* marker bodies: massless bodies welded to a parent (the G1 has no head body; ``head`` is a
  point fixed in ``torso_link``), so that key-body positions come from the same kinematics
  in the simulator and in the MotionLib.

A character has a training model (``mjcf``: for the G1 the primitive-collider ``scene_mjx.xml``)
and an evaluation model for sim2sim (``eval_mjcf``: the full-mesh ``scene.xml``).

Both the CPU backend and the MuJoCo Warp backend load the same prepared model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import mujoco
import numpy as np

from isaacgymenvs import assets
from isaacgymenvs.sim.actuators import actuator_dof_index  # re-exported: characters.actuator_dof_index


@dataclass(frozen=True)
class CharacterSpec:
    """Static description of a character."""

    name: str
    #: MJCF path relative to the asset root.
    mjcf: str
    #: Bodies whose positions (relative to the root, heading frame) enter the observation.
    key_bodies: tuple[str, ...]
    #: Bodies allowed to touch the ground without ending the episode.
    contact_bodies: tuple[str, ...]
    #: Take PD gains from the MJCF joint stiffness/damping (Isaac Gym's reading of the file).
    pd_gains_from_mjcf: bool = True
    #: Add a ``grid`` material when the file refers to one it does not define.
    add_grid_material: bool = True
    #: Full-detail model for sim2sim evaluation (None: ``mjcf``).
    eval_mjcf: str | None = None
    #: ``(name, parent body, position in the parent frame)`` of massless marker bodies to add.
    marker_bodies: tuple[tuple[str, str, tuple[float, float, float]], ...] = ()
    #: Keyframe of ``mjcf`` holding the default standing pose (None: all joints at zero).
    default_keyframe: str | None = None
    #: Asset folder of the character's bundled clips (a relative clip name is looked up there).
    motion_dir: str = ""
    #: File suffixes of the character's clip format (lower case; a ``.yaml`` motion list may name either).
    clip_suffixes: tuple[str, ...] = (".npy", ".npz")
    #: ``python -m isaacgymenvs.motion retarget --robot NAME`` that makes this character's clips from
    #: AMP humanoid clips (None: no retargeting to it).
    retarget_robot: str | None = None
    extra: dict = field(default_factory=dict)


HUMANOID = CharacterSpec(
    name="amp_humanoid",
    mjcf="amp_humanoid/amp_humanoid.xml",
    key_bodies=("right_hand", "left_hand", "right_foot", "left_foot"),
    contact_bodies=("right_foot", "left_foot"),
    motion_dir="amp_humanoid/motions",
)

G1 = CharacterSpec(
    name="unitree_g1",
    mjcf="unitree_g1/scene_mjx.xml",
    eval_mjcf="unitree_g1/scene.xml",
    key_bodies=("left_ankle_roll_link", "right_ankle_roll_link", "left_wrist_yaw_link", "right_wrist_yaw_link", "head"),
    contact_bodies=("left_ankle_pitch_link", "left_ankle_roll_link", "right_ankle_pitch_link", "right_ankle_roll_link"),
    pd_gains_from_mjcf=False,
    add_grid_material=False,
    # the centroid of the head_link mesh in the torso_link frame (motion/g1.py HEAD_OFFSET_IN_TORSO)
    marker_bodies=(("head", "torso_link", (0.0076509, 0.0000248, 0.3851318)),),
    default_keyframe="home",
    motion_dir="unitree_g1/motions",
    clip_suffixes=(".csv",),
    retarget_robot="g1",
)

CHARACTERS = {"amp_humanoid": HUMANOID, "unitree_g1": G1}


def get_character(name: str) -> CharacterSpec:
    try:
        return CHARACTERS[name]
    except KeyError:
        raise ValueError(f"unknown character {name!r}; known: {sorted(CHARACTERS)}") from None


def _add_grid_material(spec: mujoco.MjSpec) -> None:
    if any(m.name == "grid" for m in spec.materials):
        return
    spec.add_texture(
        name="grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        width=256,
        height=256,
        rgb1=[0.25, 0.3, 0.35],
        rgb2=[0.15, 0.2, 0.25],
    )
    mat = spec.add_material(name="grid", texrepeat=[8, 8], reflectance=0.1)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"


def _motors_to_pd(spec: mujoco.MjSpec) -> None:
    """Turn each joint motor into a PD servo with the joint's MJCF stiffness/damping as gains."""
    joints = {j.name: j for j in spec.joints}
    for act in spec.actuators:
        joint = joints.get(act.target)
        if joint is None or act.trntype != mujoco.mjtTrn.mjTRN_JOINT:
            raise ValueError(f"actuator {act.name!r} does not drive a joint; cannot build PD control")
        kp = float(np.ravel(joint.stiffness)[0])
        kd = float(np.ravel(joint.damping)[0])
        peak = float(act.gear[0])
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        gain = np.zeros(10)
        gain[0] = kp
        bias = np.zeros(10)
        bias[1] = -kp
        bias[2] = -kd
        act.gainprm = gain
        act.biasprm = bias
        act.gear = [1, 0, 0, 0, 0, 0]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-peak, peak]
        joint.stiffness = np.zeros_like(np.ravel(joint.stiffness))
        joint.damping = np.zeros_like(np.ravel(joint.damping))


def _add_marker_bodies(spec: mujoco.MjSpec, markers) -> None:
    for name, parent, pos in markers:
        body = spec.body(parent)
        if body is None:
            raise ValueError(f"marker body {name!r}: the model has no parent body {parent!r}")
        body.add_body(name=name, pos=list(pos))


def load_spec(character: CharacterSpec, variant: str = "train") -> mujoco.MjSpec:
    """The prepared spec of the training model (``variant="train"``) or the sim2sim model (``"eval"``)."""
    if variant not in ("train", "eval"):
        raise ValueError(f"variant must be 'train' or 'eval', got {variant!r}")
    rel = character.eval_mjcf if variant == "eval" and character.eval_mjcf else character.mjcf
    path = assets.asset_path(rel)
    spec = mujoco.MjSpec.from_file(str(path))
    _add_marker_bodies(spec, character.marker_bodies)
    if character.add_grid_material:
        _add_grid_material(spec)
    if character.pd_gains_from_mjcf:
        _motors_to_pd(spec)
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    # The tasks read contact forces from the physics, never the MJCF's touch/force sensors;
    # dropping them saves their kernels on every physics step.
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    return spec


def load_model(
    character: CharacterSpec | str, variant: str = "train", pd_gains: dict | tuple | None = None, torque_limit=None
) -> mujoco.MjModel:
    """Compile the prepared model of a character (see the module docstring); ``pd_gains``
    (joint-name pattern -> ``[kp, kd]``) sets the servo gains (:func:`apply_pd_gains`)."""
    if isinstance(character, str):
        character = get_character(character)
    model = load_spec(character, variant).compile()
    if pd_gains is not None and len(pd_gains):
        apply_pd_gains(model, pd_gains, torque_limit)
    elif not character.pd_gains_from_mjcf and variant == "train":
        raise ValueError(
            f"character {character.name!r} needs PD gains from the task config (task.env.pdGains: "
            "joint-name pattern -> [kp, kd]); the MJCF's servo gains are not the robot's"
        )
    return model


def pd_gains_per_joint(model: mujoco.MjModel, pd_gains: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(kp [D], kd [D])`` in hinge order from ``{pattern: [kp, kd]}``: each hinge name must
    match (``re.search``) exactly one pattern."""
    names = hinge_dof_names(model)
    pats = {}
    for pat, kpkd in pd_gains.items():
        try:
            rx = re.compile(str(pat))
        except re.error as e:
            raise ValueError(f"task.env.pdGains: {pat!r} is not a regular expression ({e})") from None
        if (
            not isinstance(kpkd, (list, tuple))
            or len(kpkd) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in kpkd)
        ):
            raise ValueError(f"task.env.pdGains[{pat!r}] must be [kp, kd] with finite kp, kd >= 0, got {kpkd!r}")
        pats[rx] = (float(kpkd[0]), float(kpkd[1]))
    kp, kd = np.zeros(len(names)), np.zeros(len(names))
    unmatched, ambiguous = [], []
    for i, n in enumerate(names):
        hits = [g for rx, g in pats.items() if rx.search(n)]
        if not hits:
            unmatched.append(n)
        elif len(hits) > 1:
            ambiguous.append(n)
        else:
            kp[i], kd[i] = hits[0]
    if unmatched or ambiguous:
        raise ValueError(
            "task.env.pdGains must give every joint exactly one [kp, kd]: "
            + (f"no pattern matches {unmatched}" if unmatched else "")
            + ("; " if unmatched and ambiguous else "")
            + (f"several patterns match {ambiguous}" if ambiguous else "")
            + f" (patterns: {list(pd_gains)})"
        )
    return kp, kd


def apply_pd_gains(model: mujoco.MjModel, pd_gains: dict | tuple, torque_limit=None) -> None:
    """Make every actuator a PD servo ``tau = kp (target - q) - kd qdot`` with the given gains,
    its torque limited to the joint's ``actuatorfrcrange`` (when the joint has one).

    ``pd_gains``: ``{pattern: [kp, kd]}`` (see :func:`pd_gains_per_joint`) or ``(kp [D], kd [D])``
    arrays in hinge order; ``torque_limit`` ``[D]`` (None entries: unlimited) overrides the
    joints' ranges. Changes the compiled model in place; both backends read it."""
    if isinstance(pd_gains, dict):
        kp, kd = pd_gains_per_joint(model, pd_gains)
    else:
        kp, kd = (np.asarray(x, dtype=np.float64) for x in pd_gains)
    act_dof = actuator_dof_index(model)
    if len(kp) != len(hinge_dof_names(model)) or len(kd) != len(kp):
        raise ValueError(f"PD gains for {len(kp)} joints, the model has {len(hinge_dof_names(model))}")
    for a, d in enumerate(act_dof):
        j = model.actuator_trnid[a, 0]
        model.actuator_gaintype[a] = mujoco.mjtGain.mjGAIN_FIXED
        model.actuator_biastype[a] = mujoco.mjtBias.mjBIAS_AFFINE
        model.actuator_gainprm[a, :] = 0.0
        model.actuator_biasprm[a, :] = 0.0
        model.actuator_gainprm[a, 0] = kp[d]
        model.actuator_biasprm[a, 1] = -kp[d]
        model.actuator_biasprm[a, 2] = -kd[d]
        model.actuator_gear[a, :] = 0.0
        model.actuator_gear[a, 0] = 1.0
        lim = model.jnt_actfrcrange[j]
        if torque_limit is not None:
            t = torque_limit[d]
            lim = np.array([0.0, 0.0]) if t is None or not math.isfinite(t) else np.array([-t, t])
        if lim[1] > lim[0]:
            model.actuator_forcelimited[a] = 1
            model.actuator_forcerange[a] = lim
        elif torque_limit is not None:
            model.actuator_forcelimited[a] = 0


def default_pose(model: mujoco.MjModel, character: CharacterSpec) -> tuple[float, np.ndarray]:
    """``(root height, joint angles [D])`` of the character's default standing pose."""
    D = len(hinge_dof_names(model))
    if character.default_keyframe is None:
        return None, np.zeros(D)
    k = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, character.default_keyframe)
    if k < 0:
        raise ValueError(f"{character.mjcf} has no keyframe {character.default_keyframe!r}")
    qpos = model.key_qpos[k]
    return float(qpos[2]), np.array(qpos[7 : 7 + D])


def pd_gains_arrays(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """``(kp [D], kd [D])`` of the model's PD servos in hinge order."""
    D = len(hinge_dof_names(model))
    kp, kd = np.zeros(D), np.zeros(D)
    for a, d in enumerate(actuator_dof_index(model)):
        kp[d], kd[d] = model.actuator_gainprm[a, 0], -model.actuator_biasprm[a, 2]
    return kp, kd


def torque_limits(model: mujoco.MjModel) -> np.ndarray:
    """``[D]`` peak torque of each joint's servo in hinge order (inf where unlimited)."""
    out = np.full(len(hinge_dof_names(model)), np.inf)
    for a, d in enumerate(actuator_dof_index(model)):
        if model.actuator_forcelimited[a]:
            out[d] = model.actuator_forcerange[a, 1]
    return out


def hinge_dof_names(model: mujoco.MjModel) -> list[str]:
    """Names of the actuated (non-free) joints in qpos order; one DoF each."""
    names = []
    for j in range(model.njnt):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            continue
        if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
            raise ValueError(f"joint {model.joint(j).name!r} is not a hinge; only hinge DoFs are supported")
        names.append(model.joint(j).name)
    return names
