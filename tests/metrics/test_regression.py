"""nnrecipe.metrics.regression against sklearn.metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from nnrecipe.metrics import mae, mse, r2_score, regression_metrics, rmse

TOL = {"rel": 1e-10, "abs": 1e-12}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_random_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(loc=3.0, scale=2.0, size=300)
    pred = y + rng.normal(scale=0.7, size=300)
    ref = {"mse": skm.mean_squared_error(y, pred), "rmse": math.sqrt(skm.mean_squared_error(y, pred)),
           "mae": skm.mean_absolute_error(y, pred), "r2": skm.r2_score(y, pred)}
    out = regression_metrics(torch.as_tensor(pred), torch.as_tensor(y))
    assert set(out) == {"mse", "rmse", "mae", "r2"}
    for key, value in ref.items():
        assert out[key] == pytest.approx(value, **TOL), key
        assert type(out[key]) is float
    json.dumps(out)
    assert mse(pred, y) == pytest.approx(ref["mse"], **TOL)  # numpy input
    assert rmse(pred, y) == pytest.approx(ref["rmse"], **TOL)
    assert mae(pred, y) == pytest.approx(ref["mae"], **TOL)
    assert r2_score(pred, y) == pytest.approx(ref["r2"], **TOL)


def test_float32_and_column_shapes():
    rng = np.random.default_rng(5)
    y = rng.normal(size=50)
    pred = (y + rng.normal(scale=0.3, size=50)).astype(np.float32)
    out = regression_metrics(torch.as_tensor(pred).reshape(-1, 1), torch.as_tensor(y))
    assert out["r2"] == pytest.approx(skm.r2_score(y, pred.astype(np.float64)), **TOL)


def test_r2_constant_target_follows_sklearn():
    y = np.full(5, 2.5)
    assert r2_score(y.copy(), y) == skm.r2_score(y, y) == 1.0
    off = y + np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    assert r2_score(off, y) == skm.r2_score(y, off) == 0.0


def test_r2_worse_than_mean_is_negative():
    y = np.array([1.0, 2.0, 3.0])
    pred = np.array([3.0, 2.0, 1.0])
    # SS_res = 4 + 0 + 4 = 8, SS_tot = 1 + 0 + 1 = 2 -> R² = 1 - 4 = -3
    assert r2_score(pred, y) == pytest.approx(-3.0, **TOL)
    assert r2_score(pred, y) == pytest.approx(skm.r2_score(y, pred), **TOL)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        mse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        regression_metrics([], [])
