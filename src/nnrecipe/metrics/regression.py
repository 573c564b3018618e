"""Regression metrics for a single target, on torch tensors.

Hand-written on torch (no sklearn call at run time) so they run on any device and in the training
loop; sklearn.metrics is the test oracle. With predictions ŷ_i, targets y_i, i = 1..N, ȳ their mean:

- MSE  = (1/N) Σ (y_i − ŷ_i)²
- RMSE = √MSE
- MAE  = (1/N) Σ |y_i − ŷ_i|
- R²   = 1 − SS_res / SS_tot, SS_res = Σ (y_i − ŷ_i)², SS_tot = Σ (y_i − ȳ)².
  A constant target (SS_tot = 0) gives 1.0 for a perfect prediction and 0.0 otherwise, as
  sklearn's r2_score does by default (force_finite=True) instead of returning NaN / −inf.

Inputs are flattened (one target); sums are done in float64.
"""

from __future__ import annotations

import math

import torch


def _pair(pred, y_true) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(pred).to(torch.float64).reshape(-1)
    y = torch.as_tensor(y_true).to(torch.float64).reshape(-1).to(p.device)
    if p.shape != y.shape:
        raise ValueError(f"length mismatch: {p.numel()} predictions vs {y.numel()} targets")
    if p.numel() == 0:
        raise ValueError("metrics of an empty set are undefined")
    return p, y


def mse(pred, y_true) -> float:
    """Mean squared error."""
    p, y = _pair(pred, y_true)
    return ((y - p) ** 2).mean().item()


def rmse(pred, y_true) -> float:
    """Root mean squared error (in the target's units)."""
    return math.sqrt(mse(pred, y_true))


def mae(pred, y_true) -> float:
    """Mean absolute error."""
    p, y = _pair(pred, y_true)
    return (y - p).abs().mean().item()


def r2_score(pred, y_true) -> float:
    """Coefficient of determination R² = 1 − SS_res / SS_tot (sklearn's constant-target rule)."""
    p, y = _pair(pred, y_true)
    ss_res = ((y - p) ** 2).sum().item()
    ss_tot = ((y - y.mean()) ** 2).sum().item()
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def regression_metrics(pred, y_true) -> dict:
    """{"mse", "rmse", "mae", "r2"} as plain Python floats (JSON-serializable)."""
    m = mse(pred, y_true)
    return {"mse": m, "rmse": math.sqrt(m), "mae": mae(pred, y_true), "r2": r2_score(pred, y_true)}
