"""Classification metrics on torch tensors.

Hand-written on torch instead of calling sklearn at run time so they run on any device (no copy
to numpy), inside the training loop, and with no per-call validation overhead. scikit-learn is
the test oracle: tests/metrics compares every function against ``sklearn.metrics``.

With C classes, confusion matrix M (rows = true class, columns = predicted class) and, per class
c, TP_c = M[c, c], FP_c = Σ_r M[r, c] − TP_c, FN_c = Σ_k M[c, k] − TP_c, support n_c = Σ_k M[c, k]:

- accuracy        = (1/N) Σ_i [ŷ_i = y_i]
- top-k accuracy  = (1/N) Σ_i [y_i ∈ the k highest-scored classes of sample i]
- precision_c     = TP_c / (TP_c + FP_c)
- recall_c        = TP_c / (TP_c + FN_c)
- F1_c            = 2 TP_c / (2 TP_c + FP_c + FN_c)
- macro           = unweighted mean over all C classes (a class absent from both y_true and
                    y_pred counts as 0, as sklearn does with ``labels=range(C)``)
- micro           = the same ratios on Σ_c TP_c, Σ_c FP_c, Σ_c FN_c
- weighted        = Σ_c (n_c / N) · metric_c
- NLL             = −(1/N) Σ_i log max(p_i[y_i], 1e-12)

Any 0/0 is 0 (sklearn's ``zero_division=0``). Sums are done in float64.
"""

from __future__ import annotations

import torch

from nnrecipe.metrics.calibration import expected_calibration_error, max_calibration_error
from nnrecipe.metrics.curves import average_precision, f1_threshold_curve, roc_auc

_AVERAGES = ("macro", "micro", "weighted", None)
_PROB_FLOOR = 1e-12  # log(1e-12) ≈ -27.6: one confident mistake cannot turn the mean into inf


def _labels(y) -> torch.Tensor:
    """Integer class labels as a 1-D int64 tensor (numpy arrays and lists accepted)."""
    t = torch.as_tensor(y)
    if t.is_floating_point() and not torch.equal(t, t.round()):
        raise ValueError("class labels must be integers")
    return t.reshape(-1).long()


def _scores(x) -> torch.Tensor:
    """Per-class scores/probabilities as a 2-D float64 tensor [N, C]."""
    t = torch.as_tensor(x).to(torch.float64)
    if t.ndim != 2:
        raise ValueError(f"expected scores of shape [N, C], got {tuple(t.shape)}")
    return t


def _check_lengths(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"length mismatch: {a.shape[0]} vs {b.shape[0]}")
    if a.shape[0] == 0:
        raise ValueError("metrics of an empty set are undefined")


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, 0 where den == 0 (sklearn's zero_division=0)."""
    return torch.where(den != 0, num / torch.where(den != 0, den, torch.ones_like(den)),
                       torch.zeros_like(num))


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true label."""
    yt = _labels(y_true)
    yp = _labels(y_pred).to(yt.device)
    _check_lengths(yt, yp)
    return (yt == yp).to(torch.float64).mean().item()


def top_k_accuracy(y_true, probs_or_scores, k: int) -> float:
    """Fraction of samples whose true class is among the k highest scores.

    Ties are ordered as sklearn's top_k_accuracy_score does (stable ascending sort, reversed: among
    equal scores the higher class index ranks first), so results match it exactly.
    """
    s = _scores(probs_or_scores)
    yt = _labels(y_true).to(s.device)
    _check_lengths(yt, s)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top = torch.argsort(s, dim=1, stable=True).flip(1)[:, :k]
    return (top == yt[:, None]).any(dim=1).to(torch.float64).mean().item()


def confusion_matrix(y_true, y_pred, num_classes: int) -> torch.Tensor:
    """[C, C] int64 counts, rows = true class, columns = predicted class."""
    yt = _labels(y_true)
    yp = _labels(y_pred).to(yt.device)
    _check_lengths(yt, yp)
    for name, y in (("y_true", yt), ("y_pred", yp)):
        if int(y.min()) < 0 or int(y.max()) >= num_classes:
            raise ValueError(f"{name} has labels outside [0, {num_classes})")
    flat = torch.bincount(yt * num_classes + yp, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def normalize_confusion(cm) -> torch.Tensor:
    """Row-normalized confusion matrix (each true class sums to 1); a row with no samples stays 0."""
    cm = torch.as_tensor(cm).to(torch.float64)
    return _safe_div(cm, cm.sum(dim=1, keepdim=True).expand_as(cm))


def _prf_from_counts(tp, pred_count, true_count):
    fp, fn = pred_count - tp, true_count - tp
    return _safe_div(tp, pred_count), _safe_div(tp, true_count), _safe_div(2 * tp, 2 * tp + fp + fn)


def precision_recall_f1(y_true, y_pred, num_classes: int, average: str | None = "macro"):
    """(precision, recall, f1): floats for "macro" | "micro" | "weighted", or per-class float64
    tensors of length C for average=None. Matches sklearn's precision_recall_fscore_support with
    labels=range(num_classes), zero_division=0."""
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    cm = confusion_matrix(y_true, y_pred, num_classes).to(torch.float64)
    tp, pred_count, true_count = cm.diagonal(), cm.sum(dim=0), cm.sum(dim=1)
    if average == "micro":
        prf = _prf_from_counts(tp.sum(), pred_count.sum(), true_count.sum())
        return tuple(v.item() for v in prf)
    p, r, f1 = _prf_from_counts(tp, pred_count, true_count)
    if average is None:
        return p, r, f1
    if average == "macro":
        return p.mean().item(), r.mean().item(), f1.mean().item()
    weights = true_count / true_count.sum()  # N > 0 and every label in range, so the sum is > 0
    return tuple((weights * v).sum().item() for v in (p, r, f1))


def per_class_table(y_true, y_pred, num_classes: int, class_names: list[str]) -> list[dict]:
    """One row per class: {"class", "precision", "recall", "f1", "support"} (plain Python values)."""
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    p, r, f1 = precision_recall_f1(y_true, y_pred, num_classes, average=None)
    support = torch.bincount(_labels(y_true), minlength=num_classes)
    return [{"class": str(name), "precision": p[c].item(), "recall": r[c].item(),
             "f1": f1[c].item(), "support": int(support[c])} for c, name in enumerate(class_names)]


def nll(probs, y_true) -> float:
    """Mean negative log likelihood of the true class, probabilities clamped at 1e-12."""
    p = _scores(probs)
    yt = _labels(y_true).to(p.device)
    _check_lengths(p, yt)
    picked = p.gather(1, yt[:, None]).squeeze(1).clamp_min(_PROB_FLOOR)
    return -torch.log(picked).mean().item()


def classification_metrics(probs, y_true, *, class_names: list[str], n_bins: int = 15) -> dict:
    """All test-set classification metrics as a JSON-serializable dict (plain floats and lists).

    Predictions are argmax(probs) (first class wins a tie, as torch/numpy argmax do)."""
    p = _scores(probs)
    yt = _labels(y_true).to(p.device)
    num_classes = p.shape[1]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for probabilities of {num_classes} classes")
    pred = p.argmax(dim=1)
    out = {"loss": nll(p, yt), "accuracy": accuracy(yt, pred)}
    for avg in ("macro", "micro", "weighted"):
        prec, rec, f1 = precision_recall_f1(yt, pred, num_classes, average=avg)
        out.update({f"precision_{avg}": prec, f"recall_{avg}": rec, f"f1_{avg}": f1})
    out["ece"] = expected_calibration_error(p, yt, n_bins)
    out["mce"] = max_calibration_error(p, yt, n_bins)
    if num_classes > 2:
        k = min(5, num_classes - 1)
        out[f"top_{k}_accuracy"] = top_k_accuracy(yt, p, k)
    out.update(_ranking_metrics(p, yt, num_classes))
    cm = confusion_matrix(yt, pred, num_classes)
    out["confusion_matrix"] = cm.tolist()
    out["confusion_matrix_normalized"] = normalize_confusion(cm).tolist()
    out["per_class"] = per_class_table(yt, pred, num_classes, [str(n) for n in class_names])
    out["class_names"] = [str(n) for n in class_names]
    return out


def _ranking_metrics(p: torch.Tensor, yt: torch.Tensor, num_classes: int) -> dict:
    """ROC AUC and average precision (binary: of the second class; multiclass: one-vs-rest, macro and
    weighted AUC, macro AP over the classes present), and for binary tasks the F1-optimal threshold.
    None where undefined (a class absent from y_true)."""
    present = torch.bincount(yt, minlength=num_classes) > 0
    if num_classes == 2:
        if not bool(present.all()):
            return {"roc_auc": None, "average_precision": None, "best_threshold": None, "best_threshold_f1": None}
        _, _, threshold, f1 = f1_threshold_curve(yt == 1, p[:, 1])
        return {"roc_auc": roc_auc(yt, p[:, 1]), "average_precision": average_precision(yt == 1, p[:, 1]),
                "best_threshold": threshold, "best_threshold_f1": f1}
    every = bool(present.all())
    aps = [average_precision(yt == c, p[:, c]) for c in range(num_classes) if bool(present[c])]
    return {"roc_auc_macro": roc_auc(yt, p, "macro") if every else None,
            "roc_auc_weighted": roc_auc(yt, p, "weighted") if every else None,
            "average_precision_macro": sum(aps) / len(aps) if aps else None}
