"""Curve diagnosis on constructed histories (both verdicts of each rule) and on real runs."""

import pytest

import nnrecipe
from nnrecipe.recipe.diagnosis import diagnose_history, read_history_csv


def _rows(train_loss, val_loss, train_acc=None, val_acc=None):
    n = len(train_loss)
    return [{"epoch": i + 1, "train_loss": train_loss[i], "val_loss": val_loss[i],
             "train_accuracy": None if train_acc is None else train_acc[i],
             "val_accuracy": None if val_acc is None else val_acc[i]} for i in range(n)]


def test_overfitting_from_rising_val_loss():
    rows = _rows([1.0, 0.5, 0.2, 0.05], [1.0, 0.6, 0.7, 0.9], [0.6, 0.85, 0.95, 1.0], [0.6, 0.8, 0.8, 0.8])
    out = diagnose_history(rows, task="classification")
    assert out["verdict"] == "overfitting"
    assert any("rose" in r for r in out["reasons"]) and any("exceeds" in r for r in out["reasons"])


def test_underfitting_when_both_poor_and_close():
    rows = _rows([2.2, 2.0, 1.9], [2.2, 2.0, 1.95], [0.3, 0.4, 0.45], [0.3, 0.42, 0.44])
    assert diagnose_history(rows, task="classification")["verdict"] == "underfitting"


def test_healthy_when_both_improve_with_small_gap():
    rows = _rows([1.0, 0.5, 0.2], [1.0, 0.55, 0.3], [0.7, 0.9, 0.97], [0.7, 0.88, 0.95])
    out = diagnose_history(rows, task="classification")
    assert out["verdict"] == "healthy" and "0.970/0.950" in out["reasons"][0]


def test_regression_rules():
    assert diagnose_history(_rows([0.9, 0.85, 0.8], [0.95, 0.9, 0.85]), task="regression")["verdict"] == "underfitting"
    assert diagnose_history(_rows([0.5, 0.2, 0.05], [0.5, 0.4, 0.45]), task="regression")["verdict"] == "overfitting"
    assert diagnose_history(_rows([0.5, 0.3, 0.2], [0.5, 0.35, 0.25]), task="regression")["verdict"] == "healthy"


def test_one_epoch_is_insufficient():
    assert diagnose_history(_rows([1.0], [1.0]), task="regression")["verdict"] == "insufficient history"


@pytest.mark.slow
def test_real_runs_provoke_underfit_and_overfit(tmp_path):
    under = nnrecipe.fit("digits", overrides=["model.hidden=[1]", "train.epochs=5", "optimizer.lr=1e-4",
                                              "model.dropout=0"], out=tmp_path / "under")
    assert under.metrics["diagnosis"]["verdict"] == "underfitting"
    over = nnrecipe.fit("digits", overrides=["model.hidden=[1024,1024]", "model.dropout=0", "optimizer.weight_decay=0",
                                             "regularization.label_smoothing=0", "train.patience=0",
                                             "train.epochs=40", "data.val_fraction=0.3", "data.test_fraction=0.6",
                                             "optimizer.lr=3e-3", "schedule.name=constant"], out=tmp_path / "over")
    assert over.metrics["diagnosis"]["verdict"] == "overfitting", over.metrics["diagnosis"]
    rows = read_history_csv(over.dir / "history.csv")
    assert diagnose_history(rows, task="classification") == over.metrics["diagnosis"]
