"""HumanoidAMP or G1AMP (--task) on MuJoCo Warp: compile time, start time, physics and end-to-end throughput, memory.

    python benchmarks/gpu_throughput.py [--task HumanoidAMP] [--envs 4096 8192 16384] [--train-envs 4096] [--json out.json]

* first compile: building the backend and its first control step with an empty kernel cache
  (a subprocess with a fresh cache folder);
* warm start: the same with the cache filled;
* physics only: control steps per second x envs (random PD targets, 6 substeps, contact
  forces), CUDA graph replay;
* end to end: a full AMP training (rollout, AMP observations, discriminator and PPO updates)
  with IsaacGymEnvs' default hyperparameters, env steps per second over epochs 2..n;
* peak GPU memory: the most the device had in use during the run (torch and warp allocations).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class MemWatch:
    """Samples device memory in use (total - free) every 20 ms."""

    def __init__(self):
        import torch

        self.torch = torch
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            free, total = self.torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            time.sleep(0.02)

    def __enter__(self):
        free, total = self.torch.cuda.mem_get_info()
        self.base = total - free
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def control_dt(task: str) -> float:
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(REPO / "cfg" / "task" / f"{task}.yaml")
    return float(cfg.env.controlFrequencyInv) * float(cfg.sim.dt)


def start_time(num_envs: int, cache: str, task: str = "HumanoidAMP") -> float:
    """Seconds to build the backend and run one control step, in a fresh process."""
    code = (
        "import time,torch; t=time.perf_counter();"
        "from isaacgymenvs.task_registry import task_model; from isaacgymenvs.sim.mujoco_warp import MujocoWarpBackend;"
        f"b=MujocoWarpBackend(task_model({task!r}), {num_envs}, {control_dt(task)!r}, device='cuda:0');"
        "b.step(); torch.cuda.synchronize(); print(time.perf_counter()-t)"
    )
    env = dict(os.environ, AMP_WARP_CACHE=cache, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def physics(num_envs: int, steps: int, task: str = "HumanoidAMP") -> dict:
    import torch

    from isaacgymenvs.sim.mujoco_warp import MujocoWarpBackend
    from isaacgymenvs.task_registry import task_model

    model = task_model(task)
    D = model.nu
    with MemWatch() as mem:
        sim = MujocoWarpBackend(model, num_envs, control_dt(task), device="cuda:0")
        z = torch.zeros
        quat = z(num_envs, 4, device="cuda")
        quat[:, 0] = 1
        pos = z(num_envs, 3, device="cuda")
        pos[:, 2] = 0.89 if task == "HumanoidAMP" else float(model.key_qpos[0, 2])
        dof0 = (
            z(num_envs, D, device="cuda")
            if task == "HumanoidAMP"
            else torch.as_tensor(model.key_qpos[0, 7:], dtype=torch.float32, device="cuda").expand(num_envs, -1).clone()
        )
        ids = torch.arange(num_envs, device="cuda")
        sim.write_state(
            ids,
            pos,
            quat,
            z(num_envs, 3, device="cuda"),
            z(num_envs, 3, device="cuda"),
            dof0,
            z(num_envs, D, device="cuda"),
        )
        g = torch.Generator(device="cuda").manual_seed(0)
        targets = dof0 + 0.3 * torch.randn(steps, num_envs, D, device="cuda", generator=g)
        for k in range(5):
            sim.set_pd_targets(targets[k])
            sim.step()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for k in range(steps):
            sim.set_pd_targets(targets[k])
            sim.step()
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
    return {
        "task": task,
        "num_envs": num_envs,
        "substeps": sim.substeps,
        "env_steps_per_s": num_envs * steps / dt,
        "peak_gpu_mem_gb": mem.peak / 1e9,
    }


def end_to_end(num_envs: int, epochs: int, extra=(), task: str = "HumanoidAMP") -> dict:
    from hydra import compose, initialize_config_dir

    from isaacgymenvs import train as train_mod

    rates, times = [], []

    def obs(epoch, frame, m):
        times.append(time.perf_counter())
        rates.append(m["perf/env_steps_per_s"])

    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        cfg = compose(
            "config",
            overrides=[
                f"task={task}",
                "headless=True",
                "sim=mujoco_warp",
                f"num_envs={num_envs}",
                f"max_iterations={epochs}",
                "rl_device=cuda:0",
                "experiment=bench",
            ]
            + (["tracking=none"] if (REPO / "cfg" / "tracking").exists() else [])
            + list(extra),
        )
    with MemWatch() as mem:
        t = train_mod.Trainer(cfg, observers=[obs], runs_dir=tempfile.mkdtemp())
        t.build()
        t.train()
    frames_per_epoch = num_envs * int(t.train_cfg["horizon_length"])
    wall = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else float("nan")
    return {
        "task": task,
        "num_envs": num_envs,
        "overrides": list(extra),
        "epochs": epochs,
        "env_steps_per_s_wall": frames_per_epoch / wall,
        "env_steps_per_s_reported_median": sorted(rates[1:])[len(rates[1:]) // 2] if len(rates) > 1 else rates[0],
        "peak_gpu_mem_gb": mem.peak / 1e9,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="HumanoidAMP", choices=["HumanoidAMP", "G1AMP"])
    p.add_argument("--envs", type=int, nargs="+", default=[4096, 8192, 16384])
    p.add_argument("--train-envs", type=int, nargs="*", default=[4096])
    p.add_argument("--physics-steps", type=int, default=200)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument(
        "--also",
        nargs="*",
        default=[],
        help="extra end-to-end runs, each one override (e.g. task.sim.mujoco_timestep=0.008333)",
    )
    p.add_argument("--cache", help="kernel cache folder for the cold start (default: a new temporary one)")
    p.add_argument("--json")
    a = p.parse_args()
    import torch

    res = {
        "device": torch.cuda.get_device_name(0),
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(sys.argv),
        "task": a.task,
    }
    if not a.skip_compile:
        cold = a.cache or tempfile.mkdtemp(prefix="warp-cold-")
        res["first_compile_s"] = start_time(a.envs[0], cold, a.task)
        res["warm_start_s"] = start_time(a.envs[0], cold, a.task)
        os.environ["AMP_WARP_CACHE"] = cold  # the rest of this run uses the warmed cache
    res["physics"] = [physics(n, a.physics_steps, a.task) for n in a.envs]
    res["end_to_end"] = [end_to_end(n, a.epochs, task=a.task) for n in a.train_envs]
    res["end_to_end"] += [end_to_end(a.train_envs[0], a.epochs, [o], a.task) for o in a.also]
    print(f"{a.task}: {res['device']}, {res['date']}")
    if "first_compile_s" in res:
        print(f"first compile {res['first_compile_s']:.1f} s, warm start {res['warm_start_s']:.1f} s")
    print(f"{'run':<28}{'envs':>7}{'env steps/s':>14}{'peak GB':>9}")
    for r in res["physics"]:
        print(f"{'physics only':<28}{r['num_envs']:>7}{r['env_steps_per_s']:>14,.0f}{r['peak_gpu_mem_gb']:>9.1f}")
    for r in res["end_to_end"]:
        name = "end to end " + " ".join(r["overrides"])
        print(f"{name[:28]:<28}{r['num_envs']:>7}{r['env_steps_per_s_wall']:>14,.0f}{r['peak_gpu_mem_gb']:>9.1f}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
