"""Compile the MuJoCo Warp kernels of a task once, into the kernel cache, before a sweep starts.

    python -m isaacgymenvs.warmup [--task HumanoidAMP] [--cache DIR] [--device cuda:0]

Warp compiles kernels at first use (minutes on a fresh machine) and caches them on disk
(``$AMP_WARP_CACHE``, default ``~/.cache/warp``); trials that start later load them in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m isaacgymenvs.warmup", description=__doc__.splitlines()[0])
    p.add_argument("--task", default="HumanoidAMP")
    p.add_argument("--cache", help="kernel cache folder (default: $AMP_WARP_CACHE or warp's own)")
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--num-envs", type=int, default=8)
    a = p.parse_args(argv)
    if a.cache:
        os.environ["AMP_WARP_CACHE"] = a.cache
    import torch

    from isaacgymenvs.sim import BackendUnavailableError, check_backend
    from isaacgymenvs.sim.mujoco_warp import MujocoWarpBackend
    from isaacgymenvs.task_registry import UnknownTaskError, get_task, task_model

    try:
        get_task(a.task)
    except UnknownTaskError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        check_backend("mujoco_warp", a.device)
    except BackendUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t = time.perf_counter()
    sim = MujocoWarpBackend(task_model(a.task), a.num_envs, 1 / 30, device=a.device)
    ids = torch.arange(a.num_envs, device=sim.device)
    sim.write_state(
        ids,
        sim.root_pos_w.clone(),
        sim.root_quat_w.clone(),
        sim.root_lin_vel_w.clone(),
        sim.root_ang_vel_w.clone(),
        sim.dof_pos.clone(),
        sim.dof_vel.clone(),
    )
    sim.step()
    if sim.device.type == "cuda":
        torch.cuda.synchronize()
    import warp as wp

    print(
        json.dumps(
            {
                "task": a.task,
                "seconds": round(time.perf_counter() - t, 2),
                "kernel_cache": str(wp.config.kernel_cache_dir),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
