"""Task names and their characters, importable without torch (sim2sim, tools)."""

from __future__ import annotations

from pathlib import Path

from isaacgymenvs import assets

#: task name -> (character, asset folder of its clips)
TASKS = {
    "HumanoidAMP": ("amp_humanoid", "amp_humanoid/motions"),
    # IsaacGymEnvs' variant whose hands may touch the ground (cartwheels)
    "HumanoidAMPHands": ("amp_humanoid", "amp_humanoid/motions"),
    "G1AMP": ("unitree_g1", "unitree_g1/motions"),
}


def find_clip(name: str) -> tuple[Path, bool]:
    """A clip named on a command line: the path as given when it exists, else a bundled clip of any
    character (``amp_humanoid_walk.npy``, ``g1_moves/B_HandsUp.csv``). Returns the path and whether it
    was found among the bundled clips."""
    p = Path(name).expanduser()
    if p.exists() or p.is_absolute():
        return p, False
    for _, motion_dir in TASKS.values():
        try:
            return assets.asset_path(f"{motion_dir}/{p.as_posix()}"), True
        except assets.AssetError:
            continue
    dirs = " or ".join(f"{d}/" for _, d in TASKS.values())
    raise FileNotFoundError(f"{name}: no such file (relative to {Path.cwd()}), and no bundled clip of that name under {dirs}")


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
        for task, (_, other_dir) in TASKS.items():  # a bundled clip of another character
            if other_dir != motion_dir:
                try:
                    found = assets.asset_path(f"{other_dir}/{p.as_posix()}")
                except assets.AssetError:
                    continue
                raise FileNotFoundError(
                    f"motion_file {motion_file!r} is a clip of task {task} ({other_dir}/), not of this task "
                    f"(its clips are under {motion_dir}/)"
                    + (f"; make a G1 clip of it with: python -m isaacgymenvs.motion retarget {found} "
                       f"--robot g1 --out {p.stem}_g1.csv" if motion_dir.startswith("unitree_g1") else "")
                ) from None
        if len(p.parts) > 1:
            raise FileNotFoundError(
                f"motion_file {motion_file!r} is neither a file (relative to {Path.cwd()}) nor a bundled clip "
                f"under {motion_dir}/"
            ) from None
        raise e


def task_env_config(task: str) -> dict:
    """The ``env:`` section of ``cfg/task/<task>.yaml`` (Hydra interpolations left unresolved)."""
    import yaml

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(TASKS)}")
    path = Path(__file__).resolve().parents[1] / "cfg" / "task" / f"{task}.yaml"
    return dict(yaml.safe_load(path.read_text())["env"])


def task_control_dt(task: str) -> float:
    """The control period of a task (s): ``sim.dt * env.controlFrequencyInv`` of its config."""
    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "cfg" / "task" / f"{task}.yaml").read_text())
    return float(doc["sim"]["dt"]) * float(doc["env"].get("controlFrequencyInv", 1))


def task_model(task: str, variant: str = "train"):
    """The task's prepared ``MjModel`` with the PD gains of its config (what the trainer simulates)."""
    from isaacgymenvs import characters

    return characters.load_model(TASKS[task][0], variant, pd_gains=task_env_config(task).get("pdGains"))
