"""Tests of isaacgymenvs.assets: lookup order, error messages, fetch and verify.

No internet: downloads go to a throw-away ``http.server`` on 127.0.0.1 that serves a
temporary folder, with a small manifest injected through ``fetch(manifest=...)``.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from isaacgymenvs import assets
from isaacgymenvs.assets import Asset, lookup

REAL_SHARED = assets.SHARED_ASSETS_DIR  # captured before any monkeypatching


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(root: Path) -> list[str]:
    """Every file under root (hidden / temp files included), relative, sorted."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No AMP_ASSETS_DIR, a private cache, no shared/assets, no proxies."""
    monkeypatch.delenv(assets.ENV_ASSETS_DIR, raising=False)
    monkeypatch.setenv(assets.ENV_ASSETS_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(lookup, "SHARED_ASSETS_DIR", tmp_path / "no-shared" / "assets")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _touch(root: Path, rel: str, data: bytes = b"x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


# ----------------------------------------------------------------------------- lookup


def test_lookup_order_env_then_shared_then_cache(tmp_path, monkeypatch):
    env_dir, shared, cache = tmp_path / "env", tmp_path / "shared", tmp_path / "cache"
    for d in (env_dir, shared, cache):
        d.mkdir()
    monkeypatch.setenv(assets.ENV_ASSETS_DIR, str(env_dir))
    monkeypatch.setattr(lookup, "SHARED_ASSETS_DIR", shared)

    assert assets.assets_root_candidates() == [env_dir, shared, cache]

    rel = "amp_humanoid/amp_humanoid.xml"
    for d in (cache, shared, env_dir):  # add from the back: the front one must win
        _touch(d, rel, d.name.encode())
        assert assets.asset_path(rel) == d / rel
    # a file only in the cache is still found
    _touch(cache, "unitree_g1/motions/g1_moves/B_HandsUp.csv")
    assert (
        assets.asset_path("unitree_g1/motions/g1_moves/B_HandsUp.csv")
        == cache / "unitree_g1/motions/g1_moves/B_HandsUp.csv"
    )
    assert assets.asset_dir("amp_humanoid") == env_dir / "amp_humanoid"
    assert assets.asset_dir("unitree_g1") == cache / "unitree_g1"


def test_shared_assets_skipped_when_absent_and_cache_always_listed(tmp_path):
    assert assets.assets_root_candidates() == [tmp_path / "cache"]  # cache need not exist yet


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv(assets.ENV_ASSETS_CACHE)
    assert assets.cache_dir() == Path("~/.cache/amp-sweeps/assets").expanduser()


def test_missing_asset_error_mentions_make_assets(tmp_path, monkeypatch):
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    monkeypatch.setenv(assets.ENV_ASSETS_DIR, str(env_dir))
    with pytest.raises(assets.AssetNotFoundError) as ei:
        assets.asset_path("unitree_g1/scene.xml")
    msg = str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)
    assert "\n" not in msg
    assert "unitree_g1/scene.xml" in msg
    assert "make assets" in msg and assets.ENV_ASSETS_DIR in msg
    assert str(env_dir) in msg and str(tmp_path / "cache") in msg

    with pytest.raises(FileNotFoundError, match="make assets"):
        assets.asset_dir("unitree_g1")


def test_amp_assets_dir_missing_folder_is_an_error(tmp_path, monkeypatch):
    missing = tmp_path / "does-not-exist"
    monkeypatch.setenv(assets.ENV_ASSETS_DIR, str(missing))
    with pytest.raises(assets.AssetConfigError, match=assets.ENV_ASSETS_DIR) as ei:
        assets.assets_root_candidates()
    assert str(missing) in str(ei.value)
    with pytest.raises(assets.AssetConfigError, match=assets.ENV_ASSETS_DIR):
        assets.asset_path("amp_humanoid/amp_humanoid.xml")
    assert assets.main(["where"]) == 1


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.xml", "amp_humanoid/../../x", ""])
def test_asset_path_rejects_paths_outside_the_root(bad):
    with pytest.raises(ValueError):
        assets.asset_path(bad)


def test_module_imports_no_heavy_dependencies():
    code = (
        "import sys, isaacgymenvs.assets; "
        "bad = [m for m in ('mujoco', 'torch', 'numpy') if m in sys.modules]; "
        "sys.exit(repr(bad) if bad else 0)"
    )
    repo = assets.REPO_ROOT
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout


# ----------------------------------------------------------------------------- manifest


def test_manifest_entries_are_well_formed():
    paths = [a.path for a in assets.MANIFEST]
    assert len(paths) == len(set(paths))
    for a in assets.MANIFEST:
        assert not a.path.startswith("/") and ".." not in a.path.split("/")
        if a.local_only:
            assert a.url is None and a.sha256
        else:
            assert a.url and a.url.startswith("https://raw.githubusercontent.com/")
            commit = a.url.split("/")[5]
            assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
        if a.sha256 is not None:
            assert len(a.sha256) == 64 and a.sha256 == a.sha256.lower()
    unpinned = {a.path for a in assets.MANIFEST if a.sha256 is None}
    assert unpinned == {f"amp_humanoid/motions/amp_humanoid_{n}.npy" for n in ("hop", "backflip", "cartwheel")}
    assert set(assets.GROUPS) == {"amp_humanoid", "unitree_g1"}


def test_manifest_is_read_from_its_data_file(tmp_path):
    sources, entries = assets.manifest.load_manifest(assets.MANIFEST_FILE)
    assert entries == assets.MANIFEST and sources == assets.SOURCES
    for a in entries:  # every URL is pinned to its source's commit
        if not a.local_only:
            assert any(
                a.url.startswith(f"https://raw.githubusercontent.com/{s['repo']}/{s['commit']}/")
                for s in sources.values()
            ), a.url
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps({"sources": {}, "assets": [{"path": "g/a.txt", "sha256": None, "source": "nowhere"}]}))
    with pytest.raises(ValueError, match=r"assets\[0\] \('g/a.txt'\).*local_only"):
        assets.manifest.load_manifest(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        assets.manifest.load_manifest(bad)


# ----------------------------------------------------------------------------- fetch


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.requested.append(self.path)
        super().do_GET()


@pytest.fixture
def http_root(tmp_path):
    """(folder served, base URL) of an http.server on 127.0.0.1, stopped at the end."""
    root = tmp_path / "srv"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    server.daemon_threads = True
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _fake_manifest(srv: Path, base: str):
    a, c, u = b"alpha contents\n", os.urandom(3000), b"unpinned clip"
    _touch(srv, "up/a.txt", a)
    _touch(srv, "up/deep/c.bin", c)
    _touch(srv, "up/u.npy", u)
    manifest = [
        Asset("grp/a.txt", f"{base}/up/a.txt", _sha(a)),
        Asset("grp/sub/c.bin", f"{base}/up/deep/c.bin", _sha(c)),
        Asset("grp/notes.md", None, _sha(b"local"), local_only=True),
        Asset("grp/u.npy", f"{base}/up/u.npy", None),
    ]
    return manifest, {"a": a, "c": c, "u": u}


def test_fetch_stores_verified_files_and_skips_present(http_root, tmp_path):
    srv, base, server = http_root
    manifest, data = _fake_manifest(srv, base)
    dest = tmp_path / "dest"
    log: list[str] = []

    s = assets.fetch(dest=dest, manifest=manifest, timeout=5, log=log.append)
    assert sorted(s.downloaded) == ["grp/a.txt", "grp/sub/c.bin"]
    assert s.local_only_missing == ["grp/notes.md"]
    assert s.unpinned_skipped == ["grp/u.npy"] and s.ok
    assert (dest / "grp/a.txt").read_bytes() == data["a"]
    assert (dest / "grp/sub/c.bin").read_bytes() == data["c"]
    assert _files(dest) == ["grp/a.txt", "grp/sub/c.bin"]  # no temp files, no unverified file
    assert any("local-only" in line and "grp/notes.md" in line for line in log)
    assert assets.verify(dest, manifest=manifest).good == ["grp/a.txt", "grp/sub/c.bin"]

    # second run: everything already present, nothing requested
    n = len(server.requested)
    s2 = assets.fetch(dest=dest, manifest=manifest, timeout=5, log=log.append)
    assert s2.downloaded == [] and sorted(s2.present) == ["grp/a.txt", "grp/sub/c.bin"]
    assert len(server.requested) == n

    # a corrupted local copy is replaced
    (dest / "grp/a.txt").write_bytes(b"corrupt")
    s3 = assets.fetch(dest=dest, only=["grp/a.txt"], manifest=manifest, timeout=5, log=log.append)
    assert s3.downloaded == ["grp/a.txt"] and (dest / "grp/a.txt").read_bytes() == data["a"]


def test_fetch_default_dest_is_cache_and_uses_existing_roots(http_root, tmp_path, monkeypatch):
    srv, base, server = http_root
    manifest, data = _fake_manifest(srv, base)
    env_dir = tmp_path / "env"
    _touch(env_dir, "grp/a.txt", data["a"])
    _touch(env_dir, "grp/notes.md", b"local")
    monkeypatch.setenv(assets.ENV_ASSETS_DIR, str(env_dir))

    s = assets.fetch(only=["grp"], manifest=manifest, timeout=5, log=lambda _: None)
    assert s.dest == tmp_path / "cache"
    assert sorted(s.present) == ["grp/a.txt", "grp/notes.md"] and s.local_only_missing == []
    assert s.downloaded == ["grp/sub/c.bin"]
    assert _files(tmp_path / "cache") == ["grp/sub/c.bin"]
    assert assets.asset_path("grp/sub/c.bin") == tmp_path / "cache/grp/sub/c.bin"
    assert assets.asset_path("grp/a.txt") == env_dir / "grp/a.txt"


def test_fetch_rejects_wrong_sha_and_leaves_nothing(http_root, tmp_path):
    srv, base, _ = http_root
    _touch(srv, "up/a.txt", b"tampered")
    expected = _sha(b"what we pinned")
    manifest = [Asset("grp/sub/a.txt", f"{base}/up/a.txt", expected)]
    dest = tmp_path / "dest"
    with pytest.raises(assets.AssetChecksumError) as ei:
        assets.fetch(dest=dest, manifest=manifest, timeout=5, log=lambda _: None)
    msg = str(ei.value)
    assert expected in msg and _sha(b"tampered") in msg and f"{base}/up/a.txt" in msg
    assert ei.value.expected == expected and ei.value.actual == _sha(b"tampered")
    assert _files(dest) == []
    assert not (dest / "grp").exists()  # folders made for the download are removed too


def test_fetch_refuses_unverified_without_flag(http_root, tmp_path):
    srv, base, _ = http_root
    manifest, data = _fake_manifest(srv, base)
    dest = tmp_path / "dest"
    quiet = lambda _: None  # noqa: E731

    # named explicitly: downloaded, hashed, reported, not stored
    with pytest.raises(assets.AssetUnverifiedError) as ei:
        assets.fetch(dest=dest, only=["grp/u.npy"], manifest=manifest, timeout=5, log=quiet)
    assert ei.value.computed == {"grp/u.npy": _sha(data["u"])}
    assert _sha(data["u"]) in str(ei.value)
    assert _files(dest) == []

    # with the flag: stored, and the computed sha is reported for pinning
    s = assets.fetch(dest=dest, only=["grp/u.npy"], allow_unverified=True, manifest=manifest, timeout=5, log=quiet)
    assert s.unverified_stored == {"grp/u.npy": _sha(data["u"])}
    assert (dest / "grp/u.npy").read_bytes() == data["u"]


def test_fetch_network_errors_are_one_line(http_root, tmp_path):
    _, base, _ = http_root
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/a.txt"
    for url, needle in ((f"{base}/missing.txt", "HTTP 404"), (dead, dead)):
        manifest = [Asset("grp/a.txt", url, _sha(b"x"))]
        with pytest.raises(assets.AssetFetchError) as ei:
            assets.fetch(dest=tmp_path / "dest", manifest=manifest, timeout=5, log=lambda _: None)
        msg = str(ei.value)
        assert "\n" not in msg and url in msg and needle in msg and assets.ENV_ASSETS_DIR in msg
        assert _files(tmp_path / "dest") == []


def test_fetch_only_must_match(tmp_path):
    with pytest.raises(ValueError, match="no manifest entry"):
        assets.fetch(dest=tmp_path, only=["nothing/here"], manifest=[], log=lambda _: None)


# ----------------------------------------------------------------------------- verify


def test_verify_reports_mismatch(tmp_path):
    root = tmp_path / "root"
    _touch(root, "g/a.txt", b"a")
    _touch(root, "g/b.txt", b"not b")
    _touch(root, "g/extra.txt", b"?")
    manifest = [
        Asset("g/a.txt", None, _sha(b"a"), local_only=True),
        Asset("g/b.txt", "http://example.invalid/b", _sha(b"b")),
        Asset("g/c.txt", "http://example.invalid/c", _sha(b"c")),
    ]
    r = assets.verify(root, manifest=manifest)
    assert r.good == ["g/a.txt"] and list(r.mismatched) == ["g/b.txt"] and r.missing == ["g/c.txt"]
    assert r.unknown == ["g/extra.txt"] and not r.ok
    with pytest.raises(FileNotFoundError):
        assets.verify(tmp_path / "nope")


@pytest.fixture
def shared_assets() -> Path:
    if not (REAL_SHARED.is_dir() and (REAL_SHARED / "SHA256SUMS").is_file()):
        pytest.skip(f"no shared asset folder at {REAL_SHARED} (with SHA256SUMS)")
    return REAL_SHARED


def test_verify_shared_assets(shared_assets):
    r = assets.verify(shared_assets)
    assert r.ok, f"sha256 mismatches: {r.mismatched}"
    assert r.checked > 0 and r.unknown == [], r.unknown
    # every file present in shared/assets is in the manifest with the same sha256
    sums = {}
    for line in (shared_assets / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            sha, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*").removeprefix("./")] = sha
    by_path = {a.path: a for a in assets.MANIFEST}
    assert set(sums) <= set(by_path), set(sums) - set(by_path)
    assert {p: by_path[p].sha256 for p in sums} == sums


def test_cli_verify_and_where(shared_assets, monkeypatch, capsys):
    monkeypatch.setenv(assets.ENV_ASSETS_DIR, str(shared_assets))
    assert assets.main(["verify", str(shared_assets)]) == 0
    capsys.readouterr()
    assert assets.main(["where"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["groups"]["unitree_g1"]["root"] == str(shared_assets)
    assert info["groups"]["amp_humanoid"]["dir"] == str(shared_assets / "amp_humanoid")


def test_cli_verify_fails_on_mismatch(tmp_path, monkeypatch, capsys):
    root = tmp_path / "root"
    _touch(root, "amp_humanoid/amp_humanoid.xml", b"not the real model")
    assert assets.main(["verify", str(root)]) == 1
    assert "MISMATCH amp_humanoid/amp_humanoid.xml" in capsys.readouterr().out
    assert assets.main(["verify", str(tmp_path / "empty-missing")]) == 1
