"""`bowl.png`: optimizers on the 2-D quadratic bowl (`nnrecipe.recipe.bowl`).

Left: contours of f over the plane with each optimizer's first steps drawn on them (gradient
descent's zig-zag across the valley), and the run just past the divergence threshold. Right: f/f₀
per step on a log scale, the tolerance as a dashed line. `matplotlib.figure.Figure` directly, as in
`nnrecipe.report.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from nnrecipe.recipe.bowl import Bowl

_DPI = 120
_PATH_STEPS = 120  # steps drawn on the contours: enough to show the zig-zag, few enough to read


def _extent(result: dict) -> float:
    start = np.abs(np.asarray(result["start"]))
    return float(max(start.max(), 1.0)) * 1.25


def plot_bowl(result: dict, out_png: Path) -> Path:
    fig = Figure(figsize=(12.0, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    bowl = Bowl(result["kappa"], result["angle"])
    r = _extent(result)
    axis = np.linspace(-r, r, 241)
    grid = torch.as_tensor(np.stack(np.meshgrid(axis, axis), axis=-1))
    f = bowl.value(grid).numpy()
    levels = np.geomspace(max(f.min(), 1e-4), f.max(), 14)
    left.contour(axis, axis, f, levels=levels, colors="0.75", linewidths=0.7)
    for name, run in result["optimizers"].items():
        path = np.asarray(run["path"])[:_PATH_STEPS + 1]
        left.plot(path[:, 0], path[:, 1], marker=".", markersize=2.5, linewidth=0.9, label=f"{name} (η={run['lr']:.3g})")
        right.semilogy(np.maximum(run["losses"], 1e-300), linewidth=1.1,
                       label=f"{name}: {run['steps_to_tol'] if run['steps_to_tol'] is not None else '—'} steps"
                             + (f" (theory {run['theory_steps']})" if run["theory_steps"] is not None else ""))
    past = result["divergence"]
    path = np.asarray(past["path"])[:40]  # its first steps; the axes clip it where it leaves the plot
    left.plot(path[:, 0], path[:, 1], color="black", linestyle=":", linewidth=0.8,
              label=f"sgd η={past['lr']:.3g} > 2/λmax")
    right.semilogy(past["losses"], color="black", linestyle=":", linewidth=1.0,
                   label=f"sgd η={past['lr']:.3g} > 2/λmax = {past['threshold_lr']:g}: diverges")
    left.plot(0, 0, marker="*", color="black", markersize=9)
    left.set(xlim=(-r, r), ylim=(-r, r), aspect="equal", xlabel="θ₁", ylabel="θ₂",
             title=f"f = ½θᵀHθ, κ = {result['kappa']:g}, rotated {result['angle']:g}° (first {_PATH_STEPS} steps)")
    left.legend(fontsize="x-small", loc="lower right")
    right.axhline(result["tol"], color="grey", linestyle="--", linewidth=0.8)
    top = max(max(run["losses"]) for run in result["optimizers"].values()) * 10
    reached = [run["steps_to_tol"] for run in result["optimizers"].values() if run["steps_to_tol"] is not None]
    last = max(reached + [past["steps_run"]]) * 1.3  # a run that never reaches ε would squash the others
    right.set(xlabel="step", ylabel="f(θ_t) / f(θ₀)", ylim=(result["tol"] / 100, max(top, 10.0)), xlim=(0, last),
              title=f"loss per step (tolerance ε = {result['tol']:g})")
    right.legend(fontsize="x-small")
    right.grid(True, alpha=0.3)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, format="png", dpi=_DPI)
    return out_png
