"""Plots of a run directory: the right files, valid PNGs, regression and missing columns handled."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nnrecipe.errors import UserError
from nnrecipe.report.plots import plot_confusion_matrix, plot_learning_curves, plot_run, read_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "grad_norm",
           "clip_fraction", "seconds"]


def _write_history(path: Path, *, classification: bool, epochs: int = 6) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for e in range(1, epochs + 1):
            writer.writerow({
                "epoch": e,
                "train_loss": 1.0 / e,
                "train_accuracy": 0.5 + 0.05 * e if classification else "",
                "val_loss": 1.0 / e + 0.02 * (e - 4) ** 2,  # best at epoch 5 (0.22)
                "val_accuracy": 0.5 + 0.04 * e if classification else "",
                "lr": 1e-3 * (1 - e / (epochs + 1)),
                "grad_norm": 10.0 / e,
                "clip_fraction": 0.1,
                "seconds": 0.5,
            })


def _classification_run(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_history(run_dir / "history.csv", classification=True)
    (run_dir / "metrics.json").write_text(json.dumps({
        "task": "classification",
        "test": {"accuracy": 0.8, "confusion_matrix": [[5, 1, 0], [0, 6, 2], [1, 0, 7]],
                 "class_names": ["setosa", "versicolor", "virginica"]},
    }))
    return run_dir


def _regression_run(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_history(run_dir / "history.csv", classification=False)
    (run_dir / "metrics.json").write_text(json.dumps({"task": "regression", "test": {"rmse": 1.5, "r2": 0.7}}))
    return run_dir


def _assert_png(path: Path, min_bytes: int = 5_000) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes, len(data)


def test_classification_run_writes_both_plots(tmp_path):
    run = _classification_run(tmp_path / "run")
    written = plot_run(run)
    assert written == [run / "plots" / "learning_curves.png", run / "plots" / "confusion_matrix.png"]
    for path in written:
        _assert_png(path)


def test_regression_run_writes_learning_curves_only(tmp_path):
    run = _regression_run(tmp_path / "run")
    written = plot_run(run)
    assert written == [run / "plots" / "learning_curves.png"]
    _assert_png(written[0])
    assert not (run / "plots" / "confusion_matrix.png").exists()


def test_empty_accuracy_columns_read_as_nan(tmp_path):
    path = tmp_path / "history.csv"
    _write_history(path, classification=False, epochs=3)
    history = read_history(path)
    assert list(history["epoch"]) == [1.0, 2.0, 3.0]
    assert all(v != v for v in history["train_accuracy"])  # NaN
    plot_learning_curves(path, tmp_path / "out" / "curves.png")
    _assert_png(tmp_path / "out" / "curves.png")


def test_regression_figure_differs_in_layout(tmp_path):
    """Three panels (no accuracy) for regression, four for classification: different image sizes."""
    from PIL import Image  # matplotlib depends on pillow

    cls_path, reg_path = tmp_path / "cls.csv", tmp_path / "reg.csv"
    _write_history(cls_path, classification=True)
    _write_history(reg_path, classification=False)
    plot_learning_curves(cls_path, tmp_path / "cls.png")
    plot_learning_curves(reg_path, tmp_path / "reg.png")
    w_cls, h_cls = Image.open(tmp_path / "cls.png").size
    w_reg, h_reg = Image.open(tmp_path / "reg.png").size
    assert h_cls > h_reg and w_reg > w_cls  # 2×2 grid vs 1×3 row


def test_single_epoch_and_missing_grad_norm(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,grad_norm,clip_fraction,seconds\n"
                    "1,0.9,0.6,1.0,0.55,0.001,,,0.2\n")
    plot_learning_curves(path, tmp_path / "one.png")
    _assert_png(tmp_path / "one.png")


def test_metrics_json_missing_writes_learning_curves(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _write_history(run / "history.csv", classification=True)
    assert plot_run(run) == [run / "plots" / "learning_curves.png"]


def test_missing_history_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="history.csv"):
        plot_run(tmp_path)


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix_png(tmp_path, normalize):
    out = tmp_path / f"cm_{normalize}.png"
    plot_confusion_matrix([[3, 1], [0, 0]], ["neg", "pos"], out, normalize=normalize)  # an empty true row
    _assert_png(out)


def test_confusion_matrix_many_classes(tmp_path):
    k = 50
    cm = [[10 if i == j else 1 for j in range(k)] for i in range(k)]
    out = tmp_path / "cm50.png"
    plot_confusion_matrix(cm, [f"c{i}" for i in range(k)], out)
    _assert_png(out)


def test_confusion_matrix_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix([[1, 2, 3], [4, 5, 6]], ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="class names"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "x.png")
