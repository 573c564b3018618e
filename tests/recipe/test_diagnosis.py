"""diagnose_history: constructed histories for every verdict, history.csv parsing, and real runs."""

from __future__ import annotations

import json

import pytest

import nnrecipe
from nnrecipe.recipe.diagnosis import ADVICE, MIN_EPOCHS, diagnose_history, read_history_csv


def _rows(train_loss, val_loss, train_acc=None, val_acc=None):
    return [{"epoch": float(i + 1), "train_loss": train_loss[i], "val_loss": val_loss[i],
             "train_accuracy": None if train_acc is None else train_acc[i],
             "val_accuracy": None if val_acc is None else val_acc[i]} for i in range(len(train_loss))]


def test_overfitting_when_val_loss_rises_while_train_loss_falls():
    rows = _rows([1.0, 0.6, 0.4, 0.3, 0.2], [1.0, 0.7, 0.65, 0.7, 0.75], [0.6, 0.8, 0.86, 0.9, 0.93],
                 [0.6, 0.8, 0.85, 0.85, 0.86])
    out = diagnose_history(rows, task="classification")
    assert out["verdict"] == "overfitting" and out["advice"] == ADVICE["overfitting"]
    assert len(out["reasons"]) == 1 and "rose 15%" in out["reasons"][0] and "0.6500" in out["reasons"][0]


def test_a_val_rise_with_train_loss_rising_too_is_not_overfitting():
    rows = _rows([1.0, 0.6, 0.7, 0.8], [1.0, 0.6, 0.7, 0.8], [0.6, 0.8, 0.78, 0.75], [0.6, 0.8, 0.78, 0.75])
    assert diagnose_history(rows, task="classification")["verdict"] != "overfitting"


def test_overfitting_from_the_accuracy_gap_alone():
    rows = _rows([1.0, 0.5, 0.3], [1.0, 0.6, 0.5], [0.7, 0.9, 0.99], [0.7, 0.85, 0.87])
    out = diagnose_history(rows, task="classification")
    assert out["verdict"] == "overfitting" and "by 0.120" in out["reasons"][0]


def test_overfitting_from_the_regression_loss_gap():
    out = diagnose_history(_rows([0.5, 0.2, 0.1], [0.5, 0.3, 0.25]), task="regression")
    assert out["verdict"] == "overfitting" and "50%" in out["reasons"][0]


@pytest.mark.parametrize("task,rows", [
    ("classification", _rows([2.2, 2.0, 1.9], [2.2, 2.0, 1.95], [0.3, 0.4, 0.45], [0.3, 0.42, 0.44])),
    ("regression", _rows([0.95, 0.9, 0.85], [0.97, 0.93, 0.9])),
])
def test_underfitting_when_both_curves_are_poor_and_close(task, rows):
    out = diagnose_history(rows, task=task)
    assert out["verdict"] == "underfitting"
    assert out["advice"] == "train longer, use a bigger model, or reduce regularization"
    assert any(ch.isdigit() for ch in out["reasons"][0])


@pytest.mark.parametrize("task,rows", [
    ("classification", _rows([1.0, 0.5, 0.2], [1.0, 0.55, 0.3], [0.7, 0.9, 0.97], [0.7, 0.88, 0.95])),
    ("regression", _rows([0.6, 0.3, 0.2], [0.6, 0.35, 0.25])),
])
def test_healthy_when_both_improve_with_a_modest_gap(task, rows):
    out = diagnose_history(rows, task=task)
    assert out["verdict"] == "healthy" and out["advice"] == "both curves improving with a modest gap"
    json.dumps(out)


def test_one_epoch_is_insufficient_history():
    assert MIN_EPOCHS == 2
    out = diagnose_history(_rows([1.0], [1.0], [0.5], [0.5]), task="classification")
    assert out["verdict"] == "insufficient history" and "1 epoch" in out["reasons"][0]
    assert diagnose_history([], task="regression")["verdict"] == "insufficient history"


def test_rows_without_losses_are_ignored():
    rows = _rows([1.0, 0.5], [1.0, 0.55]) + [{"epoch": 3.0, "train_loss": None, "val_loss": float("nan")}]
    assert diagnose_history(rows, task="regression")["verdict"] == "healthy"


def test_read_history_csv_turns_empty_cells_into_none(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr\n"
                    "1,0.9,,0.95,,0.001\n2,0.8,,0.85,,0.001\n")
    rows = read_history_csv(path)
    assert rows[1] == {"epoch": 2.0, "train_loss": 0.8, "train_accuracy": None, "val_loss": 0.85,
                       "val_accuracy": None, "lr": 0.001}
    assert diagnose_history(rows, task="regression")["verdict"] == "underfitting"


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="task"):
        diagnose_history(_rows([1.0, 0.5], [1.0, 0.5]), task="ranking")


@pytest.mark.slow
def test_real_run_underfits_with_one_hidden_unit(tmp_path):
    run = nnrecipe.fit("digits", overrides=["model.hidden=[1]", "train.epochs=5", "optimizer.lr=1e-4"],
                       out=tmp_path / "under")
    out = diagnose_history(read_history_csv(run.dir / "history.csv"), task="classification")
    assert out["verdict"] == "underfitting", out


@pytest.mark.slow
def test_real_run_overfits_a_big_net_on_180_rows(tmp_path):
    # 10% of digits (≈ 180 rows) for training, no regularization of any kind, constant LR, no early
    # stop. Label smoothing must be off too: it caps the confidence, so the val loss would not rise.
    run = nnrecipe.fit("digits", overrides=[
        "model.hidden=[1024,1024]", "model.dropout=0", "optimizer.weight_decay=0",
        "regularization.label_smoothing=0", "train.patience=0", "train.epochs=60",
        "data.val_fraction=0.3", "data.test_fraction=0.6", "optimizer.lr=3e-3", "schedule.name=constant",
    ], out=tmp_path / "over")
    out = diagnose_history(read_history_csv(run.dir / "history.csv"), task="classification")
    assert out["verdict"] == "overfitting", out
    assert any("val loss rose" in reason for reason in out["reasons"])
