"""predictions.csv: the test split's per-row outputs, the input of the report's PR/ROC/residual plots."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import nnrecipe
from nnrecipe.metrics import accuracy, rmse
from testutil import FAST


def _rows(path):
    with path.open() as fh:
        return list(csv.reader(fh))


def test_classification_predictions_match_metrics(blobs_csv, tmp_path):
    run = nnrecipe.fit(str(blobs_csv), overrides=FAST, out=tmp_path / "run")
    rows = _rows(run.dir / "predictions.csv")
    assert rows[0] == ["y_true"] + [f"prob_{c}" for c in run.class_names]
    y = np.array([int(r[0]) for r in rows[1:]])
    probs = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert len(y) == sum(run.metrics["test"]["confusion_matrix"][0]) + sum(
        sum(r) for r in run.metrics["test"]["confusion_matrix"][1:])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert accuracy(y, probs.argmax(1)) == pytest.approx(run.metrics["test"]["accuracy"])


def test_regression_predictions_match_metrics(tmp_path):
    run = nnrecipe.fit("diabetes", overrides=FAST, out=tmp_path / "run")
    rows = _rows(run.dir / "predictions.csv")
    assert rows[0] == ["y_true", "prediction"]
    y, pred = np.array([[float(v) for v in r] for r in rows[1:]]).T
    assert rmse(pred, y) == pytest.approx(run.metrics["test"]["rmse"], rel=1e-5)
