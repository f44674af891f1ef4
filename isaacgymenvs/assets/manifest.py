"""The asset manifest: every third-party file the project may use, read from ``manifest.json``.

The table itself is data (``isaacgymenvs/assets/manifest.json``, shipped as package data): per
file its path inside an asset folder, the upstream repository and path (pinned to a commit in
the file's ``sources``) or ``local_only``, and its sha256. This module turns it into
:data:`MANIFEST`, a list of :class:`Asset`, in the file's order.

Imports: the standard library only (``make`` and tools import it without numpy / torch / mujoco).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePosixPath

__all__ = ["Asset", "MANIFEST", "GROUPS", "MANIFEST_FILE", "SOURCES", "load_manifest"]

MANIFEST_FILE = Path(__file__).resolve().with_name("manifest.json")
"""The data file the manifest is read from."""


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


def github_raw(repo: str, commit: str, path: str) -> str:
    """Raw-file URL of ``path`` in GitHub ``repo`` at ``commit``."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def load_manifest(path: str | Path = MANIFEST_FILE) -> tuple[dict[str, dict], list[Asset]]:
    """``(sources, entries)`` of a manifest data file (the layout of ``manifest.json``).

    ``sources`` maps a source name to ``{"repo", "commit", ...}``. An entry names a ``source``
    and its ``upstream`` path there, or is ``local_only``. Raises ``ValueError`` naming the file
    and the entry when the file does not have that layout.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"asset manifest {path} is unreadable ({type(e).__name__}: {e})") from None
    sources: dict[str, dict] = doc.get("sources", {})
    entries: list[Asset] = []
    for i, e in enumerate(doc.get("assets", [])):
        where = f"asset manifest {path}, assets[{i}] ({e.get('path')!r})"
        if "path" not in e or "sha256" not in e:
            raise ValueError(f"{where}: needs 'path' and 'sha256'")
        if e.get("local_only"):
            entries.append(Asset(e["path"], None, e["sha256"], local_only=True))
            continue
        src = sources.get(e.get("source"))
        if src is None or "upstream" not in e:
            raise ValueError(
                f"{where}: needs 'local_only': true, or a 'source' of {sorted(sources)} and its 'upstream' path"
            )
        entries.append(Asset(e["path"], github_raw(src["repo"], src["commit"], e["upstream"]), e["sha256"]))
    return sources, entries


SOURCES, MANIFEST = load_manifest()
"""``SOURCES``: upstream repositories and their pinned commits. ``MANIFEST``: every asset file the
project knows about (``shared/assets`` layout), as :class:`Asset`.

``SHA256SUMS`` of an asset folder is not listed: it is the folder's own index.
"""

GROUPS: tuple[str, ...] = tuple(sorted({a.group for a in MANIFEST if a.group}))
"""Top-level asset folders (``amp_humanoid``, ``unitree_g1``)."""
