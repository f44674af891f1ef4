"""Sending later what a training or a sweep could not send while the store was down.

* :func:`sync_run`: one run folder (``runs/<run>``): create the run if it never was (a sweep trial
  that started during an outage, from ``tracking/run.json``'s ``pending_start``), send the spool
  (oldest first, each epoch once), the checkpoints and curves, and the final status from
  ``tracking/end.json``; a run whose process is gone from this host without an end is closed
  KILLED.
* :func:`sync_sweep`: every trial folder of a sweep on this host, the child runs whose process is
  gone (closed KILLED), and the sweep's own results when the store did not answer at its end
  (``<storage>/<name>/parent_pending.json``).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from tracking import sweep_runs
from tracking.base import FAILED, FINISHED, KILLED, TrackingError
from tracking.mlflow_tracker import MlflowTracker
from tracking.session import TrackingSession
from tracking.spool import Spool
from tracking.store import process_alive, resolve_uri

STATUSES = (FINISHED, FAILED, KILLED)


class SyncError(TrackingError):
    pass


def _uri(given: str | None, stored: str) -> str:
    # a stored URI never holds credentials: they come from MLFLOW_TRACKING_URI / _USERNAME / _PASSWORD
    return resolve_uri(given or (os.environ.get("MLFLOW_TRACKING_URI") if "***" in stored else None) or stored)


def sync_run(run_dir, uri: str | None = None, status: str | None = None, timeout_s: float = 30) -> str:
    """Sync one run folder; returns what was done (one line). Raises :class:`SyncError` when the
    folder was not tracked and :class:`TrackingError` when the store does not answer."""
    run_dir = Path(run_dir)
    tdir = run_dir / "tracking"
    if not (tdir / "run.json").exists():
        raise SyncError(f"{tdir / 'run.json'} not found: {run_dir} was not tracked")
    info = json.loads((tdir / "run.json").read_text())
    uri = _uri(uri, info["uri"])
    end = json.loads((tdir / "end.json").read_text()) if (tdir / "end.json").exists() else None
    status = status or (end or {}).get("status")
    error = (end or {}).get("error")
    if (
        status is None
        and info.get("host") == socket.gethostname()
        and info.get("pid")
        and not process_alive(info["pid"])
    ):
        status, error = KILLED, f"its process (pid {info['pid']} on {info['host']}) is gone"
    if status not in (None, *STATUSES):
        raise SyncError(f"--status must be FINISHED, FAILED or KILLED, got {status!r}")
    tracker = MlflowTracker(uri)
    created = ""
    if info.get("run_id") is None and info.get("pending_start"):  # never created: create it now
        tracker.connect(info.get("experiment") or "Default")
        args = dict(info["pending_start"])
        tags = args.get("tags") or {}
        if not args.get("run_id") and tags.get(sweep_runs.TRIAL_TAG) and tags.get(sweep_runs.PARENT_TAG):
            args["run_id"] = sweep_runs.find_child(
                uri, info.get("experiment"), tags[sweep_runs.PARENT_TAG], tags[sweep_runs.TRIAL_TAG]
            )
        s0 = TrackingSession(tracker, {}, info.get("experiment", ""))
        s0.run_dir = run_dir
        s0._create_run(args)
        info = json.loads((tdir / "run.json").read_text())
        created = "created, "
    else:
        tracker.attach(info["run_id"])
    s = TrackingSession(tracker, {"end_timeout_s": timeout_s, "probe_every_s": 1}, info.get("experiment", ""))
    s.run_id, s.run_dir, s.spool = info["run_id"], run_dir, Spool(tdir / "spool.jsonl")
    pending = len(s.spool)
    if status is None:
        ok = s._drain(force=True)
        return (
            f"run {info['run_id']}: {created}sent {pending - len(s.spool)} of {pending} spooled epoch(s); no final "
            "status known (its process runs, or pass --status KILLED)" + ("" if ok else "; the store did not answer")
        )
    for name, (path, epoch) in ((end or {}).get("artifacts") or {}).items():
        setattr(s, f"_{name}", (Path(path), int(epoch)))
    s.end(status, error)
    ok = not (tdir / "end.json").exists()
    return f"run {info['run_id']}: {created}sent {pending - len(s.spool)} of {pending} spooled epoch(s); " + (
        f"ended {status}" if ok else "not finished (the store did not answer)"
    )


def needs_sync(run_dir: Path) -> bool:
    """Something of this run folder did not reach the store (yet)."""
    tdir = Path(run_dir) / "tracking"
    if not (tdir / "run.json").exists():
        return False
    info = json.loads((tdir / "run.json").read_text())
    return bool(info.get("run_id") is None or (tdir / "end.json").exists() or len(Spool(tdir / "spool.jsonl")))


def trial_run_dirs(work_root: Path) -> list[Path]:
    """The run folders of a sweep's trials on this host (``<work_root>/<trial>/runs/<run>``)."""
    return sorted(p.parent.parent for p in Path(work_root).glob("*/runs/*/tracking/run.json"))


def close_orphans(uri: str, experiment: str, parent_run_id: str) -> list[str]:
    """End KILLED every child run still RUNNING whose process (tags ``hostname`` and ``pid``) is gone
    from this host; returns their ids."""
    host, closed = socket.gethostname(), []
    for run in sweep_runs.children(uri, experiment, parent_run_id):
        t = run.data.tags
        if (
            run.info.status == "RUNNING"
            and t.get("hostname") == host
            and t.get("pid", "").isdigit()
            and not process_alive(int(t["pid"]))
        ):
            sweep_runs.end_if_running(
                uri,
                experiment,
                run.info.run_id,
                KILLED,
                {"stop_reason": f"its process (pid {t['pid']} on {host}) is gone"},
            )
            closed.append(run.info.run_id)
    return closed


def _driver_gone(lock: Path) -> bool:
    """The sweep's driver is not running on this host (no lock, or a lock whose process is gone)."""
    if not lock.exists():
        return True
    try:
        h = json.loads(lock.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return h.get("host") == socket.gethostname() and bool(h.get("pid")) and not process_alive(h["pid"])


def sync_sweep(name: str, storage=None, uri: str | None = None, timeout_s: float = 30, say=print) -> int:
    """Everything of sweep ``name`` that did not reach the store; 0 when all of it went."""
    storage = Path(storage or Path(__file__).resolve().parents[1] / "sweeps_out")
    state_file = storage / name / "sweep.json"
    if not state_file.exists():
        say(f"error: no {state_file}: run the sweep first (or pass --storage)")
        return 2
    state = json.loads(state_file.read_text())
    uri = _uri(uri, state["uri"])
    try:  # one quick answer first: with the store down nothing below could go
        sweep_runs.tracker(uri, state["experiment"])
    except TrackingError as e:
        say(f"the store did not answer ({str(e).splitlines()[0][:200]}): nothing sent")
        return 1
    left = 0
    try:
        closed = close_orphans(uri, state["experiment"], state["parent_run_id"])
        if closed:
            say(f"closed {len(closed)} child run(s) whose process is gone: {', '.join(closed)}")
        if _driver_gone(storage / f"{name}.lock") and not (storage / name / "parent_pending.json").exists():
            parent = sweep_runs.tracker(uri, state["experiment"]).client.get_run(state["parent_run_id"])
            if parent.info.status == "RUNNING":
                sweep_runs.end_if_running(
                    uri,
                    state["experiment"],
                    state["parent_run_id"],
                    KILLED,
                    {"stop_reason": f"its driver is gone; `make sweep SWEEP={name} RESUME=1` continues it"},
                )
                say(f"closed the parent run {state['parent_run_id']} KILLED: its driver is gone")
    except TrackingError as e:
        say(f"the store did not answer ({e}): child runs not checked")
        left += 1
    for run_dir in trial_run_dirs(Path(state.get("trial_work_dir") or "")) if state.get("trial_work_dir") else []:
        if not needs_sync(run_dir):
            continue
        try:
            say(sync_run(run_dir, uri, timeout_s=timeout_s))
            left += int(needs_sync(run_dir))
        except TrackingError as e:
            say(f"{run_dir}: {e}")
            left += 1
    pending = storage / name / "parent_pending.json"
    if pending.exists():
        p = json.loads(pending.read_text())
        try:
            sweep_runs.finish_parent(
                uri,
                state["experiment"],
                state["parent_run_id"],
                p["status"],
                [a for a in p["artifacts"] if Path(a).exists()],
                tags=p.get("tags"),
                metrics=p.get("metrics"),
            )
            pending.unlink()
            say(f"the sweep's results went to its parent run {state['parent_run_id']} ({p['status']})")
        except TrackingError as e:
            say(f"the sweep's results are still kept in {pending} ({e})")
            left += 1
    return 0 if left == 0 else 1
