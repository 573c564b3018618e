"""nnrecipe.metrics.classification against sklearn.metrics (the oracle) on random data and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from nnrecipe.metrics import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    nll,
    normalize_confusion,
    per_class_table,
    precision_recall_f1,
    top_k_accuracy,
)

TOL = {"rel": 1e-10, "abs": 1e-12}
SEEDS = [0, 1, 2, 3, 4]


def _random(seed: int, n: int = 200, c: int = 5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = rng.integers(0, c, size=n)
    return torch.as_tensor(probs), torch.as_tensor(y_true), c


def _check_prf(y_true, y_pred, c):
    """Every average of precision_recall_f1 equals sklearn with labels=range(c), zero_division=0."""
    for avg in ("macro", "micro", "weighted"):
        ours = precision_recall_f1(y_true, y_pred, c, average=avg)
        ref = skm.precision_recall_fscore_support(np.asarray(y_true), np.asarray(y_pred),
                                                  labels=list(range(c)), average=avg,
                                                  zero_division=0)[:3]
        assert ours == pytest.approx(ref, **TOL), avg
    p, r, f1 = precision_recall_f1(y_true, y_pred, c, average=None)
    ref = skm.precision_recall_fscore_support(np.asarray(y_true), np.asarray(y_pred),
                                              labels=list(range(c)), average=None, zero_division=0)
    for ours, theirs in zip((p, r, f1), ref[:3]):
        torch.testing.assert_close(ours, torch.as_tensor(theirs, dtype=torch.float64),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_against_sklearn(seed):
    probs, y_true, c = _random(seed)
    y_pred = probs.argmax(dim=1)
    yt, yp = y_true.numpy(), y_pred.numpy()
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(yt, yp), **TOL)
    assert torch.equal(confusion_matrix(y_true, y_pred, c),
                       torch.as_tensor(skm.confusion_matrix(yt, yp, labels=list(range(c)))))
    assert confusion_matrix(y_true, y_pred, c).dtype == torch.int64
    torch.testing.assert_close(
        normalize_confusion(confusion_matrix(y_true, y_pred, c)),
        torch.as_tensor(skm.confusion_matrix(yt, yp, labels=list(range(c)), normalize="true")),
        rtol=1e-10, atol=1e-12)
    _check_prf(y_true, y_pred, c)
    for k in (1, 2, 3):
        ref = skm.top_k_accuracy_score(yt, probs.numpy(), k=k, labels=list(range(c)))
        assert top_k_accuracy(y_true, probs, k) == pytest.approx(ref, **TOL)
    assert top_k_accuracy(y_true, probs, c) == 1.0
    assert nll(probs, y_true) == pytest.approx(skm.log_loss(yt, probs.numpy(), labels=list(range(c))),
                                               **TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_top_k_ties_like_sklearn(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, size=(100, 5)).astype(np.float64)  # many tied scores per row
    y = rng.integers(0, 5, size=100)
    for k in (1, 2, 4):
        ref = skm.top_k_accuracy_score(y, scores, k=k, labels=list(range(5)))
        assert top_k_accuracy(y, scores, k) == pytest.approx(ref, **TOL)


@pytest.mark.parametrize("case", ["absent_in_true", "never_predicted", "one_class_predicted",
                                  "absent_in_both", "binary", "perfect"])
def test_edge_cases_against_sklearn(case):
    rng = np.random.default_rng(7)
    c = 4
    y_true = rng.integers(0, c, size=60)
    y_pred = rng.integers(0, c, size=60)
    if case == "absent_in_true":
        y_true[y_true == 2] = 0
    elif case == "never_predicted":
        y_pred[y_pred == 1] = 3
    elif case == "one_class_predicted":
        y_pred[:] = 2
    elif case == "absent_in_both":
        y_true[y_true == 3] = 0
        y_pred[y_pred == 3] = 1
    elif case == "binary":
        c, y_true, y_pred = 2, y_true % 2, y_pred % 2
    elif case == "perfect":
        y_pred = y_true.copy()
    _check_prf(torch.as_tensor(y_true), torch.as_tensor(y_pred), c)
    _check_prf(y_true, y_pred, c)  # numpy input
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred), **TOL)


def test_normalize_confusion_empty_row_stays_zero():
    cm = torch.tensor([[3, 1, 0], [0, 0, 0], [1, 0, 1]])
    out = normalize_confusion(cm)
    expected = torch.tensor([[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_per_class_table_matches_sklearn():
    probs, y_true, c = _random(11, n=80, c=3)
    y_pred = probs.argmax(dim=1)
    names = ["cat", "dog", "eel"]
    rows = per_class_table(y_true, y_pred, c, names)
    p, r, f1, support = skm.precision_recall_fscore_support(
        y_true.numpy(), y_pred.numpy(), labels=list(range(c)), zero_division=0)
    assert [row["class"] for row in rows] == names
    for i, row in enumerate(rows):
        assert set(row) == {"class", "precision", "recall", "f1", "support"}
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f1[i]), **TOL)
        assert row["support"] == support[i] and isinstance(row["support"], int)


def test_nll_clamps_zero_probability():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    expected = -(np.log(1e-12) + np.log(0.5)) / 2
    assert nll(probs, y) == pytest.approx(expected, **TOL)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_classification_metrics_dict(seed):
    probs, y_true, c = _random(seed, n=150, c=4)
    names = [f"c{i}" for i in range(c)]
    probs32 = probs.float()  # what the pipeline may hand over; computed in float64 inside
    out = classification_metrics(probs32, y_true, class_names=names, n_bins=10)
    assert list(out) == ["loss", "accuracy", "precision_macro", "recall_macro", "f1_macro",
                         "precision_micro", "recall_micro", "f1_micro", "precision_weighted",
                         "recall_weighted", "f1_weighted", "ece", "mce", "top_3_accuracy",
                         "roc_auc_macro", "roc_auc_weighted", "average_precision_macro",
                         "confusion_matrix", "confusion_matrix_normalized", "per_class", "class_names"]
    json.dumps(out)  # JSON-serializable: plain floats, lists of ints
    for key, value in out.items():
        if key not in ("confusion_matrix", "confusion_matrix_normalized", "per_class", "class_names"):
            assert type(value) is float, key
    assert all(type(v) is int for row in out["confusion_matrix"] for v in row)
    assert out["class_names"] == names
    p64 = probs32.double()
    yt, yp = y_true.numpy(), p64.argmax(dim=1).numpy()
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(yt, yp), **TOL)
    for avg in ("macro", "micro", "weighted"):
        ref = skm.precision_recall_fscore_support(yt, yp, labels=list(range(c)), average=avg,
                                                  zero_division=0)
        assert (out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"]) == \
            pytest.approx(ref[:3], **TOL)
    assert out["confusion_matrix"] == skm.confusion_matrix(yt, yp, labels=list(range(c))).tolist()
    assert 0.0 <= out["ece"] <= 1.0
    picked = p64[torch.arange(len(yt)), y_true].numpy()
    assert out["loss"] == pytest.approx(-np.mean(np.log(picked)), **TOL)
    assert out["top_3_accuracy"] == pytest.approx(skm.top_k_accuracy_score(yt, p64.numpy(), k=3), **TOL)
    for avg in ("macro", "weighted"):
        ref = skm.roc_auc_score(yt, p64.numpy(), multi_class="ovr", average=avg)
        assert out[f"roc_auc_{avg}"] == pytest.approx(ref, **TOL)
    onehot = np.eye(c)[yt]
    assert out["average_precision_macro"] == pytest.approx(
        skm.average_precision_score(onehot, p64.numpy(), average="macro"), **TOL)
    np.testing.assert_allclose(out["confusion_matrix_normalized"],
                               skm.confusion_matrix(yt, yp, labels=list(range(c)), normalize="true"), atol=1e-12)
    assert [r["support"] for r in out["per_class"]] == np.bincount(yt, minlength=c).tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_metrics_dict_against_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (120,), generator=g)
    score = (y + torch.randn(120, generator=g) * 1.2).sigmoid().double()
    probs = torch.stack([1 - score, score], 1)
    out = classification_metrics(probs, y, class_names=["neg", "pos"])
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y.numpy(), score.numpy()), **TOL)
    assert out["average_precision"] == pytest.approx(skm.average_precision_score(y.numpy(), score.numpy()), **TOL)
    # the best threshold's F1 is the maximum of sklearn's F1 over its PR-curve thresholds
    prec, rec, thr = skm.precision_recall_curve(y.numpy(), score.numpy())
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-300), 0)[:-1]
    assert out["best_threshold_f1"] == pytest.approx(f1.max(), **TOL)
    assert out["best_threshold"] == pytest.approx(thr[np.argmax(f1)], **TOL)


def test_absent_class_gives_none_auc():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]], dtype=torch.float64)
    out = classification_metrics(probs, torch.tensor([0, 1, 0]), class_names=["a", "b", "c"])
    assert out["roc_auc_macro"] is None and out["roc_auc_weighted"] is None
    onehot = np.eye(3)[[0, 1, 0]][:, :2]  # sklearn's AP over the classes that occur
    assert out["average_precision_macro"] == pytest.approx(
        skm.average_precision_score(onehot, probs.numpy()[:, :2], average="macro"), **TOL)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        confusion_matrix([0, 1, 3], [0, 1, 1], 3)  # label out of range
    with pytest.raises(ValueError):
        accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError):
        precision_recall_f1([0, 1], [0, 1], 2, average="samples")
    with pytest.raises(ValueError):
        classification_metrics(torch.full((3, 2), 0.5), torch.tensor([0, 1, 0]), class_names=["a"])
