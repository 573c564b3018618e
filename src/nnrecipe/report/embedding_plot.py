"""Scatter plots of a 2-D embedding (`nnrecipe embed`): one panel coloured by label (when the rows
have labels) and one by k-means cluster, drawn with `matplotlib.figure.Figure` (no pyplot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

_DPI = 120
_LEGEND_MAX = 20  # categories named in a legend; more are drawn without one


def _panel(ax, points: np.ndarray, categories: np.ndarray, title: str) -> None:
    names, codes = np.unique(categories.astype(str), return_inverse=True)
    cmap = colormaps["tab10"] if len(names) <= 10 else colormaps["tab20"]
    for code, name in enumerate(names):
        keep = codes == code
        ax.scatter(points[keep, 0], points[keep, 1], s=6, alpha=0.7, label=name, color=cmap(code % cmap.N))
    if len(names) <= _LEGEND_MAX:
        ax.legend(fontsize="x-small", markerscale=2, ncol=2 if len(names) > 10 else 1)
    ax.set(title=title, xticks=[], yticks=[])


def plot_embedding(points: np.ndarray, *, labels: np.ndarray | None, clusters: np.ndarray, method: str,
                   title: str, out_png: Path) -> Path:
    """`method` (t-SNE, PCA, UMAP) coordinates [N, 2]: by label | by cluster (by cluster only without labels)."""
    panels = [(labels, "by label")] if labels is not None else []
    panels.append((clusters, f"by k-means cluster (k = {len(np.unique(clusters))})"))
    fig = Figure(figsize=(5.2 * len(panels), 4.8), layout="constrained")
    for ax, (categories, name) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        _panel(ax, points, categories, f"{method}, {name}")
    fig.suptitle(title, fontsize="medium")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, format="png", dpi=_DPI)
    return out_png
