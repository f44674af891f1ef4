"""Cost of MLflow tracking per training epoch, against the epoch time of a default-size CPU training.

    python benchmarks/tracking_overhead.py [--epochs 300] [--metrics 40] [--skip-training] [--json out.json]

For each store, a real tracking session (``tracking.open_session``, the code path training uses)
logs ``--epochs`` epochs of ``--metrics`` metrics (the trainer's own keys padded with extra keys)
through ``on_epoch`` (one ``log_batch`` per epoch), timed per call:

* ``server``: a local ``mlflow server`` (sqlite store, 127.0.0.1, as ``make mlflow-ui`` starts it);
* ``sqlite``: the embedded default (sqlite store, no server);

each with ``tracking.sender=thread`` (the MLflow client in a thread of the training process) and
``process`` (the default: in a child process, ``tracking/remote.py``). ``loop_overhead_pct`` is the
slow-down of GIL-holding busy epochs of ``--epoch-s`` seconds (the worst case for a thread sender).

Also timed: the one-off start (run + ~130 params + config artifact) and one periodic artifact
upload (latest + best checkpoint of default-network size, curves PNG), which happens at most
every ``tracking.artifact_every`` (50) epochs.

The reference epoch: a short training with the default networks and horizon (num_envs=256,
tracking=none); its epoch wall time scaled by 4096/256 estimates the default num_envs=4096 epoch
(env stepping and the PPO/discriminator update both grow linearly with num_envs x horizon).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METRIC_KEYS = [
    "disc/loss",
    "disc/grad_penalty",
    "disc/agent_logit",
    "disc/agent_replay_logit",
    "disc/demo_logit",
    "disc/agent_acc",
    "disc/demo_acc",
    "reward/disc",
    "reward/disc_std",
    "reward/task",
    "episode/length",
    "loss/actor",
    "loss/critic",
    "loss/bounds",
    "policy/sigma",
    "perf/env_steps_per_s",
    "perf/play_time_s",
    "perf/update_time_s",
    "rollout/motion_nn_dist",
    "rollout/fall_rate",
    "episode/ended",
]


def _compose(*overrides):
    from hydra import compose, initialize_config_dir

    from isaacgymenvs import train as train_mod

    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        return compose("config", overrides=list(overrides))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(root: Path):
    import requests

    port = _free_port()
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = open(root / "server.log", "ab")
    p = subprocess.Popen(
        cmd
        + [
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--default-artifact-root",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return p, url
        except requests.RequestException:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.2)
    _stop(p)
    raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")


def _stop(p) -> None:
    from tracking.ui import stop_group

    stop_group(p)


def _ms(xs):
    xs = sorted(xs)
    return {
        "mean_ms": 1e3 * statistics.fmean(xs),
        "p50_ms": 1e3 * xs[len(xs) // 2],
        "p95_ms": 1e3 * xs[int(0.95 * (len(xs) - 1))],
        "max_ms": 1e3 * xs[-1],
    }


def bench_store(
    uri: str, work: Path, epochs: int, n_metrics: int, ckpt_mb: float, sender: str = "process", epoch_s: float = 0.62
) -> dict:
    from omegaconf import OmegaConf

    from tracking import open_session

    config = OmegaConf.to_container(
        _compose(
            "task=HumanoidAMP",
            f"tracking.uri={uri}",
            "tracking.experiment=overhead",
            "tracking.artifact_every=0",
            f"tracking.sender={sender}",
        ),
        resolve=True,
    )
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    t0 = time.perf_counter()
    session = open_session(config)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    session.start(run_dir, config, device="cpu")
    t_start = time.perf_counter() - t0
    keys = (METRIC_KEYS + [f"extra/m{i:02d}" for i in range(n_metrics)])[:n_metrics]
    times = []
    for e in range(1, epochs + 1):
        m = {k: 0.001 * e + i for i, k in enumerate(keys)}
        t0 = time.perf_counter()
        session.on_epoch(e, e * 65536, m)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    session.flush()
    t_flush = time.perf_counter() - t0
    sender_cpu_ms = 1e3 * session.sender_cpu_s / epochs
    # The training loop's view: epochs of GIL-holding Python work (the worst case for the
    # background sender, which needs the GIL for its HTTP request) with and without tracking.
    busy_epochs, busy_s = 20, epoch_s

    def work(n):  # a fixed amount of GIL-holding work
        x = 0
        for i in range(n):
            x += i * i
        return x

    t0 = time.perf_counter()
    work(1_000_000)
    n_iter = int(1_000_000 * busy_s / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    for _ in range(busy_epochs):
        work(n_iter)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    for e in range(epochs + 1, epochs + 1 + busy_epochs):
        work(n_iter)
        session.on_epoch(e, e * 65536, {k: 0.001 * e + i for i, k in enumerate(keys)})
    tracked = time.perf_counter() - t0
    session.flush()
    # one periodic upload: latest + best checkpoints of the default networks' size, and the PNG
    nn = run_dir / "nn"
    nn.mkdir(exist_ok=True)
    for name in ("HumanoidAMP_50.pth", "HumanoidAMP_best.pth"):
        (nn / name).write_bytes(os.urandom(int(ckpt_mb * 2**20)))
    session.on_checkpoint(nn / "HumanoidAMP_50.pth", "epoch")
    session.on_checkpoint(nn / "HumanoidAMP_best.pth", "best")
    t0 = time.perf_counter()
    session._upload_artifacts()
    t_upload = time.perf_counter() - t0
    t0 = time.perf_counter()
    session.end("FINISHED")
    t_end = time.perf_counter() - t0
    return {
        "uri": uri.split("://")[0],
        "sender": sender,
        "epochs": epochs,
        "metrics_per_epoch": n_metrics,
        "per_epoch": _ms(times[5:]),
        "flush_after_burst_s": t_flush,
        "sender_thread_cpu_ms_per_epoch": sender_cpu_ms,
        "busy_epoch_s": epoch_s,
        "loop_overhead_pct": 100.0 * (tracked - bare) / bare,
        "open_s": t_open,
        "start_s": t_start,
        "artifact_upload_s": t_upload,
        "end_s": t_end,
    }


def reference_epoch(num_envs: int = 256, epochs: int = 4) -> dict:
    """Wall time per epoch of the default networks/horizon at ``num_envs`` (first epoch dropped)."""
    from isaacgymenvs import train as train_mod

    stamps = []
    with tempfile.TemporaryDirectory() as d:
        cfg = _compose(
            "task=HumanoidAMP",
            "headless=True",
            "sim=mujoco",
            f"num_envs={num_envs}",
            f"max_iterations={epochs}",
            "tracking=none",
            f"train.params.config.minibatch_size={num_envs * 16}",
            f"train.params.config.amp_minibatch_size={min(4096, num_envs * 16)}",
            "train.params.config.amp_obs_demo_buffer_size=20000",
            "train.params.config.amp_replay_buffer_size=100000",
        )
        t = train_mod.Trainer(cfg, observers=[lambda e, f, m: stamps.append(time.perf_counter())], runs_dir=d)
        t.build()
        t.train()
    per = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    return {
        "num_envs": num_envs,
        "horizon_length": 16,
        "epoch_s": statistics.fmean(per),
        "default_epoch_s_estimate": statistics.fmean(per) * 4096 / num_envs,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--metrics", type=int, default=40)
    p.add_argument(
        "--ckpt-mb", type=float, default=24.0, help="checkpoint size (default networks + Adam state: ~24 MB)"
    )
    p.add_argument(
        "--epoch-s",
        type=float,
        default=0.62,
        help="length of the GIL-holding busy epochs (default: the H100 HumanoidAMP epoch at 4096 envs)",
    )
    p.add_argument("--senders", default="thread,process")
    p.add_argument("--skip-training", action="store_true", help="do not measure the reference epoch")
    p.add_argument("--json")
    a = p.parse_args()
    out = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "stores": {},
    }
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "srv").mkdir()
        proc, url = _start_server(d / "srv")
        senders = a.senders.split(",")
        try:
            for sender in senders:
                out["stores"][f"server/{sender}"] = bench_store(
                    url, d / f"w-server-{sender}", a.epochs, a.metrics, a.ckpt_mb, sender, a.epoch_s
                )
        finally:
            _stop(proc)
        (d / "mlruns").mkdir()
        for sender in senders:
            out["stores"][f"sqlite/{sender}"] = bench_store(
                f"sqlite:///{d / 'mlruns' / 'mlflow.db'}",
                d / f"w-sqlite-{sender}",
                a.epochs,
                a.metrics,
                a.ckpt_mb,
                sender,
                a.epoch_s,
            )
    if not a.skip_training:
        out["reference"] = reference_epoch()
        ep = out["reference"]["default_epoch_s_estimate"]
        for s in out["stores"].values():
            s["share_of_default_epoch_pct"] = 100 * s["per_epoch"]["mean_ms"] / 1e3 / ep
            s["artifact_upload_amortized_pct"] = 100 * s["artifact_upload_s"] / 50 / ep
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
