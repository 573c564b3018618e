"""The captioning figure: test images with their generated caption and, word by word, where the
decoder looked (Xu et al. 2015, Fig. 2–3 style).

Row k: image k, then one panel per generated word (and <eos>) showing the image in gray under its
attention map α_t [h, w], stretched over the image (bilinear) on one colour scale 0..max α_t.
Images arrive as [C, H, W] arrays with pixels in [0, 1]; drawn with `matplotlib.figure.Figure`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

_DPI = 110
_PANEL = 1.6  # inches per panel side (scaled by the image's aspect ratio)


def _gray(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=float).mean(axis=0)


def plot_caption_attention(images: list[np.ndarray], samples: list[dict], out_png: Path) -> None:
    """`samples[k]`: {"caption", "words", "attention": [words][h][w]} of `images[k]`."""
    height, width = images[0].shape[1:]
    columns = 1 + max(len(s["words"]) for s in samples)
    aspect = width / height
    panel = (_PANEL * min(aspect, 2.5), _PANEL * min(aspect, 2.5) / aspect)
    fig = Figure(figsize=(panel[0] * columns, (panel[1] + 0.45) * len(samples)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(samples), columns, squeeze=False))
    extent = (0, width, height, 0)
    for row, (image, sample) in zip(axes, zip(images, samples)):
        shown = np.clip(np.asarray(image, dtype=float).transpose(1, 2, 0), 0, 1)
        row[0].imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1, extent=extent)
        row[0].set_title(sample["caption"] or "(empty)", fontsize=7, loc="left")
        for ax, word, alpha in zip(row[1:], sample["words"], sample["attention"]):
            ax.imshow(_gray(image), cmap="gray", vmin=0, vmax=1, extent=extent)
            ax.imshow(np.asarray(alpha), cmap="inferno", alpha=0.65, extent=extent, interpolation="bilinear",
                      vmin=0, vmax=max(float(np.max(alpha)), 1e-6))
            ax.set_title(word, fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[1 + len(sample["words"]):]:
            ax.set_axis_off()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=_DPI)


__all__ = ["plot_caption_attention"]
