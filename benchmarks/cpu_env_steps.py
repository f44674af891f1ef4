"""CPU env steps per second of HumanoidAMP on the MuJoCo C backend (random PD actions).

    python benchmarks/cpu_env_steps.py [--num-envs 64] [--steps 200] [--threads N] [--json out.json]

Counts control steps (30 Hz, 6 physics substeps each) including observation, AMP history,
termination and resets, as training does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from isaacgymenvs.tasks import make_task


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json")
    a = p.parse_args()
    task = make_task("HumanoidAMP", dict(numEnvs=a.num_envs, motion_file="amp_humanoid_run.npy"), num_threads=a.threads)
    task.reset()
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        task.step(0.05 * torch.randn(a.num_envs, 28, generator=g))
        task.reset_done()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        task.step(0.05 * torch.randn(a.num_envs, 28, generator=g))
        task.reset_done()
    dt = time.perf_counter() - t0
    res = {
        "task": "HumanoidAMP",
        "backend": "mujoco (CPU)",
        "num_envs": a.num_envs,
        "steps": a.steps,
        "env_steps_per_s": a.num_envs * a.steps / dt,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(res, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
