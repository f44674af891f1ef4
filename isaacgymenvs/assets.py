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

Lookup (:func:`assets_root_candidates`, first match wins, file by file):

1. ``$AMP_ASSETS_DIR`` if it is set (it is an error if it is set but is not a folder);
2. ``<repo>/../shared/assets`` if that folder exists (``<repo>`` is the folder holding
   the ``isaacgymenvs`` package);
3. the download cache, ``$AMP_ASSETS_CACHE`` or ``~/.cache/amp-sweeps/assets``.

:func:`fetch` downloads the files that are missing into the cache (``make assets``),
checking each against its pinned sha256 before it is moved into place. Files written for
this project (format notes, the G1 retargets, ...) have no public upstream: they are
``local_only`` entries, found only in an existing asset folder such as ``shared/assets``.

Command line::

    python -m isaacgymenvs.assets fetch [PATH ...] [--dest DIR] [--allow-unverified]
    python -m isaacgymenvs.assets verify [ROOT ...]
    python -m isaacgymenvs.assets where

This module uses only the standard library (no mujoco / torch / numpy), so it can be
imported anywhere, including by ``make``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Sequence

__all__ = [
    "Asset",
    "MANIFEST",
    "GROUPS",
    "ENV_ASSETS_DIR",
    "ENV_ASSETS_CACHE",
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

ENV_ASSETS_DIR = "AMP_ASSETS_DIR"
"""Environment variable: an asset folder to search first (e.g. an offline copy)."""

ENV_ASSETS_CACHE = "AMP_ASSETS_CACHE"
"""Environment variable: where :func:`fetch` stores downloads (default ``~/.cache/amp-sweeps/assets``)."""

DEFAULT_CACHE_DIR = "~/.cache/amp-sweeps/assets"

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SHARED_ASSETS_DIR = REPO_ROOT.parent / "shared" / "assets"

_HINT = f"run `make assets` (or set {ENV_ASSETS_DIR} to an asset folder laid out like shared/assets)"

# ---------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Asset:
    """One manifest entry.

    Attributes:
        path: POSIX path relative to the asset folder root (the ``shared/assets`` layout).
        url: upstream download URL pinned to a commit, or ``None`` for local-only files.
        sha256: expected lowercase hex sha256, or ``None`` when it is not pinned yet
            (such a file is only stored with ``allow_unverified=True``).
        local_only: the file was written or derived for this project and has no public
            upstream; it is only found in an existing asset folder, :func:`fetch` skips it.
    """

    path: str
    url: str | None
    sha256: str | None
    local_only: bool = False

    @property
    def group(self) -> str:
        """Top-level folder of the entry (``amp_humanoid``, ``unitree_g1``), ``""`` at the root."""
        parts = PurePosixPath(self.path).parts
        return parts[0] if len(parts) > 1 else ""


def _github_raw(repo: str, commit: str, path: str) -> str:
    """Raw-file URL of ``path`` in GitHub ``repo`` at ``commit``."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


IGE_REPO, IGE_COMMIT = "isaac-sim/IsaacGymEnvs", "aeed298638a1f7b5421b38f5f3cc2d1079b6d9c3"
MENAGERIE_REPO, MENAGERIE_COMMIT = "google-deepmind/mujoco_menagerie", "71f066ad0be9cd271f7ed58c030243ef157af9f4"
G1_MOVES_REPO, G1_MOVES_COMMIT = "experientialtech/g1-moves", "130ed8820800972dd1f84506f9a228e32eb3203c"


def _ige(path: str) -> str:
    return _github_raw(IGE_REPO, IGE_COMMIT, path)


def _menagerie(path: str) -> str:
    return _github_raw(MENAGERIE_REPO, MENAGERIE_COMMIT, path)


def _g1_moves(path: str) -> str:
    return _github_raw(G1_MOVES_REPO, G1_MOVES_COMMIT, path)


def _local(path: str, sha256: str) -> Asset:
    return Asset(path, None, sha256, local_only=True)


# Meshes of the Menagerie G1 (29 DoF rev 1.0, no hands) present in shared/assets.
_G1_MESHES: list[tuple[str, str]] = [
    ("head_link.STL", "005fb67fbd3eff94aa8bf4a6e83238174e9f91b6721f7111594322f223724411"),
    ("left_ankle_pitch_link.STL", "d49e3abc6f5b12e532062cd575b87b5ef40cd2a3fc18f54a1ca5bba4f773d51d"),
    ("left_ankle_roll_link.STL", "c4092af943141d4d9f74232f3cfa345afc6565f46a077793b8ae0e68b39dc33f"),
    ("left_elbow_link.STL", "fa752198accd104d5c4c3a01382e45165b944fbbc5acce085059223324e5bed3"),
    ("left_hip_pitch_link.STL", "4725168105ee768ee31638ef22b53f6be2d7641bfd7cfefe803488d884776fa4"),
    ("left_hip_roll_link.STL", "91f25922ee8a7c3152790051bebad17b4d9cd243569c38fe340285ff93a97acf"),
    ("left_hip_yaw_link.STL", "a16d88aa6ddac8083aa7ad55ed317bea44b1fa003d314fba88965b7ed0f3b55b"),
    ("left_knee_link.STL", "8d92b9e3d3a636761150bb8025e32514c4602b91c7028d523ee42b3e632de477"),
    ("left_rubber_hand.STL", "cff2221a690fa69303f61fce68f2d155c1517b52efb6ca9262dd56e0bc6e70fe"),
    ("left_shoulder_pitch_link.STL", "f0d1cfd02fcf0d42f95e678eeca33da3afbcc366ffba5c052847773ec4f31d52"),
    ("left_shoulder_roll_link.STL", "fb9df21687773522598dc384f1a2945c7519f11cbc8bd372a49170316d6eee88"),
    ("left_shoulder_yaw_link.STL", "1aa97e9748e924336567992181f78c7cd0652fd52a4afcca3df6b2ef6f9e712e"),
    ("left_wrist_pitch_link.STL", "b251d8e05047f695d0f536cd78c11973cfa4e78d08cfe82759336cc3471de3a9"),
    ("left_wrist_roll_link.STL", "edc387c9a0ba8c2237e9b296d32531426fabeb6f53e58df45c76106bca74148c"),
    ("left_wrist_yaw_link.STL", "83f8fb3a726bf9613d65dd14f0f447cb918c3c95b3938042a0c9c09749267d3b"),
    ("logo_link.STL", "8571a0a19bc4916fa55f91449f51d5fdefd751000054865a842449429d5f155b"),
    ("pelvis.STL", "5ba6bbc888e630550140d3c26763f10206da8c8bd30ed886b8ede41c61f57a31"),
    ("pelvis_contour_link.STL", "5cc5c2c7a312329e3feeb2b03d3fc09fc29705bd01864f6767e51be959662420"),
    ("right_ankle_pitch_link.STL", "15be426539ec1be70246d4d82a168806db64a41301af8b35c197a33348c787a9"),
    ("right_ankle_roll_link.STL", "4b66222ea56653e627711b56d0a8949b4920da5df091da0ceb343f54e884e3a5"),
    ("right_elbow_link.STL", "1be925d7aa268bb8fddf5362b9173066890c7d32092c05638608126e59d1e2ab"),
    ("right_hip_pitch_link.STL", "e4f3c99d7f4a7d34eadbef9461fc66e3486cb5442db1ec50c86317d459f1a9c6"),
    ("right_hip_roll_link.STL", "4c254ef66a356f492947f360dd931965477b631e3fcc841f91ccc46d945d54f6"),
    ("right_hip_yaw_link.STL", "e479c2936ca2057e9eb2f7dff6c189b7419d7b8484dea0b298cbb36a2a6aa668"),
    ("right_knee_link.STL", "63c4008449c9bbe701a6e2b557b7a252e90cf3a5abcf54cee46862b9a69f8ec8"),
    ("right_rubber_hand.STL", "99533b778bca6246144fa511bb9d4e555e075c641f2a0251e04372869cd99d67"),
    ("right_shoulder_pitch_link.STL", "24cdb387e0128dfe602770a81c56cdce3a0181d34d039a11d1aaf8819b7b8c02"),
    ("right_shoulder_roll_link.STL", "962b97c48f9ce9e8399f45dd9522e0865d19aa9fd299406b2d475a8fc4a53e81"),
    ("right_shoulder_yaw_link.STL", "a0b76489271da0c72461a344c9ffb0f0c6e64f019ea5014c1624886c442a2fe5"),
    ("right_wrist_pitch_link.STL", "d22f8f3b3127f15a63e5be1ee273cd5075786c3142f1c3d9f76cbf43d2a26477"),
    ("right_wrist_roll_link.STL", "a7ee9212ff5b94d6cb7f52bb1bbf3f352194d5b598acff74f4c77d340c5b344f"),
    ("right_wrist_yaw_link.STL", "bc9dece2d12509707e0057ba2e48df8f3d56db0c79410212963a25e8a50f61a6"),
    ("torso_link_rev_1_0.STL", "11ddb46f2098efbbd8816b1d65893632d8e78be936376c7cdcd6771899ccc723"),
    ("waist_roll_link_rev_1_0.STL", "b67c347a05abc3e8ddae600d98a082bee273bb39f8e651647708b0a7140a8a97"),
    ("waist_yaw_link_rev_1_0.STL", "ec6db442b11f25eed898b5add07940c85d804f300de24dcbd264ccd8be7d554c"),
]

MANIFEST: list[Asset] = [
    # --- asset folder root -----------------------------------------------------------
    _local("README.md", "e65779be972486e69b19c86297846bb32972f905a60e1913840fc95f23cbe3cb"),
    # --- AMP humanoid: isaac-sim/IsaacGymEnvs @ aeed298 (release 1.5.1) ---------------
    _local("amp_humanoid/FORMAT.md", "6faf10a1fb1120a0a89d813f61065513135ebc35973858c7f322ee62046105af"),
    # Upstream `LICENSE.txt` at the repository root (BSD-3-Clause, NVIDIA 2018-2023): the
    # local copy starts with that licence, and the same sha is used for the identical copy
    # in unitree_g1/motions/amp_retarget/, so the role matches.
    Asset(
        "amp_humanoid/LICENSE-IsaacGymEnvs.txt",
        _ige("LICENSE.txt"),
        "68f7ce6ed43e93e5d6404a9b05f97c0864a32b373548dba93a2c262e81561931",
    ),
    Asset(
        "amp_humanoid/amp_humanoid.xml",
        _ige("assets/mjcf/amp_humanoid.xml"),
        "bd71a64874bda926e6c55f0b3cc9b322a3b12bf6f77a0d647a19875667a16381",
    ),
    # UNCERTAIN upstream path: shared/assets does not record where this file came from.
    # IsaacGymEnvs-derived repositories (e.g. eureka-research/Eureka) carry it as
    # `assets/licenses/amp_motions-acknowledgement.txt`, so that path is assumed here.
    # If it is wrong, fetch fails with an HTTP error or a checksum mismatch (never a silent
    # bad file); the local copy in shared/assets is authoritative.
    Asset(
        "amp_humanoid/amp_motions-acknowledgement.txt",
        _ige("assets/licenses/amp_motions-acknowledgement.txt"),
        "79de36e6637756cb9dc4ea3f6559df3e75f45a070b992472eeb88d82f2a98988",
    ),
    Asset(
        "amp_humanoid/motions/amp_humanoid_dance.npy",
        _ige("assets/amp/motions/amp_humanoid_dance.npy"),
        "a19bc29ee9751de7956f25744eafbee53c5679e79d322a55f1e7285935fdd965",
    ),
    Asset(
        "amp_humanoid/motions/amp_humanoid_run.npy",
        _ige("assets/amp/motions/amp_humanoid_run.npy"),
        "934bad013439019a7a20dea8d6644b3360d9e5619204afc3ee0f89b7699eb570",
    ),
    Asset(
        "amp_humanoid/motions/amp_humanoid_walk.npy",
        _ige("assets/amp/motions/amp_humanoid_walk.npy"),
        "da0de7141b71321cd1a0904e6d599f889ca6f51bc9a22919d4198b54322d1c5c",
    ),
    # hop / backflip / cartwheel are upstream at the same commit but not in shared/assets,
    # so their sha256 is unknown here (sha256=None). fetch() leaves them out unless they
    # are named explicitly or allow_unverified=True; a named one without the flag is
    # downloaded to a temp file, its sha256 is printed and it is NOT stored. To pin one:
    #   python -m isaacgymenvs.assets fetch amp_humanoid/motions/amp_humanoid_hop.npy
    # then copy the printed sha256 here (or store it once with --allow-unverified).
    Asset("amp_humanoid/motions/amp_humanoid_hop.npy", _ige("assets/amp/motions/amp_humanoid_hop.npy"), None),
    Asset(
        "amp_humanoid/motions/amp_humanoid_backflip.npy",
        _ige("assets/amp/motions/amp_humanoid_backflip.npy"),
        None,
    ),
    Asset(
        "amp_humanoid/motions/amp_humanoid_cartwheel.npy",
        _ige("assets/amp/motions/amp_humanoid_cartwheel.npy"),
        None,
    ),
    # --- Unitree G1: google-deepmind/mujoco_menagerie @ 71f066a, folder unitree_g1/ ----
    Asset("unitree_g1/CHANGELOG.md", _menagerie("unitree_g1/CHANGELOG.md"),
          "d565c3f15f4ea776fea95d9da6dee29ee7c2d450b48d5adf585a27390ac3ff2c"),
    Asset("unitree_g1/LICENSE", _menagerie("unitree_g1/LICENSE"),
          "98335465f43a20b5850e4651db6e74c4aa1e9fc8e8813d38f345178045c0da50"),
    _local("unitree_g1/MODEL_NOTES.md", "8105b30d9bddb330744c6b7fd584967b2346e3d93928c890dba50bd3a33cddcd"),
    Asset("unitree_g1/README.md", _menagerie("unitree_g1/README.md"),
          "e0ca5e85f68ff9554631c3ea6ac624b469d6018a37e273daa1234e43e3ad4395"),
    *[
        Asset(f"unitree_g1/assets/{name}", _menagerie(f"unitree_g1/assets/{name}"), sha)
        for name, sha in _G1_MESHES
    ],
    Asset("unitree_g1/g1.xml", _menagerie("unitree_g1/g1.xml"),
          "3c2616550a31f33e84d3c80b8e913ac5618c8888019b0c9490dae93493e647f3"),
    Asset("unitree_g1/g1_mjx.xml", _menagerie("unitree_g1/g1_mjx.xml"),
          "7bf99a486bc3d4f24629dd5ccae30b7c9c3ad595d84e685fbd1e4920d457a61f"),
    Asset("unitree_g1/scene.xml", _menagerie("unitree_g1/scene.xml"),
          "e3f3a82afba68e1fbf6546d0d8ec1c9896d7c5117d7f9e2171f2dccd5740f80b"),
    Asset("unitree_g1/scene_mjx.xml", _menagerie("unitree_g1/scene_mjx.xml"),
          "112b12e4d2cb3330e5062ff7b331b946c3c37121f35de0bace507d274ef06bda"),
    # --- G1 motions written / derived for this project (no public upstream) ------------
    _local("unitree_g1/motions/FORMAT.md", "8d5e0e0bdb496bb0f24a5c81762ef685140c4ecc913330f1a37bf1ca72b7f932"),
    _local("unitree_g1/motions/manifest.json", "8b3185267213f02597893e042ff831c831fcf2181fa6a0e5898cd87facc20d74"),
    _local("unitree_g1/motions/amp_retarget/LICENSE-IsaacGymEnvs.txt",
           "68f7ce6ed43e93e5d6404a9b05f97c0864a32b373548dba93a2c262e81561931"),
    _local("unitree_g1/motions/amp_retarget/PROVENANCE.md",
           "739b70584e03d4fd0f2fc3431ce393a30915eeb1304d8b53f923147d6836d9c6"),
    _local("unitree_g1/motions/amp_retarget/amp_motions-acknowledgement.txt",
           "79de36e6637756cb9dc4ea3f6559df3e75f45a070b992472eeb88d82f2a98988"),
    _local("unitree_g1/motions/amp_retarget/g1_from_amp_dance.csv",
           "7bdb100610e381d1ad6808ba5825c2c464e9a3aef8d266c75248ead023aa630a"),
    _local("unitree_g1/motions/amp_retarget/g1_from_amp_run.csv",
           "dc41c1482f72bfa5b6758af7e439fbd27100015a72f22bd7bb9fdce72fede8b0"),
    _local("unitree_g1/motions/amp_retarget/g1_from_amp_walk.csv",
           "bbabcf72eeda4a63b2098c8ce682ebc3615de078cb40e614f0ce83a663908647"),
    # --- G1 style clips: experientialtech/g1-moves @ 130ed88 (CC-BY-4.0) ---------------
    # Upstream paths are `<category>/<clip>/retarget/<clip>.csv` (per g1_moves/ATTRIBUTION.md;
    # the dance and bonus paths were also seen in a file index of the repository, the
    # karate one was not indexed but follows the same layout).
    _local("unitree_g1/motions/g1_moves/ATTRIBUTION.md",
           "82911fdf9a99db36d2c8f67ede751479b3e55ff4eb77324dbac484791f03958f"),
    Asset("unitree_g1/motions/g1_moves/B_HandsUp.csv", _g1_moves("bonus/B_HandsUp/retarget/B_HandsUp.csv"),
          "82f19171cc007275768543bed055f20d7bacff7b13dc46cdb4ebbf3173a530bc"),
    # The dataset card at the repository root, copied unchanged (per ATTRIBUTION.md).
    Asset("unitree_g1/motions/g1_moves/DATASET_CARD.md", _g1_moves("DATASET_CARD.md"),
          "1da573d6c949290f4bd20e6ce5cd30beeaa200cb1ca5ba6cb8091b8d83f01b48"),
    Asset(
        "unitree_g1/motions/g1_moves/J_ShortDance16_JazzWalk.csv",
        _g1_moves("dance/J_ShortDance16_JazzWalk/retarget/J_ShortDance16_JazzWalk.csv"),
        "f8f61ea840a38da7a7c9ce468dcdf4643d47ad1e055e7292a278735e60ae1309",
    ),
    Asset(
        "unitree_g1/motions/g1_moves/M_ShortMove12.csv",
        _g1_moves("karate/M_ShortMove12/retarget/M_ShortMove12.csv"),
        "222dcad58e4ec102382496490f4846fc9a8220dbf82021a0f3efc05bd20fb528",
    ),
]
"""Every asset file the project knows about (``shared/assets`` layout).

``SHA256SUMS`` of an asset folder is not listed: it is the folder's own index.
"""

GROUPS: tuple[str, ...] = tuple(sorted({a.group for a in MANIFEST if a.group}))
"""Top-level asset folders (``amp_humanoid``, ``unitree_g1``)."""

# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


class AssetError(Exception):
    """Base class of the errors raised by this module."""


class AssetConfigError(AssetError):
    """The asset configuration is wrong (e.g. ``AMP_ASSETS_DIR`` names no folder)."""


class AssetNotFoundError(AssetError, FileNotFoundError):
    """An asset file or folder is in none of the searched asset folders."""


class AssetFetchError(AssetError):
    """A download failed (network or HTTP error)."""


class AssetChecksumError(AssetFetchError):
    """A downloaded file does not have the pinned sha256; nothing was stored."""

    def __init__(self, message: str, *, path: str, url: str, expected: str, actual: str):
        super().__init__(message)
        self.path, self.url, self.expected, self.actual = path, url, expected, actual


class AssetUnverifiedError(AssetFetchError):
    """Files without a pinned sha256 were downloaded but not stored.

    ``computed`` maps each such relative path to the sha256 of what was downloaded,
    so it can be pinned in :data:`MANIFEST`.
    """

    def __init__(self, message: str, *, computed: dict[str, str], summary: "FetchSummary"):
        super().__init__(message)
        self.computed = computed
        self.summary = summary


# ---------------------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------------------


def _one_line(obj: object) -> str:
    return " ".join(str(obj).split())


def _rel(rel: str | os.PathLike[str]) -> PurePosixPath:
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
        hint = (f"it is upstream but has no pinned checksum, so `make assets` does not fetch it: "
                f"`python -m isaacgymenvs.assets fetch {rel} --allow-unverified` stores it and prints its sha256")
    else:
        hint = _HINT
    return AssetNotFoundError(f"asset {kind} '{rel}' not found (searched: {searched}); {hint}")


def asset_path(rel: str | os.PathLike[str]) -> Path:
    """Absolute path of the asset file ``rel`` (e.g. ``"unitree_g1/scene.xml"``).

    Returns the file in the first candidate root (:func:`assets_root_candidates`) that has
    it. Raises :class:`AssetNotFoundError` (a ``FileNotFoundError``) whose one-line
    message names ``rel``, the folders searched and says to run ``make assets``.
    """
    r = _rel(rel)
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
    r = _rel(rel)
    roots = assets_root_candidates()
    for root in roots:
        p = root.joinpath(*r.parts)
        if p.is_dir():
            return p
    raise _not_found("folder", r, roots)


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Lowercase hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# Fetch
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class FetchSummary:
    """What :func:`fetch` did. All lists hold manifest-relative paths.

    Attributes:
        dest: folder downloads were written to.
        downloaded: fetched, verified and stored in ``dest``.
        present: already available with the right sha256 (``present_at`` says where).
        local_only_missing: local-only entries found in no searched folder (not downloadable).
        unpinned_skipped: entries without a pinned sha256 left out (not named, no flag).
        unverified_stored: path -> computed sha256 of unpinned files stored because
            ``allow_unverified=True`` (pin these values in :data:`MANIFEST`).
        refused: path -> computed sha256 of unpinned files downloaded but not stored.
    """

    dest: Path
    downloaded: list[str] = dataclasses.field(default_factory=list)
    present: list[str] = dataclasses.field(default_factory=list)
    present_at: dict[str, str] = dataclasses.field(default_factory=dict)
    local_only_missing: list[str] = dataclasses.field(default_factory=list)
    unpinned_skipped: list[str] = dataclasses.field(default_factory=list)
    unverified_stored: dict[str, str] = dataclasses.field(default_factory=dict)
    refused: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return not self.refused

    def __str__(self) -> str:
        return (
            f"{len(self.downloaded)} downloaded, {len(self.present)} already present, "
            f"{len(self.local_only_missing)} local-only missing, "
            f"{len(self.unpinned_skipped)} unpinned skipped, "
            f"{len(self.unverified_stored)} stored unverified, {len(self.refused)} refused "
            f"(dest {self.dest})"
        )


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _select(manifest: Sequence[Asset], only: Iterable[str] | None) -> tuple[list[Asset], set[str]]:
    """Entries matching ``only`` (exact paths or folder prefixes) and the exactly named paths."""
    if only is None:
        return list(manifest), set()
    if isinstance(only, (str, os.PathLike)):
        only = [os.fspath(only)]
    selected: list[Asset] = []
    named: set[str] = set()
    for o in only:
        key = str(_rel(o))
        hits = [a for a in manifest if a.path == key or a.path.startswith(key + "/")]
        if not hits:
            raise ValueError(f"no manifest entry matches {o!r}")
        named.update(a.path for a in hits if a.path == key)
        selected.extend(a for a in hits if a not in selected)
    return selected, named


def _find_present(entry: Asset, roots: Sequence[Path]) -> Path | None:
    """First root holding ``entry`` with the right sha256 (any content if unpinned)."""
    for root in roots:
        p = root.joinpath(*PurePosixPath(entry.path).parts)
        if p.is_file() and (entry.sha256 is None or sha256_file(p) == entry.sha256.lower()):
            return p
    return None


class _Refused(Exception):
    def __init__(self, actual: str):
        self.actual = actual


def _download(
    entry: Asset,
    target: Path,
    *,
    opener: Callable[..., object],
    timeout: float,
    allow_unverified: bool,
) -> str:
    """Download ``entry.url`` to ``target`` atomically; return the sha256 of the content.

    The body is streamed into a temp file next to ``target``, hashed, checked, then moved
    into place with ``os.replace``. On any failure the temp file is removed.
    """
    url = entry.url
    assert url is not None
    offline = f"to work offline, set {ENV_ASSETS_DIR} to an existing asset folder (a copy of shared/assets)"
    created: list[Path] = []  # folders made here, removed again if the download fails
    parent = target.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp: Path | None = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            try:
                resp = opener(url, timeout=timeout)
                try:
                    status = getattr(resp, "status", None)
                    if status is not None and not 200 <= int(status) < 300:
                        raise AssetFetchError(f"cannot download {url}: HTTP {status}; {offline}")
                    while chunk := resp.read(1 << 20):  # type: ignore[attr-defined]
                        h.update(chunk)
                        f.write(chunk)
                finally:
                    close = getattr(resp, "close", None)
                    if close is not None:
                        close()
            except AssetFetchError:
                raise
            except urllib.error.HTTPError as e:
                e.close()
                raise AssetFetchError(f"cannot download {url}: HTTP {e.code} {_one_line(e.reason)}; {offline}") from None
            except urllib.error.URLError as e:
                raise AssetFetchError(f"cannot download {url}: {_one_line(e.reason)}; {offline}") from None
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise AssetFetchError(
                    f"cannot download {url}: {type(e).__name__}: {_one_line(e)}; {offline}"
                ) from None
        actual = h.hexdigest()
        if entry.sha256 is None:
            if not allow_unverified:
                raise _Refused(actual)
        elif actual != entry.sha256.lower():
            raise AssetChecksumError(
                f"sha256 mismatch for {entry.path} from {url}: expected {entry.sha256}, got {actual}; "
                f"nothing was stored",
                path=entry.path, url=url, expected=entry.sha256, actual=actual,
            )
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
        tmp = None
        return actual
    finally:
        if tmp is not None:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            for d in created:  # deepest first; stops at the first non-empty folder
                try:
                    d.rmdir()
                except OSError:
                    break


def fetch(
    dest: str | os.PathLike[str] | None = None,
    only: Iterable[str] | None = None,
    allow_unverified: bool = False,
    opener: Callable[..., object] = urllib.request.urlopen,
    *,
    manifest: Sequence[Asset] | None = None,
    timeout: float = 60.0,
    log: Callable[[str], None] | None = None,
) -> FetchSummary:
    """Download the missing asset files and verify them.

    Args:
        dest: folder to store downloads in. Default: the cache (:func:`cache_dir`); then
            a file already present with the right sha256 in *any* candidate root
            (:func:`assets_root_candidates`) is skipped, so with ``shared/assets`` in
            place nothing is downloaded. With an explicit ``dest`` only ``dest`` is checked.
        only: manifest paths or folder prefixes to restrict to (``"unitree_g1"``,
            ``"amp_humanoid/motions/amp_humanoid_hop.npy"``). Default: all entries.
        allow_unverified: store files whose sha256 is not pinned (``sha256=None``) and
            print the computed sha256 so it can be pinned. Without it, unpinned entries
            are left out unless named exactly in ``only``; a named one is downloaded,
            hashed and *not* stored, and :class:`AssetUnverifiedError` is raised at the
            end with the computed sha256 values.
        opener: ``urllib.request.urlopen``-compatible callable, called as
            ``opener(url, timeout=timeout)``; its result needs ``read(n)`` (and
            optionally ``status`` and ``close()``).
        manifest: entries to use instead of :data:`MANIFEST` (for tests / mirrors).
        timeout: socket timeout in seconds for each download.
        log: callable for progress lines (default: print to stderr).

    Local-only entries are never downloaded: they are skipped with a message.

    Returns:
        A :class:`FetchSummary`.

    Raises:
        AssetFetchError: a network / HTTP error (one line naming the URL and suggesting
            ``AMP_ASSETS_DIR`` for offline use). Raised at once; files already stored stay.
        AssetChecksumError: downloaded content does not match the pinned sha256; the temp
            file is deleted and the message gives expected / actual sha256 and the URL.
        AssetUnverifiedError: unpinned files were named without ``allow_unverified``.
        AssetConfigError: ``AMP_ASSETS_DIR`` is set to something that is not a folder.
    """
    log = log or _stderr
    entries, named = _select(MANIFEST if manifest is None else manifest, only)
    if dest is None:
        dest_path = cache_dir()
        search = [r for r in assets_root_candidates() if r.is_dir()]
    else:
        dest_path = Path(dest).expanduser()
        search = [dest_path] if dest_path.is_dir() else []
    summary = FetchSummary(dest=dest_path)

    for entry in entries:
        found = _find_present(entry, search)
        if found is not None:
            summary.present.append(entry.path)
            summary.present_at[entry.path] = str(found)
            continue
        if entry.local_only or not entry.url:
            summary.local_only_missing.append(entry.path)
            log(
                f"skip {entry.path}: local-only (written for this project, no public upstream); "
                f"copy it from an existing asset folder such as shared/assets or set {ENV_ASSETS_DIR}"
            )
            continue
        if entry.sha256 is None and not allow_unverified and entry.path not in named:
            summary.unpinned_skipped.append(entry.path)
            log(
                f"skip {entry.path}: sha256 not pinned; `python -m isaacgymenvs.assets fetch {entry.path}` "
                f"prints it, add --allow-unverified to store the file anyway"
            )
            continue
        target = dest_path.joinpath(*PurePosixPath(entry.path).parts)
        if target.exists():
            log(f"replace {target}: sha256 does not match the manifest")
        log(f"get {entry.url}")
        try:
            actual = _download(
                entry, target, opener=opener, timeout=timeout, allow_unverified=allow_unverified
            )
        except _Refused as r:
            summary.refused[entry.path] = r.actual
            log(
                f"refused {entry.path}: no pinned sha256, downloaded content has sha256 {r.actual} "
                f"(not stored; pin it in MANIFEST or pass --allow-unverified)"
            )
            continue
        if entry.sha256 is None:
            summary.unverified_stored[entry.path] = actual
            log(f"stored UNVERIFIED {entry.path}: sha256 {actual} (pin this value in MANIFEST)")
        summary.downloaded.append(entry.path)

    log(f"assets: {summary}")
    if summary.refused:
        detail = ", ".join(f"{p} sha256={s}" for p, s in summary.refused.items())
        raise AssetUnverifiedError(
            f"refused to store files without a pinned sha256: {detail}; pin them in MANIFEST "
            f"or re-run with --allow-unverified",
            computed=dict(summary.refused),
            summary=summary,
        )
    return summary


# ---------------------------------------------------------------------------------------
# Verify
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class VerifyReport:
    """Result of :func:`verify` for one root. Paths are manifest-relative.

    Attributes:
        root: the folder checked.
        good: present files whose sha256 matches.
        mismatched: path -> (expected, actual) for present files that do not match.
        unpinned: path -> actual sha256 for present files without a pinned sha256.
        missing: manifest files absent from ``root`` (not an error: roots may be partial).
        unknown: files under ``root`` that are not in the manifest (informational;
            ``SHA256SUMS`` is ignored).
    """

    root: Path
    good: list[str] = dataclasses.field(default_factory=list)
    mismatched: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    unpinned: dict[str, str] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    unknown: list[str] = dataclasses.field(default_factory=list)

    @property
    def checked(self) -> int:
        """Number of manifest files found under ``root``."""
        return len(self.good) + len(self.mismatched) + len(self.unpinned)

    @property
    def ok(self) -> bool:
        """True when no present file has a wrong sha256."""
        return not self.mismatched

    def __str__(self) -> str:
        return (
            f"{self.root}: {len(self.good)} ok, {len(self.mismatched)} mismatched, "
            f"{len(self.unpinned)} unpinned, {len(self.missing)} missing, {len(self.unknown)} not in manifest"
        )


def verify(root: str | os.PathLike[str], manifest: Sequence[Asset] | None = None) -> VerifyReport:
    """Check every manifest file present under ``root`` against its pinned sha256.

    Missing files are listed but are not failures. Raises :class:`AssetNotFoundError`
    if ``root`` is not a folder.
    """
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise AssetNotFoundError(f"asset folder {root_path} does not exist; {_HINT}")
    entries = MANIFEST if manifest is None else manifest
    report = VerifyReport(root=root_path)
    known = set()
    for entry in entries:
        known.add(entry.path)
        p = root_path.joinpath(*PurePosixPath(entry.path).parts)
        if not p.is_file():
            report.missing.append(entry.path)
            continue
        actual = sha256_file(p)
        if entry.sha256 is None:
            report.unpinned[entry.path] = actual
        elif actual == entry.sha256.lower():
            report.good.append(entry.path)
        else:
            report.mismatched[entry.path] = (entry.sha256, actual)
    for p in sorted(root_path.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root_path).as_posix()
            if rel not in known and rel != "SHA256SUMS" and not p.name.endswith(".part"):
                report.unknown.append(rel)
    return report


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def _where() -> dict[str, object]:
    roots = assets_root_candidates()
    groups: dict[str, object] = {}
    for g in GROUPS:
        groups[g] = None
        for r in roots:
            if (r / g).is_dir():
                groups[g] = {"root": str(r), "dir": str(r / g)}
                break
    return {
        "candidates": [str(r) for r in roots],
        "cache": str(cache_dir()),
        "groups": groups,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m isaacgymenvs.assets``; returns the exit code.

    * ``fetch [PATH ...] [--dest DIR] [--allow-unverified]``: download missing files into
      the cache (exit 1 on a network / checksum error or a refused unverified file).
    * ``verify [ROOT ...]``: check files under the given roots, default: every existing
      candidate root that holds assets (exit 1 on any mismatch, or if nothing was found).
    * ``where``: print JSON with the candidate roots and, per asset group, the root it
      resolves to (``null`` if none; exit 1 then).
    """
    parser = argparse.ArgumentParser(
        prog="python -m isaacgymenvs.assets",
        description="Fetch, verify and locate the third-party assets (models, meshes, motion clips).",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_fetch = sub.add_parser("fetch", help="download missing assets into the cache and verify them")
    p_fetch.add_argument("paths", nargs="*", help="manifest paths or folder prefixes (default: all)")
    p_fetch.add_argument("--dest", help=f"store here instead of the cache (${ENV_ASSETS_CACHE} or {DEFAULT_CACHE_DIR})")
    p_fetch.add_argument(
        "--allow-unverified",
        action="store_true",
        help="also store files whose sha256 is not pinned (their sha256 is printed)",
    )
    p_fetch.add_argument("--timeout", type=float, default=60.0, help="socket timeout per download, seconds")
    p_verify = sub.add_parser("verify", help="check asset files against the manifest sha256")
    p_verify.add_argument("roots", nargs="*", help="asset folders (default: every existing candidate root)")
    sub.add_parser("where", help="print the resolved asset roots as JSON")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "fetch":
            summary = fetch(
                dest=args.dest,
                only=args.paths or None,
                allow_unverified=args.allow_unverified,
                timeout=args.timeout,
            )
            return 0 if summary.ok else 1
        if args.cmd == "verify":
            explicit = bool(args.roots)
            roots = [Path(r) for r in args.roots] if explicit else [r for r in assets_root_candidates() if r.is_dir()]
            failed = False
            checked = 0
            for root in roots:
                report = verify(root)
                if not explicit and report.checked == 0:
                    continue
                checked += report.checked
                print(report)
                for path, (exp, act) in report.mismatched.items():
                    print(f"  MISMATCH {path}: expected {exp}, got {act}")
                for path, act in report.unpinned.items():
                    print(f"  unpinned {path}: sha256 {act}")
                if explicit and report.checked == 0:
                    print(f"  no manifest files under {root}", file=sys.stderr)
                    failed = True
                failed |= not report.ok
            if checked == 0 and not failed:
                print(f"error: no asset files found in {', '.join(map(str, roots)) or 'any root'}; {_HINT}",
                      file=sys.stderr)
                return 1
            return 1 if failed else 0
        if args.cmd == "where":
            info = _where()
            print(json.dumps(info, indent=2))
            return 0 if all(v is not None for v in info["groups"].values()) else 1  # type: ignore[union-attr]
    except (AssetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
