"""Where the asset files are: the candidate asset folders, in order, and the file or folder for a path.

Lookup (:func:`assets_root_candidates`, first match wins, file by file):

1. ``$AMP_ASSETS_DIR`` if it is set (it is an error if it is set but is not a folder);
2. ``<repo>/../shared/assets`` if that folder exists (``<repo>`` is the folder holding
   the ``isaacgymenvs`` package);
3. the download cache, ``$AMP_ASSETS_CACHE`` or ``~/.cache/amp-sweeps/assets``.

Imports: the standard library and :mod:`isaacgymenvs.assets.manifest` / ``.errors`` only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from isaacgymenvs.assets.errors import AssetConfigError, AssetNotFoundError
from isaacgymenvs.assets.manifest import MANIFEST

__all__ = [
    "ENV_ASSETS_DIR",
    "ENV_ASSETS_CACHE",
    "DEFAULT_CACHE_DIR",
    "PACKAGE_DIR",
    "REPO_ROOT",
    "SHARED_ASSETS_DIR",
    "MISSING_ASSET_HINT",
    "relative_asset_path",
    "cache_dir",
    "assets_root_candidates",
    "asset_path",
    "asset_dir",
]

ENV_ASSETS_DIR = "AMP_ASSETS_DIR"
"""Environment variable: an asset folder to search first (e.g. an offline copy)."""

ENV_ASSETS_CACHE = "AMP_ASSETS_CACHE"
"""Environment variable: where :func:`fetch` stores downloads (default ``~/.cache/amp-sweeps/assets``)."""

DEFAULT_CACHE_DIR = "~/.cache/amp-sweeps/assets"

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The ``isaacgymenvs`` package folder."""
REPO_ROOT = PACKAGE_DIR.parent
SHARED_ASSETS_DIR = REPO_ROOT.parent / "shared" / "assets"
"""``<repo>/../shared/assets``: searched when it exists (tests patch it on this module)."""

MISSING_ASSET_HINT = f"run `make assets` (or set {ENV_ASSETS_DIR} to an asset folder laid out like shared/assets)"
"""The fix a missing-asset message ends with."""


def relative_asset_path(rel: str | os.PathLike[str]) -> PurePosixPath:
    """Validate a path relative to an asset root (no absolute paths, no ``..``)."""
    p = PurePosixPath(os.fspath(rel).replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts or str(p) == ".":
        raise ValueError(f"asset path must be relative to the asset folder, without '..': {rel!r}")
    return p


def cache_dir() -> Path:
    """The download cache: ``$AMP_ASSETS_CACHE`` or ``~/.cache/amp-sweeps/assets`` (may not exist yet)."""
    env = os.environ.get(ENV_ASSETS_CACHE)
    return Path(env).expanduser() if env else Path(DEFAULT_CACHE_DIR).expanduser()


def assets_root_candidates() -> list[Path]:
    """Asset folders to search, in order.

    1. ``$AMP_ASSETS_DIR`` when set. If it is set but is not an existing folder,
       :class:`AssetConfigError` is raised (a typo must not silently fall through).
    2. ``<repo>/../shared/assets`` when that folder exists.
    3. The download cache (:func:`cache_dir`), listed even if it does not exist yet.

    Duplicates (same resolved folder) are listed once.
    """
    roots: list[Path] = []
    env = os.environ.get(ENV_ASSETS_DIR)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise AssetConfigError(
                f"{ENV_ASSETS_DIR}={env} is not an existing folder; unset {ENV_ASSETS_DIR} "
                f"or point it at an asset folder laid out like shared/assets"
            )
        roots.append(p)
    if SHARED_ASSETS_DIR.is_dir():
        roots.append(SHARED_ASSETS_DIR)
    roots.append(cache_dir())
    unique: list[Path] = []
    seen: set[Path] = set()
    for r in roots:
        key = r.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def _not_found(kind: str, rel: PurePosixPath, roots: Sequence[Path]) -> AssetNotFoundError:
    searched = ", ".join(str(r) for r in roots)
    entry = next((a for a in MANIFEST if a.path == str(rel)), None)
    if entry is not None and entry.sha256 is None and entry.url and not entry.local_only:  # `make assets` skips these
        hint = (
            f"it is upstream but has no pinned checksum, so `make assets` does not fetch it: "
            f"`python -m isaacgymenvs.assets fetch {rel} --allow-unverified` stores it and prints its sha256"
        )
    else:
        hint = MISSING_ASSET_HINT
    return AssetNotFoundError(f"asset {kind} '{rel}' not found (searched: {searched}); {hint}")


def asset_path(rel: str | os.PathLike[str]) -> Path:
    """Absolute path of the asset file ``rel`` (e.g. ``"unitree_g1/scene.xml"``).

    Returns the file in the first candidate root (:func:`assets_root_candidates`) that has
    it. Raises :class:`AssetNotFoundError` (a ``FileNotFoundError``) whose one-line
    message names ``rel``, the folders searched and says to run ``make assets``.
    """
    r = relative_asset_path(rel)
    roots = assets_root_candidates()
    for root in roots:
        p = root.joinpath(*r.parts)
        if p.is_file():
            return p
    raise _not_found("file", r, roots)


def asset_dir(rel: str | os.PathLike[str]) -> Path:
    """Absolute path of the asset folder ``rel`` (e.g. ``"unitree_g1"``), first root that has it.

    Use this for a model that references sibling files (an MJCF with its ``meshdir``) so
    that everything is taken from one root. Raises :class:`AssetNotFoundError`.
    """
    r = relative_asset_path(rel)
    roots = assets_root_candidates()
    for root in roots:
        p = root.joinpath(*r.parts)
        if p.is_dir():
            return p
    raise _not_found("folder", r, roots)
