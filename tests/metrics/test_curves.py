"""nnrecipe.metrics.curves against sklearn.metrics, ties in scores included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from nnrecipe.metrics import (
    average_precision,
    f1_threshold_curve,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)

TOL = {"rel": 1e-10, "abs": 1e-12}
SEEDS = [0, 1, 2, 3, 4]


def _same(ours: torch.Tensor, ref: np.ndarray):
    ref = np.array(ref, dtype=np.float64)  # a copy: sklearn returns flipped (negative-stride) views
    torch.testing.assert_close(ours, torch.as_tensor(ref),
                               rtol=1e-10, atol=1e-12, equal_nan=True)


def _binary(seed: int, n: int = 150, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    scores = rng.normal(size=n) + y  # informative but overlapping
    if ties:
        scores = np.round(scores, 0)  # a handful of distinct values, many ties
    return y, scores


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_binary_curves_against_sklearn(seed, ties):
    y, s = _binary(seed, ties=ties)
    for drop in (True, False):
        ours = roc_curve(torch.as_tensor(y), torch.as_tensor(s), drop_intermediate=drop)
        for a, b in zip(ours, skm.roc_curve(y, s, drop_intermediate=drop)):
            _same(a, b)
    for a, b in zip(precision_recall_curve(y, s), skm.precision_recall_curve(y, s)):
        _same(a, b)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), **TOL)
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), **TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_f1_threshold_curve_against_sklearn(seed, ties):
    y, s = _binary(seed, n=40, ties=ties)  # one sklearn call per threshold: keep n small
    thresholds, f1, best_t, best_f1 = f1_threshold_curve(y, s)
    _same(thresholds, np.unique(s))  # distinct scores only, increasing
    ref = np.array([skm.f1_score(y, (s >= t).astype(int), zero_division=0) for t in np.unique(s)])
    _same(f1, ref)
    assert best_f1 == pytest.approx(ref.max(), **TOL)
    assert best_t == np.unique(s)[np.argmax(ref)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_multiclass_ovr_auc_against_sklearn(seed, average):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=200)
    logits = rng.normal(size=(200, 4)) + 1.5 * np.eye(4)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[:50] = np.round(probs[:50], 1)  # ties
    probs /= probs.sum(axis=1, keepdims=True)
    ref = skm.roc_auc_score(y, probs, multi_class="ovr", average=average)
    assert roc_auc(torch.as_tensor(y), torch.as_tensor(probs), average=average) == \
        pytest.approx(ref, **TOL)


def test_two_column_probs_equal_binary_auc():
    y, s = _binary(9)
    p1 = 1 / (1 + np.exp(-s))
    probs = np.stack([1 - p1, p1], axis=1)
    assert roc_auc(y, probs) == pytest.approx(skm.roc_auc_score(y, p1), **TOL)


def test_perfect_and_reversed_scores():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert average_precision(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_all_scores_tied():
    y = np.array([0, 1, 1, 0, 1])
    s = np.full(5, 0.3)
    for a, b in zip(roc_curve(y, s), skm.roc_curve(y, s)):
        _same(a, b)
    for a, b in zip(precision_recall_curve(y, s), skm.precision_recall_curve(y, s)):
        _same(a, b)
    assert roc_auc(y, s) == pytest.approx(0.5, **TOL)
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), **TOL)


def test_no_positives_follow_sklearn():
    y = np.zeros(6, dtype=int)
    s = np.linspace(0, 1, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the undefined recall / TPR
        ref_pr = skm.precision_recall_curve(y, s)
        ref_ap = skm.average_precision_score(y, s)
        ref_roc = skm.roc_curve(y, s)
    for a, b in zip(precision_recall_curve(y, s), ref_pr):
        _same(a, b)
    assert average_precision(y, s) == pytest.approx(ref_ap, **TOL)
    for a, b in zip(roc_curve(y, s), ref_roc):
        _same(a, b)
    with pytest.raises(ValueError):
        roc_auc(y, s)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        roc_curve([0, 2, 1], [0.1, 0.2, 0.3])  # not binary
    with pytest.raises(ValueError):
        roc_curve([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        roc_auc([0, 1, 1], np.full((3, 3), 1 / 3))  # class 2 absent: OvR AUC undefined
    with pytest.raises(ValueError):
        roc_auc([0, 1, 2], np.full((3, 3), 1 / 3), average="micro")
