"""Fetching the assets into the cache and checking files against their pinned sha256.

:func:`fetch` downloads the files that are missing (``make assets``), checking each against
its pinned sha256 before it is moved into place; :func:`verify` checks the manifest files
present in an asset folder. Local-only entries (files written for this project: format notes,
the G1 retargets, ...) have no public upstream: they are never downloaded.

Imports: the standard library and :mod:`isaacgymenvs.assets.manifest` / ``.errors`` /
``.lookup`` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath

from isaacgymenvs.assets import lookup
from isaacgymenvs.assets.errors import (
    AssetChecksumError,
    AssetFetchError,
    AssetNotFoundError,
    AssetUnverifiedError,
)
from isaacgymenvs.assets.lookup import ENV_ASSETS_DIR, MISSING_ASSET_HINT, relative_asset_path
from isaacgymenvs.assets.manifest import MANIFEST, Asset

__all__ = ["FetchSummary", "VerifyReport", "fetch", "verify", "sha256_file"]


def _one_line(obj: object) -> str:
    return " ".join(str(obj).split())


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
        key = str(relative_asset_path(o))
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
                raise AssetFetchError(
                    f"cannot download {url}: HTTP {e.code} {_one_line(e.reason)}; {offline}"
                ) from None
            except urllib.error.URLError as e:
                raise AssetFetchError(f"cannot download {url}: {_one_line(e.reason)}; {offline}") from None
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise AssetFetchError(f"cannot download {url}: {type(e).__name__}: {_one_line(e)}; {offline}") from None
        actual = h.hexdigest()
        if entry.sha256 is None:
            if not allow_unverified:
                raise _Refused(actual)
        elif actual != entry.sha256.lower():
            raise AssetChecksumError(
                f"sha256 mismatch for {entry.path} from {url}: expected {entry.sha256}, got {actual}; "
                f"nothing was stored",
                path=entry.path,
                url=url,
                expected=entry.sha256,
                actual=actual,
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
        dest_path = lookup.cache_dir()
        search = [r for r in lookup.assets_root_candidates() if r.is_dir()]
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
            actual = _download(entry, target, opener=opener, timeout=timeout, allow_unverified=allow_unverified)
        except _Refused as r:
            summary.refused[entry.path] = r.actual
            log(
                f"refused {entry.path}: no pinned sha256, downloaded content has sha256 {r.actual} "
                f"(not stored; pin it in isaacgymenvs/assets/manifest.json or pass --allow-unverified)"
            )
            continue
        if entry.sha256 is None:
            summary.unverified_stored[entry.path] = actual
            log(
                f"stored UNVERIFIED {entry.path}: sha256 {actual} (pin this value in isaacgymenvs/assets/manifest.json)"
            )
        summary.downloaded.append(entry.path)

    log(f"assets: {summary}")
    if summary.refused:
        detail = ", ".join(f"{p} sha256={s}" for p, s in summary.refused.items())
        raise AssetUnverifiedError(
            f"refused to store files without a pinned sha256: {detail}; pin them in isaacgymenvs/assets/manifest.json "
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
        raise AssetNotFoundError(f"asset folder {root_path} does not exist; {MISSING_ASSET_HINT}")
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
