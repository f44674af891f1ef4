"""A timed HumanoidAMP or G1AMP (--task) training that records its curves: metrics.jsonl and a PNG,
and one summary.json per run (device, date, command, wall-clock env steps/s over the whole run).

    python benchmarks/train_quality.py --minutes 8 --out DIR [overrides ...]

Defaults: IsaacGymEnvs' hyperparameters, the run clip, sim=mujoco_warp with 4096 envs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def plot(rows: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["wall_s"] / 60 for r in rows]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for k in ("disc/agent_logit", "disc/agent_replay_logit", "disc/demo_logit"):
        ax[0].plot(t, [r[k] for r in rows], label=k)
    ax[0].set_title("discriminator logits")
    ev = [r for r in rows if "eval/score" in r]  # the deterministic evaluation, every eval_every epochs
    ax[1].plot(t, [r["rollout/motion_nn_dist"] for r in rows], color="C3", alpha=0.5, label="rollout/motion_nn_dist")
    ax[1].plot(
        [r["wall_s"] / 60 for r in ev],
        [r["eval/motion_nn_dist"] for r in ev],
        "o-",
        color="C3",
        label="eval/motion_nn_dist",
    )
    ax[1].set_title("motion_nn_dist (lower is closer)")
    ax[1].legend(fontsize=8)
    ax[2].plot(t, [r["rollout/fall_rate"] for r in rows], color="C4", alpha=0.5, label="rollout/fall_rate")
    ax[2].plot(
        [r["wall_s"] / 60 for r in ev], [r["eval/fall_rate"] for r in ev], "o-", color="C4", label="eval/fall_rate"
    )
    ax[2].plot([r["wall_s"] / 60 for r in ev], [r["eval/score"] for r in ev], "s-", color="C2", label="eval/score")
    ax[2].set_title("fall rate and eval/score")
    ax[2].legend(fontsize=8)
    for a in ax:
        a.set_xlabel("minutes")
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="HumanoidAMP", choices=["HumanoidAMP", "G1AMP"])
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--out", required=True)
    p.add_argument("--clip", help="motion file (default: the run clip, or the G1 walk)")
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()
    from hydra import compose, initialize_config_dir

    from isaacgymenvs import train as train_mod

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    t0 = time.perf_counter()
    log = open(out / "metrics.jsonl", "w")

    def obs(epoch, frame, m):
        row = dict(m, epoch=epoch, frame=frame, wall_s=time.perf_counter() - t0)
        rows.append(row)
        log.write(json.dumps(row) + "\n")
        log.flush()
        if epoch % 25 == 0:
            train_mod.console_observer(epoch, frame, m)

    clip = a.clip or {"HumanoidAMP": "amp_humanoid_run.npy", "G1AMP": "amp_retarget/g1_from_amp_walk.csv"}[a.task]
    base = [
        f"task={a.task}",
        "headless=True",
        "sim=mujoco_warp",
        "num_envs=4096",
        "rl_device=cuda:0",
        f"task.env.motion_file={clip}",
        f"max_time_s={a.minutes * 60}",
        "max_iterations=100000",
    ]
    if (REPO / "cfg" / "tracking").exists():
        base.append("tracking=none")
    with initialize_config_dir(config_dir=train_mod.CFG_DIR, version_base="1.1"):
        cfg = compose("config", overrides=base + a.overrides)
    t = train_mod.Trainer(cfg, observers=[obs], runs_dir=str(out / "runs"))
    t.build()
    t.train()
    log.close()
    plot(rows, out / "curves.png")
    last = rows[-10:]
    summary = {
        k: sum(r[k] for r in last) / len(last)
        for k in last[0]
        if isinstance(last[0][k], float) and not k.startswith("eval/") and all(k in r for r in last)
    }
    summary.update(epochs=rows[-1]["epoch"], frames=rows[-1]["frame"], minutes=rows[-1]["wall_s"] / 60)
    # the run's own record: where, when, how, and its throughput over the whole run (wall clock from
    # the trainer's start, the first epochs included) beside the median epoch's
    import torch

    summary.update(
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        date=time.strftime("%Y-%m-%d"),
        command=" ".join(["python", *sys.argv]),
        env_steps_per_s_wall=rows[-1]["frame"] / rows[-1]["wall_s"],
        env_steps_per_s_median_epoch=float(sorted(r["perf/env_steps_per_s"] for r in rows)[len(rows) // 2]),
    )
    # over the whole run: blow-ups caught, updates skipped, and when the fall rate first went under 0.1
    summary["sim/unstable_envs_total"] = sum(r.get("sim/unstable_envs", 0.0) for r in rows)
    summary["loss/nonfinite_updates_total"] = sum(r.get("loss/nonfinite_updates", 0.0) for r in rows)
    first = next((r for r in rows if r["rollout/fall_rate"] < 0.1), None)
    summary["first_fall_rate_below_0.1"] = (
        None if first is None else {"epoch": first["epoch"], "minutes": first["wall_s"] / 60}
    )
    evals = [r for r in rows if "eval/score" in r]
    if evals:  # the last deterministic evaluation, and its share of the wall time
        summary["last_eval"] = {k: evals[-1][k] for k in evals[-1] if k.startswith("eval/")}
        summary["eval_time_share"] = sum(r["eval/time_s"] for r in evals) / rows[-1]["wall_s"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
