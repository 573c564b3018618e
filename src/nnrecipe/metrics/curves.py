"""Threshold curves for binary scores: ROC, precision-recall, F1 vs threshold; ROC AUC and AP.

Written on torch (no sklearn call at run time) so they run on any device and in the training
loop; outputs are laid out exactly as sklearn.metrics lays them out, and the tests compare them.

Sorting scores in decreasing order and keeping only the distinct values as thresholds t (tied
scores share a threshold, as in sklearn), a sample is predicted positive when score ≥ t, and with
P positives and N negatives:

- TP(t), FP(t) = positives / negatives with score ≥ t;  FN(t) = P − TP(t)
- TPR = TP/P, FPR = FP/N                     (roc_curve; starts at (0, 0), threshold +inf)
- precision = TP/(TP + FP), recall = TP/P    (precision_recall_curve; ends at (P=1, R=0))
- ROC AUC = trapezoidal area under (FPR, TPR); multiclass: one-vs-rest per class c with scores
  probs[:, c], then "macro" = mean over classes, "weighted" = Σ_c (n_c/N) · AUC_c
- AP = Σ_n (R_n − R_{n−1}) · P_n             (step-wise, no interpolation: sklearn's definition)
- F1(t) = 2 TP / (2 TP + FP + FN)            (0 where the denominator is 0)
"""

from __future__ import annotations

import torch


def _binary_inputs(y_true, scores) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.as_tensor(scores).to(torch.float64).reshape(-1)
    y = torch.as_tensor(y_true).reshape(-1).to(s.device)
    if y.shape != s.shape:
        raise ValueError(f"length mismatch: {y.shape[0]} labels vs {s.shape[0]} scores")
    if y.numel() == 0:
        raise ValueError("curves of an empty set are undefined")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y_true must be binary (0/1 or bool)")
    return y.to(torch.float64), s


def _counts_at_thresholds(y_true, scores):
    """(fps, tps, thresholds) at each distinct score, thresholds in decreasing order."""
    y, s = _binary_inputs(y_true, scores)
    order = torch.argsort(s, descending=True, stable=True)
    s, y = s[order], y[order]
    # the last index of each run of equal scores: tied samples cross the threshold together
    last = torch.nonzero(torch.diff(s) != 0).reshape(-1)
    last = torch.cat([last, torch.tensor([s.numel() - 1], device=s.device)])
    tps = torch.cumsum(y, dim=0)[last]
    fps = (last + 1).to(torch.float64) - tps
    return fps, tps, s[last]


def roc_curve(y_true_binary, scores, drop_intermediate: bool = True):
    """(fpr, tpr, thresholds) as sklearn.metrics.roc_curve: thresholds decreasing, the first is
    +inf (nothing predicted positive); drop_intermediate removes collinear points, which changes
    neither the plot nor the area. A rate with no samples behind it (no negatives or no positives)
    is NaN, as in sklearn."""
    fps, tps, thresholds = _counts_at_thresholds(y_true_binary, scores)
    if drop_intermediate and fps.numel() > 2:
        # a point is kept when the curve bends there (non-zero second difference) or at the ends
        bend = (torch.diff(fps, n=2) != 0) | (torch.diff(tps, n=2) != 0)
        true = torch.ones(1, dtype=torch.bool, device=fps.device)
        keep = torch.cat([true, bend, true])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    zero = torch.zeros(1, dtype=torch.float64, device=fps.device)
    fps, tps = torch.cat([zero, fps]), torch.cat([zero, tps])
    thresholds = torch.cat([zero + torch.inf, thresholds])
    fpr = fps / fps[-1] if fps[-1] > 0 else torch.full_like(fps, torch.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else torch.full_like(tps, torch.nan)
    return fpr, tpr, thresholds


def _binary_auc(y, s) -> float:
    fpr, tpr, _ = roc_curve(y, s)
    if torch.isnan(fpr).any() or torch.isnan(tpr).any():
        raise ValueError("ROC AUC needs both positive and negative samples in y_true")
    return torch.trapezoid(tpr, fpr).item()


def roc_auc(y_true, scores, average: str = "macro") -> float:
    """Binary ROC AUC when `scores` is 1-D (y_true 0/1); one-vs-rest over the C columns of [N, C]
    probabilities (y_true in 0..C-1), averaged "macro" or "weighted" by class prevalence.
    Every class must occur in y_true (sklearn raises too: the AUC of an absent class is undefined)."""
    s = torch.as_tensor(scores).to(torch.float64)
    if s.ndim == 1:
        return _binary_auc(y_true, s)
    if average not in ("macro", "weighted"):
        raise ValueError(f"average must be 'macro' or 'weighted', got {average!r}")
    y = torch.as_tensor(y_true).reshape(-1).long().to(s.device)
    num_classes = s.shape[1]
    support = torch.bincount(y, minlength=num_classes).to(torch.float64)
    if support.numel() != num_classes or bool((support == 0).any()):
        raise ValueError(f"one-vs-rest ROC AUC needs every one of the {num_classes} classes in y_true")
    aucs = torch.tensor([_binary_auc(y == c, s[:, c]) for c in range(num_classes)],
                        dtype=torch.float64)
    if average == "macro":
        return aucs.mean().item()
    return (aucs * support.cpu() / support.sum().cpu()).sum().item()


def precision_recall_curve(y_true_binary, scores):
    """(precision, recall, thresholds) as sklearn.metrics.precision_recall_curve: thresholds
    increasing, recall decreasing, a final point (precision 1, recall 0) with no threshold.
    With no positives in y_true, recall is 1 everywhere (sklearn's convention)."""
    fps, tps, thresholds = _counts_at_thresholds(y_true_binary, scores)
    predicted = tps + fps  # >= 1 at every threshold: each threshold is some sample's score
    precision = tps / predicted
    recall = tps / tps[-1] if tps[-1] > 0 else torch.ones_like(tps)
    one = torch.ones(1, dtype=torch.float64, device=tps.device)
    return (torch.cat([precision.flip(0), one]), torch.cat([recall.flip(0), one - 1]),
            thresholds.flip(0))


def average_precision(y_true_binary, scores) -> float:
    """AP = Σ_n (R_n − R_{n−1}) · P_n over the precision-recall curve's points."""
    precision, recall, _ = precision_recall_curve(y_true_binary, scores)
    # recall decreases along the curve, hence the minus; clamp a -0.0 from rounding as sklearn does
    return max(0.0, -(torch.diff(recall) * precision[:-1]).sum().item())


def f1_threshold_curve(y_true_binary, scores):
    """(thresholds, f1, best_threshold, best_f1): F1 of `score >= t` at each distinct score t
    (thresholds increasing). The best is the lowest threshold reaching the maximal F1."""
    fps, tps, thresholds = _counts_at_thresholds(y_true_binary, scores)
    fns = tps[-1] - tps  # tps[-1] is the total number of positives
    den = 2 * tps + fps + fns
    f1 = torch.where(den > 0, 2 * tps / torch.where(den > 0, den, torch.ones_like(den)),
                     torch.zeros_like(den))
    thresholds, f1 = thresholds.flip(0), f1.flip(0)
    best = int(torch.argmax(f1))  # first maximum, i.e. the lowest threshold among equals
    return thresholds, f1, thresholds[best].item(), f1[best].item()
