"""One training run as seen by the tracker: start, per-epoch metrics, checkpoints, end.

The session subscribes to the trainer the way every other consumer does:

* ``on_epoch(epoch, frame, metrics)``: a trainer observer. One ``log_batch`` per epoch
  (step = epoch). When the store does not answer, the epoch goes to the spool
  (``runs/<run>/tracking/spool.jsonl``) and training goes on; the spool is sent oldest first,
  exactly once, when the store answers again (tried at most every ``probe_every_s`` seconds,
  and at the end).
* ``on_checkpoint(path, kind, epoch=None)``: an agent checkpoint observer (kind ``epoch`` or ``best``). The
  latest and best checkpoints and the curves PNG are uploaded at most every
  ``artifact_every`` epochs and at the end.
* ``ending()``: a context manager around the training that ends the run FINISHED, FAILED (any
  exception, its message in the ``error`` tag) or KILLED (KeyboardInterrupt, which is what
  Ctrl+C and the trainer's SIGTERM handler raise). What cannot be sent within
  ``end_timeout_s`` is written to ``runs/<run>/tracking/end.json`` and sent later by
  ``python -m tracking sync runs/<run>``.
* ``open_session(config, defer=True)`` (sweep trials): when the store does not answer at the
  start, training goes on with every epoch spooled, and the MLflow run itself is created (or, for
  a retried trial, found by ``find_run``) when the store answers; ``run.json`` holds what is needed
  to create it, so ``sync`` can do it after the training ended.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tracking.base import (
    FAILED,
    FINISHED,
    KILLED,
    NullTracker,
    Tracker,
    TrackingError,
    TrackingRejectedError,
    TrackingUnavailableError,
)
from tracking.params import MAX_TAG_VALUE, clip, run_params, run_tags
from tracking.spool import Spool
from tracking.store import redact, resolve_uri

DEFAULTS = dict(
    backend="mlflow",
    required=True,
    uri="",
    experiment="",
    sender="process",
    artifact_every=50,
    http_retries=0,
    http_timeout_s=5,
    artifact_timeout_s=120,
    probe_every_s=10,
    end_timeout_s=30,
)


def _warn(msg: str) -> None:
    print(f"tracking: {msg}", file=sys.stderr, flush=True)


class TrackingSession:
    def __init__(self, tracker: Tracker, tcfg: dict | None = None, experiment: str = ""):
        self.tracker = tracker
        self.cfg = dict(DEFAULTS, **(tcfg or {}))
        self.experiment = experiment
        self.enabled = not isinstance(tracker, NullTracker)
        self.run_id: str | None = None
        self.run_dir: Path | None = None
        self.spool: Spool | None = None
        self.history: list[tuple[int, dict]] = []
        self._curves_drawn_at = 0  # len(history) when curves.png was last drawn
        self.epoch = 0
        self._seq = 0
        self._offline = False
        self._next_probe = 0.0
        self._latest: tuple[Path, int] | None = None
        self._best: tuple[Path, int] | None = None
        self._uploaded: dict[str, tuple[Path, int]] = {}
        self._last_upload_epoch: int | None = None
        self._ended = False
        self.status: str | None = None
        self._sender: ThreadPoolExecutor | None = None
        self.sender_cpu_s = 0.0
        #: the store did not answer at open_session(defer=True): connect before creating the run
        self.connected = True
        #: the run is still to be created (the store did not answer at start); the start's arguments
        self._pending: dict | None = None
        #: callable -> (id of an existing run to continue (a retried sweep trial) or None, its last step)
        self.find_run = None

    # ------------------------------------------------------------------ start
    def start(
        self,
        run_dir,
        config: dict,
        device: str = "",
        tags: dict | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
        changed: dict | None = None,
        point: dict | None = None,
    ) -> None:
        """Create the run: tags, params (``tracking.params.run_params``: the seed, the ``changed``
        settings, a sweep trial's ``point``), the resolved config (``run_dir/config.yaml``) as an
        artifact. ``run_id``: continue that existing run instead (a retried or restored sweep trial)."""
        if not self.enabled:
            return
        self.run_dir = Path(run_dir)
        tdir = self.run_dir / "tracking"
        self.spool = Spool(tdir / "spool.jsonl")
        args = {
            "tags": run_tags(config, device, tags),
            "params": run_params(config, changed, point),
            "run_name": run_name or self.run_dir.name,
            "run_id": run_id,
        }
        if not self.connected:
            self._defer(args, "the store did not answer when the training started")
            return
        try:
            self._create_run(args)
        except TrackingUnavailableError as e:
            if self.cfg.get("defer_start"):
                self._defer(args, str(e))
                return
            self._start_failed(e)
        except TrackingError as e:
            self._start_failed(e)

    def _start_failed(self, e: TrackingError) -> None:
        if self.run_id:
            try:
                self.tracker.set_tags({"error": clip(f"tracking start failed: {e}", MAX_TAG_VALUE)})
                self.tracker.end_run(FAILED)
            except TrackingError:
                pass
        self.run_id = None
        if self.cfg["required"]:
            raise TrackingUnavailableError(
                f"tracking store {redact(self.tracker.uri)}: the run could not be created ({e})"
            ) from e
        _warn(f"the run could not be created ({e}); tracking.required=false: training goes on without tracking")
        self.enabled = False

    def _create_run(self, args: dict) -> None:
        """Create (or continue) the run from the start's arguments and write ``run.json``."""
        run_id = args["run_id"]
        if run_id:
            self.tracker.attach(run_id)
            self.tracker.reopen()  # status back to RUNNING
            self.run_id = run_id
            self.tracker.set_tags(args["tags"])  # params stay as first logged
        else:
            self.run_id = self.tracker.start_run(args["run_name"], args["tags"])
            self.tracker.log_params(args["params"])
        cfg_file = self.run_dir / "config.yaml"
        if cfg_file.exists():
            self.tracker.log_artifact(cfg_file)
        url = self.tracker.run_url()
        self._write_run_json(
            {"run_id": self.run_id, "experiment_id": getattr(self.tracker, "experiment_id", None), "url": url}
        )
        where = url or redact(self.tracker.uri)
        print(f"tracking: MLflow run {self.run_id} in experiment {self.experiment!r}: {where}", flush=True)

    def _write_run_json(self, fields: dict) -> None:
        tdir = self.run_dir / "tracking"
        tdir.mkdir(parents=True, exist_ok=True)
        d = {
            "experiment": self.experiment,
            "uri": redact(self.tracker.uri),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            **fields,
        }
        tmp = tdir / "run.json.tmp"
        tmp.write_text(json.dumps(d, indent=1))
        os.replace(tmp, tdir / "run.json")

    def _defer(self, args: dict, why: str) -> None:
        """Train on with the run still to be created (see the module docstring)."""
        self._pending = args
        self._offline = True
        self._next_probe = time.monotonic() + float(self.cfg["probe_every_s"])
        self._write_run_json({"run_id": None, "pending_start": args})
        _warn(
            f"{redact(self.tracker.uri)}: {why}; training goes on, every epoch is kept in {self.spool.path}, "
            "and the MLflow run is created when the store answers"
        )

    def _try_start(self, force: bool = False) -> bool:
        """Create the pending run if the store answers now; True when there is a run."""
        if self._pending is None:
            return self.run_id is not None
        if not force and time.monotonic() < self._next_probe:
            return False
        self._next_probe = time.monotonic() + float(self.cfg["probe_every_s"])
        if not self.tracker.probe():
            return False
        try:
            if not self.connected:
                self.tracker.connect(self.experiment)
                self.connected = True
            args = dict(self._pending)
            if not args["run_id"] and self.find_run is not None:
                args["run_id"], last = self.find_run()
                while args["run_id"] and len(self.spool) and self.spool.pending[0]["step"] <= last:
                    self.spool.ack(self.spool.pending[0]["seq"], rejected="already in the store")  # never twice
            self._create_run(args)
        except TrackingUnavailableError:
            return False
        self._pending = None
        print(
            f"tracking: {redact(self.tracker.uri)} answers; run {self.run_id} created, {len(self.spool)} "
            "spooled epoch(s) to send",
            flush=True,
        )
        return True

    # ------------------------------------------------------------------ metrics
    def on_epoch(self, epoch: int, frame: int, metrics: dict) -> None:
        """Queue the epoch's metrics; a background thread sends them (in order, one request per
        epoch), so the training loop never waits for the store."""
        if not self.enabled or (self.run_id is None and self._pending is None):
            return
        self.epoch = epoch
        m = {k: float(v) for k, v in metrics.items()}
        self.history.append((epoch, m))
        self._seq += 1
        rec = {"seq": self._seq, "step": int(epoch), "ts": int(time.time() * 1000), "metrics": m}
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracking")
        self._sender.submit(self._send, rec, epoch)

    def flush(self) -> None:
        """Wait until every queued epoch went to the store or to the spool."""
        if self._sender is not None:
            self._sender.shutdown(wait=True)
            self._sender = None

    def _send(self, rec: dict, epoch: int) -> None:
        cpu0 = time.thread_time()
        try:
            self._send_now(rec, epoch)
        except BaseException as e:  # never lose an epoch to an unforeseen error in the thread
            if not any(r["seq"] == rec["seq"] for r in self.spool.pending):
                self.spool.add(rec)
            _warn(f"epoch {epoch}: {type(e).__name__}: {e}")
        finally:
            #: CPU time the sender thread used (an upper bound on the GIL time it took from training)
            self.sender_cpu_s += time.thread_time() - cpu0

    def _send_now(self, rec: dict, epoch: int) -> None:
        if self._pending is not None:  # no run yet: keep the epoch, create the run when the store answers
            self.spool.add(rec)
            if self._try_start():
                self._offline = False
                self._drain(force=True)
        elif len(self.spool) == 0 and not self._offline:
            try:
                self.tracker.log_metrics(rec["step"], rec["metrics"], rec["ts"])
            except TrackingRejectedError as e:
                _warn(f"epoch {epoch} metrics refused by the store: {e}")
            except Exception as e:  # unreachable (or an unforeseen client error): keep it, go on
                self._go_offline(e)
                self.spool.add(rec)
            except BaseException:  # Ctrl+C / SIGTERM in the middle of the request: keep the epoch
                self.spool.add(rec)  # (if it did arrive, sending it again writes the same rows)
                raise
        else:
            self.spool.add(rec)
            self._drain()
        self._maybe_upload(epoch)

    def _go_offline(self, e: Exception) -> None:
        if not self._offline:
            _warn(
                f"{redact(self.tracker.uri)} does not answer ({e}); training goes on, metrics are kept in "
                f"{self.spool.path} and sent when it answers again"
            )
        self._offline = True
        self._next_probe = time.monotonic() + float(self.cfg["probe_every_s"])

    def _drain(self, force: bool = False) -> bool:
        """Send the spool oldest first; True when it is empty."""
        if self._pending is not None:
            return False
        if not len(self.spool):
            return True
        if self._offline and not force and time.monotonic() < self._next_probe:
            return False
        if self._offline and not self.tracker.probe():
            self._next_probe = time.monotonic() + float(self.cfg["probe_every_s"])
            return False
        sent = 0
        while len(self.spool):
            rec = self.spool.pending[0]
            try:
                self.tracker.log_metrics(rec["step"], rec["metrics"], rec["ts"])
            except TrackingRejectedError as e:
                _warn(f"epoch {rec['step']} metrics refused by the store: {e}")
                self.spool.ack(rec["seq"], rejected=str(e)[:500])
                continue
            except Exception as e:
                self._go_offline(e)
                return False
            self.spool.ack(rec["seq"])
            sent += 1
        if self._offline:
            print(f"tracking: {redact(self.tracker.uri)} answers again; sent {sent} spooled epoch(s)", flush=True)
        self._offline = False
        return True

    # ------------------------------------------------------------------ artifacts
    def on_checkpoint(self, path, kind: str, epoch: int | None = None) -> None:
        if not self.enabled or (self.run_id is None and self._pending is None):
            return
        # the agent saves an epoch's checkpoints before it reports the epoch: it passes the epoch
        entry = (Path(path), self.epoch if epoch is None else int(epoch))
        if kind == "best":
            self._best = entry
        else:
            self._latest = entry

    def upload_now(self) -> None:
        """Upload the latest and best checkpoints and curves.png now (a sweep trial, at each report:
        the scheduler may end it before its end), never raising."""
        if not self.enabled or self._offline or self.run_id is None:
            return
        try:
            self._upload_artifacts()
            self._last_upload_epoch = self.epoch
        except TrackingUnavailableError as e:
            self._go_offline(e)
        except Exception as e:  # a full disk, a plotting error...: tracking never stops the training
            _warn(f"artifact upload failed ({type(e).__name__}: {e}); will try again at the end")

    def _maybe_upload(self, epoch: int) -> None:
        every = int(self.cfg["artifact_every"] or 0)
        if self._last_upload_epoch is None:
            self._last_upload_epoch = epoch - 1
        if every <= 0 or self._offline or self.run_id is None or epoch - self._last_upload_epoch < every:
            return
        if self._latest is None and self._best is None:
            return
        self._last_upload_epoch = epoch
        try:
            self._upload_artifacts()
        except TrackingUnavailableError as e:
            self._go_offline(e)
        except Exception as e:  # a full disk, a plotting error...: tracking never stops the training
            _warn(f"artifact upload failed ({type(e).__name__}: {e}); will try again at the end")

    def _stage(self, src: Path, name: str) -> Path:
        """The checkpoint under a fixed name (hard link when possible; no copy of the bytes)."""
        out = self.run_dir / "tracking" / "upload" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()
        try:
            os.link(src, out)
        except OSError:
            shutil.copy2(src, out)
        return out

    def _draw_curves(self) -> None:
        """curves.png of the history so far, unless it was drawn at this length already (the end
        draws it and then uploads it: once is enough)."""
        if not self.history or self._curves_drawn_at == len(self.history):
            return
        from tracking.curves import plot_curves

        plot_curves(self.history, self.run_dir / "curves.png")
        self._curves_drawn_at = len(self.history)

    def _upload_artifacts(self) -> list[str]:
        """Latest and best checkpoint (as checkpoints/latest.pth, checkpoints/best.pth) and curves.png."""
        done = []
        tags = {}
        for name, entry in (("latest", self._latest), ("best", self._best)):
            if entry is None or self._uploaded.get(name) == entry or not entry[0].exists():
                continue
            self.tracker.log_artifact(self._stage(entry[0], f"{name}.pth"), "checkpoints")
            self._uploaded[name] = entry
            tags[f"checkpoint.{name}"] = entry[0].name
            tags[f"checkpoint.{name}_epoch"] = str(entry[1])
            done.append(f"checkpoints/{name}.pth")
        png = self.run_dir / "curves.png"
        self._draw_curves()
        if png.exists():  # `sync` has no history: it sends the PNG drawn before
            self.tracker.log_artifact(png)
            done.append("curves.png")
        if tags:
            self.tracker.set_tags(tags)
        return done

    # ------------------------------------------------------------------ end
    def end(self, status: str | None, error: str | None = None) -> None:
        """Send what is left and set the terminal status; bounded by ``end_timeout_s``. ``status=None``
        sends what is left and sets no status: another writer that knows why the run ended sets it
        (a sweep trial that Ray Tune stopped: the sweep driver)."""
        if self._ended or not self.enabled or (self.run_id is None and self._pending is None):
            return
        self._ended = True
        self.status, self._error = status, error
        try:
            self.flush()
        except KeyboardInterrupt:  # a second Ctrl+C: the queued epochs are sent below or spooled
            pass
        deadline = time.monotonic() + float(self.cfg["end_timeout_s"])
        left = {"metrics": True, "artifacts": True, "status": status is not None}
        if self.history:  # drawn now, while the whole history is here: `sync` sends it if the store is down
            try:
                self._draw_curves()
            except Exception as e:  # a plotting error never stops the end
                _warn(f"curves.png not drawn ({type(e).__name__}: {e})")
        tags = {}
        if status == FAILED and error:
            tags["error"] = clip(error, MAX_TAG_VALUE)
            tags["mlflow.note.content"] = clip(f"Training failed: {error}", MAX_TAG_VALUE)
        elif status == KILLED:
            tags["stop_reason"] = clip(error or "interrupted", MAX_TAG_VALUE)
        try:
            while True:
                if self._pending is not None:
                    self._try_start(force=True)
                if left["metrics"] and self._drain(force=True):
                    left["metrics"] = False
                if not left["metrics"] and left["artifacts"]:
                    try:
                        self._uploaded.clear()  # the final upload always sends the current files
                        self._upload_artifacts()
                        left["artifacts"] = False
                    except TrackingUnavailableError as e:
                        self._go_offline(e)
                    except Exception as e:  # refused, or a local error: the status still goes
                        _warn(f"artifact upload failed ({type(e).__name__}: {e})")
                        left["artifacts"] = False
                if not left["metrics"] and not left["artifacts"] and left["status"]:
                    try:
                        if tags:
                            self.tracker.set_tags(tags)
                        self.tracker.end_run(status)
                        left["status"] = False
                    except TrackingRejectedError as e:
                        _warn(f"the store refused the final status: {e}")
                        left["status"] = False
                    except Exception as e:
                        self._go_offline(e)
                if not any(left.values()) or time.monotonic() >= deadline:
                    break
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        except KeyboardInterrupt:  # a second Ctrl+C: stop waiting, keep what is left for `sync`
            pass
        if any(left.values()):
            self._write_end(status, left)
            _warn(
                f"{redact(self.tracker.uri)} did not answer before the end: "
                f"{'the run itself (not created yet), ' if self._pending is not None else ''}{len(self.spool)} epoch(s) "
                f"of metrics{', the artifacts' if left['artifacts'] else ''}{f' and the final status {status}' if status else ''} are kept in "
                f"{self.run_dir / 'tracking'}; send them with: python -m tracking sync {self.run_dir}"
            )
        else:
            end_file = self.run_dir / "tracking" / "end.json"
            if end_file.exists():
                end_file.unlink()
            url = self.tracker.run_url() if hasattr(self.tracker, "run_url") else ""
            ended = f"ended {status}" if status else "sent; its status is left to the sweep driver"
            print(f"tracking: run {self.run_id} {ended}" + (f": {url}" if url else ""), flush=True)
        close = getattr(self.tracker, "close", None)
        if close is not None:  # the worker process of tracking.sender=process
            close()

    def _write_end(self, status: str, left: dict) -> None:
        d = {
            "run_id": self.run_id,
            "status": status,
            "error": self._error,
            "left": [k for k, v in left.items() if v],
            "artifacts": {k: [str(v[0]), v[1]] for k, v in (("latest", self._latest), ("best", self._best)) if v},
        }
        (self.run_dir / "tracking" / "end.json").write_text(json.dumps(d, indent=1))

    @contextmanager
    def ending(self):
        """Around the training: FINISHED on return, KILLED on KeyboardInterrupt/SystemExit, else FAILED."""
        try:
            yield self
        except KeyboardInterrupt as e:
            self.end(KILLED, str(e) or "KeyboardInterrupt (Ctrl+C)")
            raise
        except SystemExit as e:
            self.end(KILLED, f"SystemExit({e.code})")
            raise
        except BaseException as e:
            self.end(FAILED, f"{type(e).__name__}: {e}")
            raise
        else:
            self.end(FINISHED)


def open_session(config: dict, defer: bool = False) -> TrackingSession:
    """Connect to the store named by ``config['tracking']`` and create the experiment, before the
    simulator starts. Raises :class:`TrackingUnavailableError` (naming the URI) when the store
    cannot be reached and ``tracking.required`` is true; with ``required=false`` it says so and
    returns a disabled session. ``defer=True`` (sweep trials): an unreachable store is no error;
    the run is created when it answers (see the module docstring)."""
    t = dict(DEFAULTS, **(config.get("tracking") or {}))
    t["defer_start"] = bool(defer)
    backend = str(t.get("backend") or "none").lower()
    if backend == "none":
        return TrackingSession(NullTracker(), t)
    if backend != "mlflow":
        raise TrackingError(f"tracking.backend: must be mlflow or none, got {backend!r}")
    uri = resolve_uri(t.get("uri"))
    experiment = str(t.get("experiment") or config.get("task", {}).get("name") or "Default")
    sender = str(t.get("sender") or "process").lower()
    if sender not in ("process", "thread"):
        raise TrackingError(f"tracking.sender: must be process or thread, got {sender!r}")
    try:
        if sender == "process":  # the MLflow client's CPU time on another core (tracking/remote.py)
            from tracking.remote import ProcessTracker as tracker_cls
        else:
            from tracking.mlflow_tracker import MlflowTracker as tracker_cls

        tracker = tracker_cls(uri, t["http_retries"], t["http_timeout_s"], t["artifact_timeout_s"])
        tracker.connect(experiment)
    except TrackingUnavailableError as e:
        if defer:
            _warn(f"{e}: the run is created when the store answers")
            session = TrackingSession(tracker, t, experiment)
            session.connected = False
            return session
        if t["required"]:
            raise TrackingUnavailableError(
                f"{e}. Start the server, point tracking.uri=... or MLFLOW_TRACKING_URI at one that runs, "
                "or train without it: tracking=none (or tracking.required=false)"
            ) from None
        _warn(f"{e}; tracking.required=false: training goes on WITHOUT tracking")
        return TrackingSession(NullTracker(), t)
    return TrackingSession(tracker, t, experiment)
