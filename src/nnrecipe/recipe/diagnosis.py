"""Curve diagnosis: underfitting, overfitting or healthy, read off the per-epoch history.

The bias/variance reading of learning curves (Ng, "Machine Learning Yearning" ch. 20–27; CS231n
"Babysitting the learning process"; Goodfellow et al. 2016 §5.2). `rows` are history.csv rows
(epoch, train_loss, val_loss, train_accuracy, val_accuracy; accuracies None for regression). Rows
without both losses are ignored. Rules, thresholds as module constants, checked in this order:

- fewer than ``MIN_EPOCHS`` (2) epochs → "insufficient history": one point says nothing about
  the curves' direction (advice: train for more epochs).
- **overfitting**, any of
  - the final val loss ≥ (1 + ``VAL_RISE``) × its minimum (rose by ≥ 10%) while the train loss
    fell from the best-val epoch to the end;
  - classification: final train accuracy − val accuracy > ``ACC_GAP`` (0.10);
  - regression: final val loss − train loss > ``LOSS_GAP`` (50%) × val loss. (Classification
    compares accuracies, not cross-entropies: label smoothing and dropout inflate the train loss.)
- **underfitting**, both curves poor and close:
  - classification: final train accuracy < ``POOR_ACC`` (0.90) and |train − val| accuracy
    < ``CLOSE_ACC`` (0.05);
  - regression: final train MSE > ``POOR_MSE`` (0.5, on the standardized target, where predicting
    the mean scores 1) and the gap within ``LOSS_GAP`` (the overfitting rule did not fire).
- otherwise **healthy**.

Returns {"verdict", "reasons" (the numbers behind the verdict), "advice"}.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

MIN_EPOCHS = 2
VAL_RISE = 0.10
ACC_GAP = 0.10
LOSS_GAP = 0.50
POOR_ACC = 0.90
CLOSE_ACC = 0.05
POOR_MSE = 0.5

ADVICE = {
    "underfitting": "train longer, use a bigger model, or reduce regularization",
    "overfitting": "more data, augmentation, stronger regularization, or early stopping",
    "healthy": "both curves improving with a modest gap",
    "insufficient history": "train for more epochs before reading the curves",
}


def _num(value):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value  # a non-numeric column is kept as text


def read_history_csv(path: str | Path) -> list[dict]:
    """history.csv rows as dicts of floats (empty cells → None, non-numeric cells kept as text)."""
    with Path(path).open(newline="") as fh:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _finite(value) -> bool:
    if value is None or isinstance(value, str):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _verdict(verdict: str, reasons: list[str]) -> dict:
    return {"verdict": verdict, "reasons": reasons, "advice": ADVICE[verdict]}


def diagnose_history(rows: list[dict], *, task: str) -> dict:
    """Classify the learning curves (module docstring); `reasons` carry the numbers behind the verdict."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    rows = [r for r in rows if _finite(r.get("train_loss")) and _finite(r.get("val_loss"))]
    if len(rows) < MIN_EPOCHS:
        return _verdict("insufficient history", [f"{len(rows)} epoch(s) recorded, need {MIN_EPOCHS}"])
    last = rows[-1]
    val = [r["val_loss"] for r in rows]
    best = min(range(len(val)), key=val.__getitem__)
    train_after_best = [r["train_loss"] for r in rows[best:]]
    reasons: list[str] = []
    rise = last["val_loss"] / val[best] - 1 if val[best] > 0 else 0.0
    if best < len(rows) - 1 and rise >= VAL_RISE and train_after_best[-1] < train_after_best[0]:
        reasons.append(f"val loss rose {rise:.0%} from its minimum {val[best]:.4f} (epoch {best + 1}) to "
                       f"{last['val_loss']:.4f} while train loss fell {train_after_best[0]:.4f} → "
                       f"{train_after_best[-1]:.4f}")
    # without both accuracies (an old or hand-written history) the loss rules apply
    classification = (task == "classification" and _finite(last.get("train_accuracy"))
                      and _finite(last.get("val_accuracy")))
    if classification:
        gap = last["train_accuracy"] - last["val_accuracy"]
        if gap > ACC_GAP:
            reasons.append(f"train accuracy {last['train_accuracy']:.3f} exceeds val accuracy "
                           f"{last['val_accuracy']:.3f} by {gap:.3f} (> {ACC_GAP})")
    else:
        loss_gap = last["val_loss"] - last["train_loss"]
        if last["val_loss"] > 0 and loss_gap > LOSS_GAP * last["val_loss"]:
            reasons.append(f"val loss {last['val_loss']:.4f} exceeds train loss {last['train_loss']:.4f} "
                           f"by more than {LOSS_GAP:.0%} of the val loss")
    if reasons:
        return _verdict("overfitting", reasons)
    if classification:
        gap = abs(last["train_accuracy"] - last["val_accuracy"])
        if last["train_accuracy"] < POOR_ACC and gap < CLOSE_ACC:
            return _verdict("underfitting", [f"train accuracy {last['train_accuracy']:.3f} < {POOR_ACC} and "
                                             f"val accuracy {last['val_accuracy']:.3f} is within {CLOSE_ACC}"])
    elif last["train_loss"] > POOR_MSE:
        return _verdict("underfitting", [f"train MSE {last['train_loss']:.3f} (standardized target) > {POOR_MSE} "
                                         f"with val MSE {last['val_loss']:.3f} close to it"])
    detail = (f"final train/val accuracy {last['train_accuracy']:.3f}/{last['val_accuracy']:.3f}"
              if classification else f"final train/val loss {last['train_loss']:.4f}/{last['val_loss']:.4f}")
    return _verdict("healthy", [detail + f"; best val loss at epoch {best + 1} of {len(rows)}"])
