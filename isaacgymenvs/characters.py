"""Character models: which MJCF, which bodies matter, and how the model is prepared.

A character is loaded through :func:`load_model`, which applies, at load time and never by
editing the file:

* the missing ``grid`` material of ``amp_humanoid.xml`` (the file does not compile without it);
* Isaac Gym's PD semantics: the MJCF joint ``stiffness``/``damping`` are PD gains in Isaac Gym
  (``DOF_MODE_POS``) but passive springs in MuJoCo. They are zeroed on the joints and moved
  into the actuators, which become PD servos ``tau = kp (target - q) - kd qdot`` with the
  torque clipped to the motor's ``gear`` (its peak torque at ``ctrl = 1``);
* the ``implicitfast`` integrator, so the PD damping is integrated implicitly, as PhysX's
  drives are.

Both the CPU backend and the MuJoCo Warp backend load the same prepared model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from isaacgymenvs import assets


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
    extra: dict = field(default_factory=dict)


HUMANOID = CharacterSpec(
    name="amp_humanoid",
    mjcf="amp_humanoid/amp_humanoid.xml",
    key_bodies=("right_hand", "left_hand", "right_foot", "left_foot"),
    contact_bodies=("right_foot", "left_foot"),
)

CHARACTERS = {"amp_humanoid": HUMANOID}


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


def load_spec(character: CharacterSpec) -> mujoco.MjSpec:
    path = assets.asset_path(character.mjcf)
    spec = mujoco.MjSpec.from_file(str(path))
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


def load_model(character: CharacterSpec | str) -> mujoco.MjModel:
    """Compile the prepared model of a character (see the module docstring)."""
    if isinstance(character, str):
        character = get_character(character)
    return load_spec(character).compile()


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


def actuator_dof_index(model: mujoco.MjModel) -> np.ndarray:
    """For each actuator, the index of its joint among the hinge DoFs (transmission table)."""
    free_dofs = int(sum(6 for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE))
    out = np.empty(model.nu, dtype=np.int64)
    for a in range(model.nu):
        if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
            raise ValueError(f"actuator {model.actuator(a).name!r} does not drive a joint")
        j = model.actuator_trnid[a, 0]
        out[a] = model.jnt_dofadr[j] - free_dofs
    return out
