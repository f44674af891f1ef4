"""Ray for a sweep: start a private local Ray or join the cluster at ``RAY_ADDRESS`` (one line when
nothing answers there), and keep Ray's own output off the console unless the sweep is verbose.
Imports Ray only inside its functions; imported by runner.py."""

from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager

from sweeps.errors import SweepError


def init_ray(num_cpus: int | None = None, verbose: bool = False):
    """Start (or join, with ``RAY_ADDRESS``) Ray. Quiet unless ``verbose``: the workers' own output
    (the trials' prints, Ray's worker logs) stays in Ray's session logs instead of the driver's
    console (``log_to_driver``), and Ray's driver-side warnings are off (``logging_level``)."""
    import ray

    if ray.is_initialized():
        return
    level = logging.WARNING if verbose else logging.ERROR
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if address == "local":  # Ray's word for a new local cluster: the private one below
        address = ""
        os.environ.pop("RAY_ADDRESS")  # ray.init reads it too
    if address:  # a cluster started with `ray start`
        why = head_unreachable(address)
        if why is None:
            try:
                ray.init(address=address, log_to_driver=verbose, configure_logging=True, logging_level=level)
            except ConnectionError as e:
                why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if why is not None:
            fix = (
                "set it to the Ray head's host:port"
                if why.startswith("not host:port")
                else 'start the Ray head there (`ray start --head --port=PORT`, README: "Ray, local and multi-node")'
            )
            raise SweepError(
                f"RAY_ADDRESS={address}: {why}; {fix} or unset RAY_ADDRESS for a private local Ray; "
                "nothing was started or moved"
            )
    else:
        # a private local Ray, no dashboard (what it listens on: README, "Ray, local and multi-node")
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=verbose,
            configure_logging=True,
            logging_level=level,
        )


def head_unreachable(address: str, timeout_s: float = 3.0) -> str | None:
    """Why ``RAY_ADDRESS`` names no Ray head that answers: it is not ``host:port`` (or
    ``ray://host:port``; an IPv6 host in brackets, ``[::1]:6379``), or no TCP connection opens there.
    None when one opens, or for ``auto`` (Ray finds the cluster itself). Checked before ``ray.init``,
    which would otherwise retry for about half a minute and end in a traceback; a port that opens but
    is not a Ray head is left to ``ray.init``."""
    if address == "auto":
        return None
    shape = "not host:port (e.g. 127.0.0.1:6379, [::1]:6379 or ray://host:port)"
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:  # a scheme other than ray://, or an IPv6 host without brackets
        return shape
    if not sep or not host or not (port.isascii() and port.isdecimal() and 0 < int(port) < 65536):
        return shape
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        return f"nothing answers there ({e.strerror or type(e).__name__})"
    return None


#: Ray's documented switches for what it prints itself, as a quiet sweep sets them: the legacy
#: output engine, which ``RunConfig(verbose=0)`` silences (the default engine still prints its
#: configuration and final tables at 0), no traceback per errored trial (the trial's end line says
#: why; the whole error is in its error.txt), no warning about frequent experiment snapshots.
QUIET_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


@contextmanager
def quiet_ray(verbose: bool):
    """Around ``Tuner.fit()``: with ``verbose`` off, Ray prints nothing of its own (:data:`QUIET_ENV`,
    and Tune's ``ray.tune.tune`` logger reaches only :data:`STOP_SIGNAL`, which says in one line that a
    Ctrl+C was seen); the console is :class:`sweeps.console.ConsoleReporter`'s lines and the table."""
    tune_log = logging.getLogger("ray.tune.tune")
    saved_env = {k: os.environ.get(k) for k in QUIET_ENV}
    saved_log = (tune_log.level, tune_log.propagate)
    tune_log.addHandler(STOP_SIGNAL)
    STOP_SIGNAL.say = not verbose
    if not verbose:
        os.environ.update(QUIET_ENV)
        tune_log.setLevel(logging.WARNING)  # the stop signal's warning still reaches STOP_SIGNAL
        tune_log.propagate = False
    try:
        yield
    finally:
        tune_log.removeHandler(STOP_SIGNAL)
        tune_log.setLevel(saved_log[0])
        tune_log.propagate = saved_log[1]
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _StopSignalSeen(logging.Handler):
    """Tune catches Ctrl+C/SIGUSR1 inside ``fit()``, saves its state and returns normally; the only
    outside trace is its "Stop signal received" warning, which this handler notices (and, in a quiet
    sweep, where Ray's own warning is not shown, says in one line)."""

    seen = False
    say = False

    def emit(self, record):
        if str(record.msg).startswith("Stop signal received"):
            _StopSignalSeen.seen = True
            if self.say:
                print("sweep: stop signal received: saving the sweep's state (Ctrl+C again to skip that)", flush=True)


STOP_SIGNAL = _StopSignalSeen()
