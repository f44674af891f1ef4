"""Third-party assets (character models, meshes, motion clips): manifest, lookup, fetch.

The project does not commit its third-party data. Every file it may use is listed in
:data:`MANIFEST` with its path inside an *asset folder*, the upstream URL pinned to a
commit, and its sha256. An asset folder has the layout of ``shared/assets``::

    amp_humanoid/amp_humanoid.xml
    amp_humanoid/motions/amp_humanoid_walk.npy
    unitree_g1/scene.xml
    unitree_g1/assets/pelvis.STL
    unitree_g1/motions/g1_moves/B_HandsUp.csv
    ...

One idea per module:

* ``manifest.json`` (data) and :mod:`~isaacgymenvs.assets.manifest`: the pinned table, read
  into :data:`MANIFEST`;
* :mod:`~isaacgymenvs.assets.lookup`: the asset folders to search and the file or folder a
  path resolves to (:func:`assets_root_candidates`, :func:`asset_path`, :func:`asset_dir`);
* :mod:`~isaacgymenvs.assets.download`: :func:`fetch` downloads the missing files into the
  cache (``make assets``), checking each against its pinned sha256 before it is moved into
  place; :func:`verify` checks a folder. Files written for this project (format notes, the
  G1 retargets, ...) have no public upstream: they are ``local_only`` entries, found only in
  an existing asset folder such as ``shared/assets``;
* :mod:`~isaacgymenvs.assets.errors`: the exceptions;
* :mod:`~isaacgymenvs.assets.cli`: the command line::

    python -m isaacgymenvs.assets fetch [PATH ...] [--dest DIR] [--allow-unverified]
    python -m isaacgymenvs.assets verify [ROOT ...]
    python -m isaacgymenvs.assets where

Every public name is re-exported here: ``from isaacgymenvs import assets; assets.asset_path(...)``.
``SHARED_ASSETS_DIR`` is read from :mod:`~isaacgymenvs.assets.lookup` (patch it there).

Imports: the standard library only (no mujoco / torch / numpy), so it can be imported
anywhere, including by ``make``.
"""

from __future__ import annotations

from isaacgymenvs.assets.cli import main
from isaacgymenvs.assets.download import FetchSummary, VerifyReport, fetch, sha256_file, verify
from isaacgymenvs.assets.errors import (
    AssetChecksumError,
    AssetConfigError,
    AssetError,
    AssetFetchError,
    AssetNotFoundError,
    AssetUnverifiedError,
)
from isaacgymenvs.assets.lookup import (
    DEFAULT_CACHE_DIR,
    ENV_ASSETS_CACHE,
    ENV_ASSETS_DIR,
    PACKAGE_DIR,
    REPO_ROOT,
    SHARED_ASSETS_DIR,
    asset_dir,
    asset_path,
    assets_root_candidates,
    cache_dir,
)
from isaacgymenvs.assets.manifest import GROUPS, MANIFEST, MANIFEST_FILE, SOURCES, Asset

__all__ = [
    "Asset",
    "MANIFEST",
    "MANIFEST_FILE",
    "SOURCES",
    "GROUPS",
    "ENV_ASSETS_DIR",
    "ENV_ASSETS_CACHE",
    "DEFAULT_CACHE_DIR",
    "PACKAGE_DIR",
    "REPO_ROOT",
    "SHARED_ASSETS_DIR",
    "AssetError",
    "AssetConfigError",
    "AssetNotFoundError",
    "AssetFetchError",
    "AssetChecksumError",
    "AssetUnverifiedError",
    "FetchSummary",
    "VerifyReport",
    "assets_root_candidates",
    "cache_dir",
    "asset_path",
    "asset_dir",
    "fetch",
    "verify",
    "sha256_file",
    "main",
]
