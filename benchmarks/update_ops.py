"""How many tensor operations one PPO + discriminator gradient step dispatches (CPU, torch.profiler).

    python benchmarks/update_ops.py [--minibatch 512]

The HumanoidAMP networks at full size on the CPU backend with a few environments; prints the top-level
operations dispatched from Python, the autograd backward nodes and those inside the optimizer step.
On the GPU each of them is at least one kernel launch, which is what bounds the update there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def count_ops(agent, minibatch: dict) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        agent.train_actor_critic(minibatch)
    events = prof.events()

    def aten(e):
        return e.name.startswith("aten::")

    top = [e for e in events if aten(e) and (e.cpu_parent is None or not aten(e.cpu_parent))]
    backward = [e for e in events if e.name.startswith("autograd::engine::evaluate_function")]
    opt = [e for e in events if e.name.startswith("Optimizer.step")]

    def aten_below(e):
        return sum(1 if aten(c) else aten_below(c) for c in e.cpu_children)

    return {
        "top_level_ops": len(top),
        "backward_nodes": len(backward),
        "optimizer_ops": sum(aten_below(e) for e in opt),
        "most_common": Counter(e.name for e in top).most_common(10),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minibatch", type=int, default=512)
    a = p.parse_args()
    import torch
    from hydra import compose, initialize_config_dir

    from isaacgymenvs import train as train_mod

    over = [
        "task=HumanoidAMP",
        "headless=True",
        "sim=mujoco",
        "num_envs=64",
        "max_iterations=1",
        "train.params.config.horizon_length=16",
        f"train.params.config.minibatch_size={a.minibatch}",
        "train.params.config.amp_minibatch_size=256",
        "train.params.config.amp_obs_demo_buffer_size=4096",
        "train.params.config.amp_replay_buffer_size=8192",
        "train.params.config.amp_batch_size=512",
    ]
    if (REPO / "cfg" / "tracking").exists():
        over.append("tracking=none")
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        cfg = compose("config", overrides=over)
    agent = train_mod.Trainer(cfg, runs_dir=tempfile.mkdtemp()).build()
    agent.init_tensors()
    agent.obs = agent.env_reset()
    agent.set_eval()
    with torch.no_grad():
        batch = agent.play_steps()
    agent.set_train()
    batch.pop("played_frames")
    agent.demo_buffer.store(agent.vec_env.fetch_amp_obs_demo(agent.amp_batch_size))
    agent.prepare_dataset(batch)
    agent._disc_stats = []
    mb = agent.dataset[0]
    for _ in range(3):  # warm-up: lazy state, optimizer moments
        agent.train_actor_critic(mb)
    print(json.dumps(count_ops(agent, mb)))


if __name__ == "__main__":
    main()
