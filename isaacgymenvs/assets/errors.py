"""The errors of :mod:`isaacgymenvs.assets`: a wrong configuration, a missing file, a failed download.

Imports: the standard library only.
"""

from __future__ import annotations

__all__ = [
    "AssetError",
    "AssetConfigError",
    "AssetNotFoundError",
    "AssetFetchError",
    "AssetChecksumError",
    "AssetUnverifiedError",
]


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
    so it can be pinned in :data:`MANIFEST`; ``summary`` is the
    :class:`~isaacgymenvs.assets.download.FetchSummary` of the run (not imported here:
    :mod:`~isaacgymenvs.assets.download` imports this module).
    """

    def __init__(self, message: str, *, computed: dict[str, str], summary: object):
        super().__init__(message)
        self.computed = computed
        self.summary = summary
