"""Calibration metrics: reliability bins, expected and maximum calibration error.

Written on torch (no sklearn or numpy at run time) so they run on any device and in the training
loop. sklearn has no ECE; the tests check it against the formula on hand-made examples.

For each sample the confidence is conf_i = max_c p_i[c] and the prediction ŷ_i = argmax_c p_i[c]
(first class wins a tie). With B equal-width bins, bin b (0-based) holds the samples with
conf_i ∈ (b/B, (b+1)/B]; the first bin also holds conf_i = 0. Per non-empty bin B_b:

- acc(B_b)  = (1/|B_b|) Σ_{i∈B_b} [ŷ_i = y_i]
- conf(B_b) = (1/|B_b|) Σ_{i∈B_b} conf_i
- ECE = Σ_b (|B_b| / N) · |acc(B_b) − conf(B_b)|
- MCE = max over non-empty bins of |acc(B_b) − conf(B_b)|

`probs` is [N, C], or 1-D [N] meaning the positive-class probability of a binary problem
(treated as [1 − p, p]). Sums are done in float64.
"""

from __future__ import annotations

import torch


def _probs_and_labels(probs, y_true) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(probs).to(torch.float64)
    if p.ndim == 1:
        p = torch.stack([1.0 - p, p], dim=1)
    if p.ndim != 2:
        raise ValueError(f"expected probabilities of shape [N, C] or [N], got {tuple(p.shape)}")
    y = torch.as_tensor(y_true).reshape(-1).long().to(p.device)
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"length mismatch: {p.shape[0]} probability rows vs {y.shape[0]} labels")
    if p.shape[0] == 0:
        raise ValueError("calibration of an empty set is undefined")
    return p, y


def _bin_stats(probs, y_true, n_bins: int):
    """(edges [B+1], count [B], mean confidence [B], accuracy [B]); empty bins have mean 0."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p, y = _probs_and_labels(probs, y_true)
    pred = p.argmax(dim=1)
    conf = p.gather(1, pred[:, None]).squeeze(1)
    correct = (pred == y).to(torch.float64)
    # i / B (not linspace) so the edges are exactly the correctly rounded b/B values
    edges = torch.arange(n_bins + 1, dtype=torch.float64, device=p.device) / n_bins
    # bucketize(right=False) gives i with edges[i] < conf <= edges[i+1] over the interior edges:
    # right-closed bins, and conf <= 1/B (including 0) lands in bin 0
    idx = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.bincount(idx, minlength=n_bins).to(torch.float64)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64, device=p.device).index_add_(0, idx, conf)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64, device=p.device).index_add_(0, idx, correct)
    safe = torch.where(count > 0, count, torch.ones_like(count))
    return edges, count, conf_sum / safe, acc_sum / safe


def reliability_bins(probs, y_true, n_bins: int = 15) -> dict:
    """Per-bin statistics for a reliability diagram, as plain Python lists.

    Keys: "edges" (B+1 floats, b/B), "confidence" (mean confidence per bin), "accuracy" (per bin),
    "count" (ints). Empty bins report confidence and accuracy 0.0; check "count" before plotting.
    """
    edges, count, conf, acc = _bin_stats(probs, y_true, n_bins)
    return {"edges": edges.tolist(), "confidence": conf.tolist(), "accuracy": acc.tolist(),
            "count": [int(c) for c in count.tolist()]}


def expected_calibration_error(probs, y_true, n_bins: int = 15) -> float:
    """ECE = Σ_b (|B_b| / N) · |acc(B_b) − conf(B_b)| over equal-width confidence bins."""
    _, count, conf, acc = _bin_stats(probs, y_true, n_bins)
    # empty bins have count 0, so they add nothing
    return ((count / count.sum()) * (acc - conf).abs()).sum().item()


def max_calibration_error(probs, y_true, n_bins: int = 15) -> float:
    """MCE = max over non-empty bins of |acc(B_b) − conf(B_b)|."""
    _, count, conf, acc = _bin_stats(probs, y_true, n_bins)
    return (acc - conf).abs()[count > 0].max().item()
