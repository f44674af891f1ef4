"""A PNG of the training curves: discriminator logits, rewards, eval/*.

Drawn with matplotlib's Agg canvas on a bare ``Figure`` (no pyplot, so no global backend is
switched and no display is needed).
"""

from __future__ import annotations

from pathlib import Path

PANELS = (
    (
        "discriminator logits (per run, not comparable between runs)",
        ("disc/agent_logit", "disc/agent_replay_logit", "disc/demo_logit"),
    ),
    ("rewards", ("reward/disc", "reward/task")),
    ("eval (comparable between runs)", None),  # every eval/* key
)


def plot_curves(history: list[tuple[int, dict]], path: str | Path) -> Path:
    """``history``: (epoch, metrics) in epoch order. Writes and returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8, 9), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(PANELS), 1, sharex=True)
    eval_keys = sorted({k for _, m in history for k in m if k.startswith("eval/")})
    marker = "." if len(history) < 30 else None
    for ax, (title, keys) in zip(axes, PANELS):
        twin = None
        for j, k in enumerate(keys if keys is not None else eval_keys):
            pts = [(e, m[k]) for e, m in history if k in m]
            if not pts:
                continue
            target = ax
            if k.endswith("_rate"):  # shares (0..1) on their own axis, so distances keep their scale
                twin = twin or ax.twinx()
                twin.set_ylim(-0.05, 1.05)
                twin.set_ylabel("rate", fontsize=8)
                target = twin
            target.plot([p[0] for p in pts], [p[1] for p in pts], label=k, marker=marker, color=f"C{j}")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        lines = ax.lines + (twin.lines if twin else [])
        if lines:
            ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="best")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
