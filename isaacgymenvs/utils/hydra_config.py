"""The Hydra config of a training (``cfg/``): composed from overrides, and what one config changed.

A run's MLflow params are the settings it changed from the defaults of its task and train config
(``task=G1AMP`` and ``train=...`` pick those defaults; every other override is a change), so
:func:`changed_settings` compares a config with the one composed from its config-group choices
alone. It compares the settings as written, before interpolations are resolved: ``num_envs=16``
changes ``num_envs``, not also ``task.env.numEnvs`` (``${resolve_default:4096,${...num_envs}}``
in both), so a value that only follows another setting is never reported twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CFG_DIR = Path(__file__).resolve().parents[2] / "cfg"
#: The config groups of cfg/config.yaml's defaults list: choosing one picks defaults, it changes nothing.
GROUPS = ("task", "train", "tracking")
#: The value reported for a setting the config deleted (``~key``).
DELETED = "<deleted>"


def group_overrides(overrides) -> list[str]:
    """The overrides that choose a config group (``task=G1AMP``, ``train=...``, ``tracking=none``)."""
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in GROUPS]


def compose(overrides):
    """The config ``python isaacgymenvs/train.py OVERRIDES`` composes (unresolved ``DictConfig``).
    Works inside ``@hydra.main`` too: the application's Hydra is put back afterwards."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    gh = GlobalHydra.instance()
    app = gh.hydra if gh.is_initialized() else None
    gh.clear()
    try:
        with initialize_config_dir(config_dir=str(CFG_DIR), version_base="1.1"):
            return hydra_compose("config", overrides=list(overrides))
    finally:
        if app is not None:
            GlobalHydra.instance().clear()
            GlobalHydra.instance().initialize(app)


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to ``{"a.b": leaf}``; lists and empty dicts are leaves."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed(config, default) -> dict[str, Any]:
    """``{dotted path: effective (resolved) value}`` of every setting of ``config`` that is new or
    written differently in ``config`` than in ``default`` (both ``DictConfig``, resolvers
    registered); a setting ``config`` deleted maps to :data:`DELETED`."""
    from omegaconf import OmegaConf

    ours = _flat(OmegaConf.to_container(config, resolve=False))
    theirs = _flat(OmegaConf.to_container(default, resolve=False))
    out: dict[str, Any] = {}
    for k, v in ours.items():
        if k not in theirs or not _same(theirs[k], v):
            node = OmegaConf.select(config, k)
            out[k] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    for k in theirs.keys() - ours.keys():
        # a leaf of one side that is a subtree of the other (rnn: {} -> rnn: {name: lstm, ...}) is a change, not a deletion
        if not any(o.startswith(k + ".") or k.startswith(o + ".") for o in ours):
            out[k] = DELETED
    return dict(sorted(out.items()))


def _same(a, b) -> bool:
    """The same setting: equal, and of one type, except that 10 and 10.0 are the same (True and 1 are not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def changed_settings(config, overrides) -> dict[str, Any]:
    """What ``config`` (composed from ``overrides``) changed from the defaults of its config groups."""
    return changed(config, compose(group_overrides(overrides)))
