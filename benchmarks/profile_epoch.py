"""Where an AMP epoch spends its time on the GPU: play vs update, env step parts, cProfile top list.

python benchmarks/profile_epoch.py [--num-envs 4096] [--epochs 4] [OVERRIDE ...]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(fn, n, sync):
    fn()  # warm-up: graph capture, cuBLAS handles
    sync()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - t) / n * 1e3


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--num-envs", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("overrides", nargs="*", help="more Hydra overrides, e.g. train.params.config.capture_update=True")
    a = p.parse_args()
    import torch
    from hydra import compose, initialize_config_dir

    from isaacgymenvs import train as train_mod

    over = [
        "task=HumanoidAMP",
        "headless=True",
        "sim=mujoco_warp",
        f"num_envs={a.num_envs}",
        f"max_iterations={a.epochs}",
        "rl_device=cuda:0",
    ]
    if (REPO / "cfg" / "tracking").exists():
        over.append("tracking=none")
    over += a.overrides
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        cfg = compose("config", overrides=over)
    rows = []
    t = train_mod.Trainer(cfg, observers=[lambda e, f, m: rows.append(m)], runs_dir=tempfile.mkdtemp())
    agent = t.build()
    task, sim = t.vec_env.task, t.vec_env.task.sim
    sync = torch.cuda.synchronize
    task.reset()
    acts = 0.05 * torch.randn(a.num_envs, 28, device="cuda")
    print(f"ms per call at {a.num_envs} envs:")
    print(f"  sim.step            {timed(sim.step, 20, sync):7.2f}")
    print(f"  task._sim_obs       {timed(task._sim_obs, 20, sync):7.2f}")
    print(f"  task.step           {timed(lambda: task.step(acts), 20, sync):7.2f}")
    print(f"  vec_env.step        {timed(lambda: t.vec_env.step(acts), 20, sync):7.2f}")
    ids = torch.arange(0, a.num_envs, 50, device="cuda")
    print(f"  task.reset_idx(2%)  {timed(lambda: task.reset_idx(ids), 20, sync):7.2f}")
    print(f"  amp_obs_demo(512)   {timed(lambda: task.amp_obs_demo(512), 20, sync):7.2f}")
    obs = {"obs": t.vec_env.reset()}
    print(f"  policy forward      {timed(lambda: agent.get_action_values(obs), 20, sync):7.2f}")
    amp = task.amp_obs.to("cuda")
    with torch.no_grad():
        print(f"  disc forward        {timed(lambda: agent.disc(amp), 20, sync):7.2f}")
    prof = cProfile.Profile()
    prof.enable()
    agent.train()
    sync()
    prof.disable()
    for i, m in enumerate(rows):
        print(
            f"epoch {i + 1}: play {m['perf/play_time_s']:.3f}s update {m['perf/update_time_s']:.3f}s "
            f"steps/s {m['perf/env_steps_per_s']:.0f}"
        )
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(30)
    print(s.getvalue()[:9000])


if __name__ == "__main__":
    main()
