"""The task registry: one typed description of every task, importable without torch (sim2sim, export, tools).

A task (``task=<name>`` on the command line) is a character of :mod:`isaacgymenvs.characters` (its
MJCF, bodies, model preparation, clip folder and clip format) and two Hydra configs:
``cfg/task/<task_config>.yaml`` (the ``env:`` and ``sim:`` keys: clip, bodies, gains, timing) and
``cfg/train/<train_config>.yaml`` (the learner; what ``train=`` defaults to). The values a user
tunes are written once, in those YAML files: :class:`TaskSpec` reads its defaults (default clip,
key and contact bodies, ground correction, control period) from the composed task config.

Code outside this module asks the registry (:func:`get_task`, :func:`task_for_clip`,
:func:`task_for_robot`, :func:`task_for_character`) instead of comparing task or character names.
"""

from __future__ import annotations

import copy
import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

from isaacgymenvs import assets, characters
from isaacgymenvs.characters import CharacterSpec

CFG_DIR = Path(__file__).resolve().parents[1] / "cfg"

#: Suffixes of a motion list (``motions: [{file, weight}]``), which may name clips of any format.
MOTION_LIST_SUFFIXES = (".yaml", ".yml")


class UnknownTaskError(ValueError):
    """A task name the registry does not know (one line, listing the known tasks)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: ``task=<name>``."""

    #: The task name of the command line (``task=HumanoidAMP``) and of checkpoints and exports.
    name: str
    #: The simulated character: MJCF (training and sim2sim models), PD gains, marker bodies, clip folder and format.
    character: CharacterSpec
    #: ``cfg/task/<task_config>.yaml``: the task's ``env:`` and ``sim:`` keys.
    task_config: str
    #: ``cfg/train/<train_config>.yaml``: the learner ``train=`` defaults to (config.yaml: ``train: ${task}PPO``).
    train_config: str

    # ---------------------------------------------------------------- the character's
    @property
    def clip_dir(self) -> str:
        """Asset folder of the task's bundled clips (``amp_humanoid/motions``)."""
        return self.character.motion_dir

    @property
    def mjcf(self) -> str:
        """Training model, relative to the asset root."""
        return self.character.mjcf

    @property
    def eval_mjcf(self) -> str:
        """sim2sim's evaluation model (the training model when the character has no other)."""
        return self.character.eval_mjcf or self.character.mjcf

    # ---------------------------------------------------------------- the task config's
    def config(self) -> dict:
        """``cfg/task/<task_config>.yaml`` with its defaults list composed (Hydra interpolations
        such as ``numEnvs: ${resolve_default:...}`` left unresolved); a fresh copy each call."""
        return copy.deepcopy(_task_yaml(self.task_config))

    def env_config(self) -> dict:
        """The ``env:`` section of :meth:`config`."""
        return dict(self.config().get("env") or {})

    def sim_config(self) -> dict:
        """The ``sim:`` section of :meth:`config`."""
        return dict(self.config().get("sim") or {})

    @property
    def default_clip(self) -> str:
        """The clip the task trains on by default (``task.env.motion_file``); sim2sim's and export's
        reference when a checkpoint does not name one."""
        return str(self.env_config()["motion_file"])

    @property
    def key_bodies(self) -> tuple[str, ...]:
        """Bodies whose root-relative positions enter the observation (``task.env.keyBodies``)."""
        return tuple(self.env_config().get("keyBodies", self.character.key_bodies))

    @property
    def contact_bodies(self) -> tuple[str, ...]:
        """Bodies that may touch the ground without ending the episode (``task.env.contactBodies``)."""
        return tuple(self.env_config().get("contactBodies", self.character.contact_bodies))

    @property
    def motion_ground(self) -> str:
        """Ground correction of the task's clips (``task.env.motion_ground``)."""
        return str(self.env_config().get("motion_ground", "rolling_min"))

    @property
    def control_dt(self) -> float:
        """Control period (s): ``sim.dt * env.controlFrequencyInv``."""
        return float(self.sim_config()["dt"]) * float(self.env_config().get("controlFrequencyInv", 1))

    def model(self, variant: str = "train"):
        """The task's prepared ``MjModel`` (``variant``: ``train`` or ``eval``) with the PD gains of
        its config: what the trainer simulates."""
        return characters.load_model(self.character, variant, pd_gains=self.env_config().get("pdGains"))


_SPECS = (
    TaskSpec("HumanoidAMP", characters.HUMANOID, task_config="HumanoidAMP", train_config="HumanoidAMPPPO"),
    # IsaacGymEnvs' variant whose hands may touch the ground (cartwheels)
    TaskSpec(
        "HumanoidAMPHands", characters.HUMANOID, task_config="HumanoidAMPHands", train_config="HumanoidAMPHandsPPO"
    ),
    TaskSpec("G1AMP", characters.G1, task_config="G1AMP", train_config="G1AMPPPO"),
)

#: task name -> TaskSpec. A character's first task here is its main one (:func:`task_for_character`).
REGISTRY: dict[str, TaskSpec] = {t.name: t for t in _SPECS}

#: The older view of the registry, kept for its callers: task name -> (character name, clip folder).
TASKS: dict[str, tuple[str, str]] = {t.name: (t.character.name, t.clip_dir) for t in _SPECS}


def task_names() -> list[str]:
    return sorted(REGISTRY)


def get_task(name: str) -> TaskSpec:
    """The task called ``name``; an unknown name is an :class:`UnknownTaskError` naming the known tasks."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), REGISTRY, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UnknownTaskError(f"unknown task {name!r}{hint}; known tasks: {', '.join(task_names())}") from None


def task_for_character(character: str | CharacterSpec) -> TaskSpec:
    """The main task of a character (by name, ``amp_humanoid``, or spec): its first registered task."""
    name = character.name if isinstance(character, CharacterSpec) else str(character)
    for t in _SPECS:
        if t.character.name == name:
            return t
    raise ValueError(f"no task trains character {name!r}; characters: {', '.join(sorted(characters.CHARACTERS))}")


def task_for_robot(robot: str) -> TaskSpec:
    """The main task of a robot named as ``motion retarget --robot`` names it (``g1``) or by its
    character name (``unitree_g1``)."""
    for t in _SPECS:
        if robot in (t.character.retarget_robot, t.character.name):
            return t
    robots = sorted({t.character.retarget_robot for t in _SPECS if t.character.retarget_robot})
    raise ValueError(
        f"unknown robot {robot!r}; robots: {', '.join(robots)} (or a character: "
        f"{', '.join(sorted(characters.CHARACTERS))})"
    )


def character_for_clip(path) -> CharacterSpec:
    """The character whose clip format the file has, by its suffix (``.npy``/``.npz``: the AMP
    humanoid, ``.csv``: the G1); a motion list (``.yaml``) by its first entry."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in MOTION_LIST_SUFFIXES:
        import yaml

        try:
            entries = (yaml.safe_load(p.read_text()) or {}).get("motions") or []
            first = entries[0]["file"] if isinstance(entries[0], dict) else entries[0]
        except (OSError, yaml.YAMLError, AttributeError, IndexError, KeyError, TypeError):
            raise ValueError(f"{path}: not a motion list (motions: [{{file, weight}}, ...])") from None
        return character_for_clip(p.parent / str(first))
    for c in characters.CHARACTERS.values():
        if suffix in c.clip_suffixes:
            return c
    known = ", ".join(f"{s} ({c.name})" for c in characters.CHARACTERS.values() for s in c.clip_suffixes)
    raise ValueError(
        f"{path}: no character's clips end in {suffix or '(no suffix)'!r}; clip formats: {known}, "
        f"or a {'/'.join(MOTION_LIST_SUFFIXES)} motion list"
    )


def task_for_clip(path) -> TaskSpec:
    """The main task of the character whose clips have this file's format (:func:`character_for_clip`)."""
    return task_for_character(character_for_clip(path))


def _motion_dirs() -> list[str]:
    return list(dict.fromkeys(c.motion_dir for c in characters.CHARACTERS.values() if c.motion_dir))


def find_clip(name: str) -> tuple[Path, bool]:
    """A clip named on a command line: the path as given when it exists, else a bundled clip of any
    character (``amp_humanoid_walk.npy``, ``g1_moves/B_HandsUp.csv``). Returns the path and whether it
    was found among the bundled clips."""
    p = Path(name).expanduser()
    if p.exists() or p.is_absolute():
        return p, False
    for motion_dir in _motion_dirs():
        try:
            return assets.asset_path(f"{motion_dir}/{p.as_posix()}"), True
        except assets.AssetError:
            continue
    dirs = " or ".join(f"{d}/" for d in _motion_dirs())
    raise FileNotFoundError(
        f"{name}: no such file (relative to {Path.cwd()}), and no bundled clip of that name under {dirs}"
    )


def resolve_motion_file(motion_file: str, motion_dir: str) -> Path:
    """A path as given (absolute or relative to the working directory), else a bundled clip
    (relative to the task's clip folder, e.g. ``amp_retarget/g1_from_amp_walk.csv``)."""
    p = Path(motion_file).expanduser()
    if p.exists():
        return p
    if p.is_absolute():
        raise FileNotFoundError(f"motion_file {motion_file!r} does not exist")
    try:
        return assets.asset_path(f"{motion_dir}/{p.as_posix()}")
    except assets.AssetError as e:
        mine = next((c for c in characters.CHARACTERS.values() if c.motion_dir == motion_dir), None)
        for other in characters.CHARACTERS.values():  # a bundled clip of another character
            if other.motion_dir in ("", motion_dir):
                continue
            try:
                found = assets.asset_path(f"{other.motion_dir}/{p.as_posix()}")
            except assets.AssetError:
                continue
            robot = mine.retarget_robot if mine is not None else None
            raise FileNotFoundError(
                f"motion_file {motion_file!r} is a clip of task {task_for_character(other).name} ({other.motion_dir}/), "
                f"not of this task (its clips are under {motion_dir}/)"
                + (
                    f"; make a {robot.upper()} clip of it with: python -m isaacgymenvs.motion retarget {found} "
                    f"--robot {robot} --out {p.stem}_{robot}.csv"
                    if robot
                    else ""
                )
            ) from None
        if len(p.parts) > 1:
            raise FileNotFoundError(
                f"motion_file {motion_file!r} is neither a file (relative to {Path.cwd()}) nor a bundled clip "
                f"under {motion_dir}/"
            ) from None
        raise e


# -------------------------------------------------------------------- the task configs
@functools.cache
def _task_yaml(name: str) -> dict:
    """``cfg/task/<name>.yaml`` with its Hydra defaults list (``defaults: [Parent, _self_]``) merged
    in order, as Hydra composes the task group; interpolations unresolved."""
    import yaml
    from omegaconf import OmegaConf

    path = CFG_DIR / "task" / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such task config")
    doc = yaml.safe_load(path.read_text()) or {}
    defaults = list(doc.pop("defaults", None) or [])
    if "_self_" not in defaults:
        defaults.append("_self_")
    merged = OmegaConf.create({})
    for entry in defaults:
        if not isinstance(entry, str):
            raise ValueError(f"{path}: defaults entry {entry!r}: only names of other task configs are supported")
        merged = OmegaConf.merge(merged, OmegaConf.create(doc if entry == "_self_" else _task_yaml(entry)))
    return OmegaConf.to_container(merged, resolve=False)


def task_env_config(task: str) -> dict:
    """The ``env:`` section of the task's composed config (Hydra interpolations left unresolved)."""
    return get_task(task).env_config()


def task_control_dt(task: str) -> float:
    """The control period of a task (s): ``sim.dt * env.controlFrequencyInv`` of its config."""
    return get_task(task).control_dt


def task_model(task: str, variant: str = "train"):
    """The task's prepared ``MjModel`` with the PD gains of its config (what the trainer simulates)."""
    return get_task(task).model(variant)
