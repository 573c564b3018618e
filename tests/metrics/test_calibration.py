"""Calibration metrics against the ECE/MCE formulas, computed by hand in the tests.

sklearn has no ECE, so the oracles are a hand-worked example and a plain numpy reference written
here from the definition (bin b holds conf in (b/B, (b+1)/B], the first bin also 0).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnrecipe.metrics import expected_calibration_error, max_calibration_error, reliability_bins

TOL = {"rel": 1e-10, "abs": 1e-12}


def _reference(probs: np.ndarray, y: np.ndarray, n_bins: int):
    """(ECE, MCE, counts) straight from the definition, one bin at a time."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    correct = (pred == y).astype(np.float64)
    ece, mce, counts = 0.0, 0.0, []
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        in_bin = (conf > lo) & (conf <= hi) if b > 0 else (conf <= hi)
        counts.append(int(in_bin.sum()))
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - conf[in_bin].mean())
            ece += in_bin.sum() / len(y) * gap
            mce = max(mce, gap)
    return ece, mce, counts


def test_hand_made_example():
    # B = 5 bins of width 0.2. Confidences 0.9 (right), 0.6 (wrong), 0.7 (right), 0.8 (wrong).
    # 0.6 and 0.8 sit on bin edges and belong to the bin they close: (0.4, 0.6] and (0.6, 0.8].
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])
    # bin (0.4,0.6]: {0.6 wrong}          -> |0 - 0.6|    = 0.6,  weight 1/4
    # bin (0.6,0.8]: {0.7 right, 0.8 wrong} -> |0.5 - 0.75| = 0.25, weight 2/4
    # bin (0.8,1.0]: {0.9 right}          -> |1 - 0.9|    = 0.1,  weight 1/4
    expected_ece = 0.25 * 0.6 + 0.5 * 0.25 + 0.25 * 0.1  # = 0.3
    assert expected_calibration_error(probs, y, n_bins=5) == pytest.approx(expected_ece, **TOL)
    assert max_calibration_error(probs, y, n_bins=5) == pytest.approx(0.6, **TOL)
    bins = reliability_bins(probs, y, n_bins=5)
    assert bins["count"] == [0, 0, 1, 2, 1]
    assert bins["edges"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], **TOL)
    assert bins["confidence"] == pytest.approx([0.0, 0.0, 0.6, 0.75, 0.9], **TOL)
    assert bins["accuracy"] == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0], **TOL)


def test_perfectly_calibrated_is_zero():
    # 10 samples at confidence 0.8, 8 of them right: accuracy 0.8 = confidence 0.8 in the one bin
    probs = torch.tensor([[0.8, 0.2]] * 10, dtype=torch.float64)
    y = torch.tensor([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)
    assert max_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)


def test_perfectly_wrong_is_one():
    # every sample fully confident (conf 1) and wrong (acc 0): ECE = 1 · |0 − 1| = 1
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([1, 2, 0])
    assert expected_calibration_error(probs, y) == pytest.approx(1.0, **TOL)
    assert max_calibration_error(probs, y) == pytest.approx(1.0, **TOL)


def test_zero_confidence_goes_to_first_bin():
    probs = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    bins = reliability_bins(probs, torch.tensor([0, 0]), n_bins=4)
    assert bins["count"] == [1, 0, 0, 1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_random_against_reference(seed, n_bins):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(300, 4)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[:20] = np.round(probs[:20], 1)  # some confidences exactly on bin edges
    y = rng.integers(0, 4, size=300)
    ece, mce, counts = _reference(probs, y, n_bins)
    assert expected_calibration_error(torch.as_tensor(probs), torch.as_tensor(y), n_bins) == \
        pytest.approx(ece, **TOL)
    assert expected_calibration_error(probs, y, n_bins) == pytest.approx(ece, **TOL)  # numpy in
    assert max_calibration_error(probs, y, n_bins) == pytest.approx(mce, **TOL)
    assert reliability_bins(probs, y, n_bins)["count"] == counts


def test_binary_1d_probabilities_mean_positive_class():
    rng = np.random.default_rng(3)
    p1 = rng.uniform(size=100)
    y = rng.integers(0, 2, size=100)
    two_col = np.stack([1 - p1, p1], axis=1)
    assert expected_calibration_error(p1, y) == pytest.approx(
        expected_calibration_error(two_col, y), **TOL)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        expected_calibration_error(torch.ones(3, 2) / 2, torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        expected_calibration_error(torch.ones(3, 2) / 2, torch.tensor([0, 1, 1]), n_bins=0)
