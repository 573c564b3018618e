"""Figures the report draws beyond `plots.py`: ROC and precision-recall curves, residuals, the
training-health monitors over steps, and learning curves of several runs overlaid.

Curves come from `nnrecipe.metrics` (roc_curve, precision_recall_curve, roc_auc,
average_precision, tested against sklearn there). Binary: the curves of the positive class (the
second class, index 1). Multiclass: one-vs-rest, one curve per class c with scores p[:, c];
macro ROC AUC = mean over classes of AUC_c. A class absent from the test split (or the only one
present) has no curve: its AUC is undefined.

Residual plot: r_i = y_i − ŷ_i against ŷ_i; a healthy model scatters around 0 with no trend.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nnrecipe.metrics import average_precision, precision_recall_curve, roc_auc, roc_curve

_MAX_LEGEND = 12  # more curves than this: the legend would cover the plot


def threshold_curves(y_true, probs, class_names: list[str]) -> dict:
    """{"curves": [{"name", "fpr", "tpr", "precision", "recall", "auc", "ap", "positives"}],
    "macro_auc", "skipped": [names without a curve]} from test labels and [N, C] probabilities."""
    y, p = np.asarray(y_true, dtype=int), np.asarray(probs, dtype=float)
    targets = [1] if p.shape[1] == 2 else range(p.shape[1])
    curves, skipped = [], []
    for c in targets:
        positive = (y == c).astype(int)
        if positive.all() or not positive.any():
            skipped.append(class_names[c])
            continue
        fpr, tpr, _ = roc_curve(positive, p[:, c])
        precision, recall, _ = precision_recall_curve(positive, p[:, c])
        curves.append({"name": class_names[c], "fpr": fpr.numpy(), "tpr": tpr.numpy(),
                       "precision": precision.numpy(), "recall": recall.numpy(),
                       "auc": roc_auc(positive, p[:, c]), "ap": average_precision(positive, p[:, c]),
                       "positives": int(positive.sum())})
    if p.shape[1] > 2 and not skipped:
        macro = roc_auc(y, p, average="macro")
    else:  # binary: the positive class's AUC; an absent class: the mean over the classes that have one
        macro = float(np.mean([c["auc"] for c in curves])) if curves else None
    return {"curves": curves, "macro_auc": macro, "skipped": skipped}


def roc_pr_figure(summary: dict, *, binary: bool) -> Figure:
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    roc, pr = fig.subplots(1, 2)
    roc.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="chance")
    for i, c in enumerate(summary["curves"]):
        colour = f"C{i % 10}"
        roc.plot(c["fpr"], c["tpr"], color=colour, linewidth=1.3, label=f"{c['name']} (AUC {c['auc']:.3f})")
        pr.step(c["recall"], c["precision"], where="post", color=colour, linewidth=1.3,
                label=f"{c['name']} (AP {c['ap']:.3f})")
    title = "positive class" if binary else "one-vs-rest"
    roc.set(title=f"ROC ({title})", xlabel="false positive rate", ylabel="true positive rate",
            xlim=(0, 1), ylim=(0, 1.02))
    pr.set(title=f"Precision-recall ({title})", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    for ax in (roc, pr):
        ax.grid(True, alpha=0.3)
        if len(summary["curves"]) <= _MAX_LEGEND:
            ax.legend(fontsize="x-small", loc="lower right" if ax is roc else "lower left")
    return fig


def residual_figure(y_true, prediction) -> Figure:
    y, pred = np.asarray(y_true, dtype=float), np.asarray(prediction, dtype=float)
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.scatter(pred, y - pred, s=10, alpha=0.6)
    left.axhline(0, color="0.4", linestyle="--", linewidth=1)
    left.set(title="Residuals vs predicted (test)", xlabel="predicted ŷ", ylabel="residual y − ŷ")
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    right.scatter(y, pred, s=10, alpha=0.6)
    right.plot([lo, hi], [lo, hi], color="0.4", linestyle="--", linewidth=1, label="ŷ = y")
    right.set(title="Predicted vs true (test)", xlabel="true y", ylabel="predicted ŷ")
    right.legend(fontsize="small")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _series(rows: list[dict], kind: str, column: str) -> dict[str, tuple[list[float], list[float]]]:
    """{layer: (steps, values)} of one health.csv column, finite values only."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        try:
            step, value = float(r["step"]), float(r[column])
        except (KeyError, TypeError, ValueError):
            continue  # an empty cell: this row is another kind of measurement
        if r.get("kind") == kind and np.isfinite(value):
            steps, values = out.setdefault(r.get("layer", "?"), ([], []))
            steps.append(step)
            values.append(value)
    return out


def health_figure(rows: list[dict]) -> Figure | None:
    """Per-layer ‖∇W‖ and update ratio ‖ΔW‖/‖W‖ (1e-3 marked) over steps, and each activation's
    dead-unit fraction; None when health.csv has no sampled value."""
    panels = [("weight", "grad_norm", "Gradient norm ‖∇W‖ (pre-clip)", True),
              ("weight", "update_ratio", "Update ratio ‖ΔW‖/‖W‖", True),
              ("activation", "dead_fraction", "Dead-unit fraction", False)]
    data = [(title, log, _series(rows, kind, col)) for kind, col, title, log in panels]
    data = [d for d in data if d[2]]
    if not data:
        return None
    fig = Figure(figsize=(4.2 * len(data), 3.6), layout="constrained")
    for ax, (title, log, series) in zip(fig.subplots(1, len(data), squeeze=False)[0], data):
        for layer, (steps, values) in series.items():
            ax.plot(steps, values, marker=".", markersize=3, linewidth=1, label=layer)
        if log and all(v > 0 for _, values in series.values() for v in values):
            ax.set_yscale("log")
        if title.startswith("Dead"):
            ax.set_ylim(-0.02, 1.02)  # a fraction: all-zero lines should sit at the bottom, not mid-plot
        if title.startswith("Update"):
            ax.axhline(1e-3, color="0.5", linestyle="--", linewidth=1, label="1e-3 (healthy)")
        ax.set(title=title, xlabel="optimizer step")
        ax.grid(True, alpha=0.3)
        if len(series) <= _MAX_LEGEND:
            ax.legend(fontsize="x-small")
    return fig


PROFILE_PHASES = ("data", "forward", "backward", "optimizer", "callbacks", "train_step")


def profile_figure(epochs: list[dict]) -> Figure:
    """`train.profile`: each epoch's step time stacked by phase, and the samples/s line."""
    fig = Figure(figsize=(8.4, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    x = [row["epoch"] for row in epochs]
    bottom = np.zeros(len(epochs))
    for phase in PROFILE_PHASES:
        seconds = np.array([row.get(f"{phase}_seconds") or 0.0 for row in epochs])
        if seconds.any():
            left.bar(x, seconds, bottom=bottom, label=phase)
            bottom += seconds
    left.set(title="Step time by phase", xlabel="epoch", ylabel="seconds")
    left.legend(fontsize="x-small")
    right.plot(x, [row.get("samples_per_second") or np.nan for row in epochs], marker=".")
    right.set(title="Throughput", xlabel="epoch", ylabel="training samples / s")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def overlay_figure(runs: list[tuple[str, dict[str, np.ndarray]]]) -> Figure:
    """Learning curves of several runs, one colour per run: train dashed, validation solid."""
    def has(h, col):
        return col in h and bool(np.isfinite(h[col]).any())

    metrics = ["loss"] + (["accuracy"] if any(has(h, "val_accuracy") for _, h in runs) else [])
    fig = Figure(figsize=(5.4 * len(metrics), 4.2), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for i, (label, h) in enumerate(runs):
            epochs = h["epoch"] if has(h, "epoch") else np.arange(1, len(next(iter(h.values()))) + 1)
            for split, style in (("train", "--"), ("val", "-")):
                if has(h, f"{split}_{name}"):
                    ax.plot(epochs, h[f"{split}_{name}"], style, color=f"C{i % 10}", marker=".",
                            markersize=3, linewidth=1.2, label=f"{label} {split}")
        ax.set(title=name.capitalize() + " (dashed: train, solid: validation)", xlabel="epoch", ylabel=name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    return fig
