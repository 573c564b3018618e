"""Figures of a finished run, drawn from its directory alone (history.csv, metrics.json).

Uses `matplotlib.figure.Figure` directly, not `pyplot`: no global figure registry, no backend
switch, nothing to close, safe in threads and on machines without a display (PNG output goes
through the Agg canvas).

- ``plots/learning_curves.png``: loss (train vs val, best val-loss epoch marked), accuracy (train vs
  val, classification only), learning rate, mean gradient norm per epoch (log scale), and with
  ``train.curvature_every`` the sharpness λmax next to the edge of stability 2/η.
- ``plots/confusion_matrix.png``: rows = true class, columns = predicted class, counts in each cell.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nnrecipe.errors import UserError

_DPI = 120
_MAX_ANNOTATED_CLASSES = 40  # beyond this the cell text is unreadable; the colours still show it


def _value(raw: str | None) -> float:
    """A CSV cell as float; empty (regression accuracy, not logged) -> NaN."""
    if raw is None or raw.strip() == "":
        return math.nan
    try:
        return float(raw)
    except ValueError:
        return math.nan


def read_history(history_csv: Path) -> dict[str, np.ndarray]:
    """history.csv as {column: float array}; missing or empty cells are NaN."""
    history_csv = Path(history_csv)
    try:
        with history_csv.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
            columns = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise UserError(f"no history.csv in {history_csv.parent}", str(history_csv),
                        "pass the directory of a finished run") from None
    if not rows:
        raise UserError("history.csv has no epochs", str(history_csv), "train for at least one epoch")
    return {c: np.array([_value(r.get(c)) for r in rows], dtype=float) for c in columns}


def _epoch_count(history_csv: Path) -> int:
    try:
        with Path(history_csv).open(newline="") as fh:
            return sum(1 for _ in csv.DictReader(fh))
    except FileNotFoundError:
        raise UserError(f"no history.csv in {Path(history_csv).parent}", str(history_csv),
                        "pass the directory of a finished run") from None


def _has(history: dict[str, np.ndarray], column: str) -> bool:
    return column in history and bool(np.isfinite(history[column]).any())


def _epochs(history: dict[str, np.ndarray]) -> np.ndarray:
    if _has(history, "epoch"):
        return history["epoch"]
    return np.arange(1, len(next(iter(history.values()))) + 1, dtype=float)


def _plot_pair(ax, epochs, history, name: str) -> None:
    for split in ("train", "val"):
        column = f"{split}_{name}"
        if _has(history, column):
            ax.plot(epochs, history[column], marker=".", markersize=3, label=split)


def _loss_panel(ax, epochs, history) -> None:
    _plot_pair(ax, epochs, history, "loss")
    if _has(history, "val_loss"):
        val = history["val_loss"]
        best = int(np.nanargmin(val))
        ax.axvline(epochs[best], color="grey", linestyle="--", linewidth=1,
                   label=f"best val loss {val[best]:.4g} (epoch {epochs[best]:g})")
    ax.set(title="Loss", xlabel="epoch", ylabel="loss")


def _accuracy_panel(ax, epochs, history) -> None:
    _plot_pair(ax, epochs, history, "accuracy")
    ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")


def _lr_panel(ax, epochs, history) -> None:
    if _has(history, "lr"):
        ax.plot(epochs, history["lr"], marker=".", markersize=3, label="lr")
    ax.set(title="Learning rate", xlabel="epoch", ylabel="learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))


def _grad_norm_panel(ax, epochs, history) -> None:
    norms = history.get("grad_norm", np.full(len(epochs), math.nan))
    positive = np.isfinite(norms) & (norms > 0)
    if positive.any():
        ax.plot(epochs[positive], norms[positive], marker=".", markersize=3, label="mean ‖g‖₂ (pre-clip)")
        ax.set_yscale("log")
    ax.set(title="Gradient norm", xlabel="epoch", ylabel="mean global L2 norm")


def _sharpness_panel(ax, epochs, history) -> None:
    """λmax per measured epoch next to the edge of stability 2/η (`train.curvature_every`)."""
    measured = np.isfinite(history["lambda_max"])
    lam = history["lambda_max"][measured]
    ax.plot(epochs[measured], lam, marker="o", markersize=3, label="λmax (Lanczos)")
    top = float(lam.max())
    if _has(history, "lr"):
        lr = history["lr"]
        ok = np.isfinite(lr) & (lr > 0)
        ax.plot(epochs[ok], 2 / lr[ok], color="tab:red", linestyle="--", linewidth=1,
                label="2/η: gradient descent's edge of stability")
        top = max(top, float(np.min(2 / lr[ok]))) if ok.any() else top
    if np.all(lam > 0):  # a decayed LR sends 2/η off to infinity: keep λmax and the line's nearest point
        ax.set_yscale("log")
        ax.set_ylim(float(lam.min()) / 2, top * 4)
    ax.set(title="Sharpness", xlabel="epoch", ylabel="top Hessian eigenvalue")


def plot_learning_curves(history_csv: Path, out_png: Path) -> None:
    """Loss / accuracy (when logged) / LR / gradient-norm panels from a history.csv, as a PNG, and the
    sharpness λmax next to 2/η when the fit measured it."""
    history = read_history(history_csv)
    epochs = _epochs(history)
    panels = [_loss_panel]
    if _has(history, "train_accuracy") or _has(history, "val_accuracy"):
        panels.append(_accuracy_panel)
    panels += [_lr_panel, _grad_norm_panel]
    if _has(history, "lambda_max"):
        panels.append(_sharpness_panel)
    ncols = 2 if len(panels) == 4 else 3 if len(panels) > 4 else len(panels)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(5.0 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, draw in zip(axes, panels):
        draw(ax, epochs, history)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(f"Learning curves ({len(epochs)} epochs)")
    _save(fig, out_png)


def plot_confusion_matrix(cm: list[list[int]], class_names: list[str], out_png: Path, *,
                          normalize: bool = False) -> None:
    """Heatmap of a confusion matrix (rows: true class, columns: predicted class), values in cells.

    normalize=True divides each row by its count (per-class recall on the diagonal).
    """
    counts = np.asarray(cm, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {counts.shape}")
    k = counts.shape[0]
    if len(class_names) != k:
        raise ValueError(f"{len(class_names)} class names for a {k}×{k} confusion matrix")
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts

    side = min(max(4.0, 0.6 * k + 2.5), 24.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(values.max(), 1))
    fig.colorbar(image, ax=ax, label="fraction of true class" if normalize else "count")
    ticks, labels = np.arange(k), [str(c) for c in class_names]
    rotate = k > 4 or max(len(c) for c in labels) > 6
    ax.set_xticks(ticks, labels=labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(ticks, labels=labels)
    title = "Confusion matrix" + (" (row-normalized)" if normalize else "")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= _MAX_ANNOTATED_CLASSES:
        threshold = image.norm.vmax / 2  # white text on dark cells
        fontsize = max(5, min(10, 120 // k))
        for i in range(k):
            for j in range(k):
                text = f"{values[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                        color="white" if values[i, j] > threshold else "black")
    _save(fig, out_png)


def _save(fig: Figure, out_png: Path) -> None:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, format="png", dpi=_DPI)


def _read_metrics(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path.name}: {type(exc).__name__}", str(path),
                        "re-run training or delete the file") from None
    return data if isinstance(data, dict) else {}


def plot_attention(source: list[str], output: list[str], weights, out_png: Path) -> None:
    """Heatmap of attention weights α[t, j]: rows are output steps, columns source tokens."""
    w = np.asarray(weights, dtype=float)
    fig = Figure(figsize=(max(4.0, 0.35 * len(source) + 2), max(3.0, 0.35 * len(output) + 1.5)),
                 layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(w, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, label="attention weight")
    ax.set_xticks(np.arange(len(source)), labels=source)
    ax.set_yticks(np.arange(len(output)), labels=output)
    ax.set(xlabel="source token", ylabel="output token", title="Attention (first test example)")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120)


def plot_reliability(before: dict, after: dict | None, out_png: Path, *, temperature: float = 1.0) -> None:
    """Reliability diagram: accuracy vs mean confidence per equal-width bin (non-empty bins), the
    diagonal is perfect calibration; below, the share of examples per bin. Before and after T."""
    fig = Figure(figsize=(5.5, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfect calibration")
    edges = np.asarray(before["edges"])
    width = np.diff(edges)
    for label, bins, colour in (("before (T = 1)", before, "tab:red"),
                                (f"after (T = {temperature:.3g})", after, "tab:blue")):
        if not bins:
            continue
        count = np.asarray(bins["count"])
        keep = count > 0
        top.plot(np.asarray(bins["confidence"])[keep], np.asarray(bins["accuracy"])[keep], marker="o",
                 color=colour, label=label)
        bottom.bar(edges[:-1], count / max(count.sum(), 1), width=width, align="edge", alpha=0.45,
                   color=colour, label=label)
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02), title="Reliability diagram (validation)")
    top.legend(loc="upper left")
    bottom.set(xlabel="confidence (max probability)", ylabel="share")
    _save(fig, out_png)


def plot_run(run_dir: Path) -> list[Path]:
    """Write run_dir/plots/learning_curves.png (and confusion_matrix.png and reliability.png for
    classification, attention.png for seq2seq runs).

    Reads only run_dir/history.csv and run_dir/metrics.json; returns the paths written.
    """
    run_dir = Path(run_dir)
    plots = run_dir / "plots"
    written = []
    # a run that diverged in epoch 1 has no curves to draw; a GAN's history has its own columns
    if _epoch_count(run_dir / "history.csv") and "train_loss" in read_history(run_dir / "history.csv"):
        written.append(plots / "learning_curves.png")
        plot_learning_curves(run_dir / "history.csv", written[0])
    metrics = _read_metrics(run_dir / "metrics.json")
    test = metrics.get("test") or {}
    cm = test.get("confusion_matrix")
    if metrics.get("task") == "classification" and cm:
        names = test.get("class_names") or metrics.get("class_names") or [str(i) for i in range(len(cm))]
        out = plots / "confusion_matrix.png"
        plot_confusion_matrix(cm, list(names), out)
        written.append(out)
    cal = metrics.get("calibration") or {}
    if cal.get("reliability_before"):
        out = plots / "reliability.png"
        plot_reliability(cal["reliability_before"], cal.get("reliability_after"), out,
                         temperature=cal.get("temperature", 1.0))
        written.append(out)
    example = test.get("attention_example")
    if example:
        out = plots / "attention.png"
        plot_attention(example["source"], example["output"], example["weights"], out)
        written.append(out)
    return written
