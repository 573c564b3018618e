"""Figures of generative runs (`nnrecipe.generative`): image grids, reconstructions, latent
interpolations, the 2-D latent picture and the GAN's loss curves.

Images arrive as [N, C, H, W] arrays with pixels in [0, 1]; grids are tiled here (a few lines, no
torchvision dependency) and drawn with `matplotlib.figure.Figure` like `nnrecipe.report.plots`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

_DPI = 120


def tile(images: np.ndarray, ncol: int, *, pad: int = 1) -> np.ndarray:
    """[N, C, H, W] in [0, 1] → one [rows·(H+pad)−pad, ncol·(W+pad)−pad, C] image (pad = 1: white lines)."""
    images = np.asarray(images, dtype=float)
    n, c, h, w = images.shape
    nrow = math.ceil(n / ncol)
    out = np.ones((nrow * (h + pad) - pad, ncol * (w + pad) - pad, c))
    for i in range(n):
        r, k = divmod(i, ncol)
        out[r * (h + pad): r * (h + pad) + h, k * (w + pad): k * (w + pad) + w] = images[i].transpose(1, 2, 0)
    return out


def _show(ax, grid: np.ndarray) -> None:
    if grid.shape[-1] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(grid, 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Figure, out_png: Path) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, format="png", dpi=_DPI)
    return out_png


def plot_image_grid(images: np.ndarray, out_png: Path, *, ncol: int, title: str) -> Path:
    grid = tile(images, ncol)
    side = max(3.0, 0.45 * ncol)
    fig = Figure(figsize=(side, side * grid.shape[0] / grid.shape[1] + 0.5), layout="constrained")
    ax = fig.subplots()
    _show(ax, grid)
    ax.set_title(title, fontsize="small")
    return _save(fig, out_png)


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, out_png: Path) -> Path:
    """Two rows: test images on top, their reconstructions below."""
    n = len(originals)
    fig = Figure(figsize=(max(4.0, 0.5 * n), 1.9), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    _show(top, tile(originals, n))
    top.set_ylabel("test", fontsize="small")
    _show(bottom, tile(reconstructions, n))
    bottom.set_ylabel("recon.", fontsize="small")
    fig.suptitle("Reconstructions", fontsize="small")
    return _save(fig, out_png)


def plot_interpolation(rows: np.ndarray, out_png: Path) -> Path:
    """rows [P, S, C, H, W]: each row goes from one test image to another (ends are the real images,
    the inner S − 2 are decodings of the straight line between their codes)."""
    p, s = rows.shape[:2]
    fig = Figure(figsize=(max(4.0, 0.5 * s), 0.55 * p + 0.6), layout="constrained")
    ax = fig.subplots()
    _show(ax, tile(rows.reshape(p * s, *rows.shape[2:]), s))
    ax.set_title("Latent interpolation (ends: test images)", fontsize="small")
    return _save(fig, out_png)


def plot_latent(points: np.ndarray, labels: np.ndarray | None, class_names: list[str] | None,
                out_png: Path, *, title: str) -> Path:
    """Scatter of 2-D embedded codes, one colour per class."""
    fig = Figure(figsize=(5.5, 4.8), layout="constrained")
    ax = fig.subplots()
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7)
    else:
        cmap = colormaps["tab10"] if len(np.unique(labels)) <= 10 else colormaps["tab20"]
        for c in np.unique(labels):
            keep = labels == c
            name = class_names[c] if class_names else str(c)
            ax.scatter(points[keep, 0], points[keep, 1], s=6, alpha=0.7, label=name, color=cmap(int(c) % cmap.N))
        ax.legend(fontsize="x-small", markerscale=2, ncol=2 if len(np.unique(labels)) > 10 else 1)
    ax.set(title=title, xlabel="component 1", ylabel="component 2")
    return _save(fig, out_png)


def plot_gan_curves(history: dict[str, np.ndarray], out_png: Path) -> Path:
    """D and G losses, and the mean D(x) and D(G(z)), per epoch."""
    epochs = history["epoch"]
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(epochs, history["d_loss"], label="D loss")
    left.plot(epochs, history["g_loss"], label="G loss (−log D(G(z)))")
    left.set(title="Losses", xlabel="epoch", ylabel="loss")
    right.plot(epochs, history["d_real"], label="mean D(x)")
    right.plot(epochs, history["d_fake"], label="mean D(G(z))")
    right.set(title="Discriminator outputs", xlabel="epoch", ylabel="probability", ylim=(0, 1))
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, out_png)
