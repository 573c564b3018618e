"""Plot of an LR schedule (LR against optimizer step), as previewed by `nnrecipe schedule`."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def plot_schedule(lrs: list[float], out_png: str | Path, *, title: str) -> None:
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(range(len(lrs)), lrs, lw=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
