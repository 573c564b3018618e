"""End to end on small data: the run directory contract, predict/evaluate, reproducibility."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file

import nnrecipe
from nnrecipe.cli import main
from testutil import FAST, set_args, write_csv
from nnrecipe.data import load_table, split_indices, encode_labels

METRIC_KEYS = {"loss", "accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_micro",
               "recall_micro", "f1_micro", "precision_weighted", "recall_weighted", "f1_weighted", "ece",
               "mce", "top_2_accuracy", "roc_auc_macro", "roc_auc_weighted", "average_precision_macro",
               "confusion_matrix", "confusion_matrix_normalized", "per_class", "class_names"}


def test_run_directory_contract(blobs_csv, tmp_path):
    out = tmp_path / "run"
    assert main(["fit", "--data", str(blobs_csv), "--out", str(out), "--quiet", *set_args(FAST)]) == 0
    for name in ("config.yaml", "history.csv", "metrics.json", "model.safetensors", "model.json",
                 "plots/learning_curves.png", "plots/confusion_matrix.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "classification"
    assert set(metrics["test"]) == METRIC_KEYS and set(metrics["val"]) == METRIC_KEYS
    assert metrics["test"]["class_names"] == ["cat", "dog", "eel"]
    calibration_keys = {f"{m}_{w}" for m in ("nll", "ece", "mce", "reliability") for w in ("before", "after")}
    assert set(metrics["calibration"]) == {"temperature", "note"} | calibration_keys
    assert metrics["calibration"]["nll_after"] <= metrics["calibration"]["nll_before"] + 1e-9
    assert metrics["epochs_run"] == 3 and 1 <= metrics["best_epoch"] <= 3
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) >= {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                            "grad_norm", "seconds"}
    info = json.loads((out / "model.json").read_text())
    assert info["class_names"] == ["cat", "dog", "eel"] and info["feature_names"] == ["a", "b", "c"]
    assert info["temperature"] == metrics["calibration"]["temperature"]
    weights = load_file(str(out / "model.safetensors"))
    assert all(np.isfinite(w.numpy()).all() for w in weights.values())
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"] == 3


def test_standardization_uses_train_split_only(blobs_csv, tmp_path):
    run = nnrecipe.fit(str(blobs_csv), overrides=FAST, out=tmp_path / "run")
    table = load_table(str(blobs_csv))
    y, _ = encode_labels(table.y)
    train, _, _ = split_indices(len(y), y=y, val_fraction=0.1, test_fraction=0.2, seed=0, stratify=True)
    mean = np.asarray(run.info["transform"]["standardizer"]["mean"])
    np.testing.assert_allclose(mean, table.X[train].mean(0), rtol=1e-12)
    assert not np.allclose(mean, table.X.mean(0), rtol=1e-6)


def test_predict_and_evaluate(blobs_csv, tmp_path):
    out = tmp_path / "run"
    run = nnrecipe.fit(str(blobs_csv), overrides=FAST + ["train.epochs=30"], out=out)
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--data", str(blobs_csv), "--out", str(preds)]) == 0
    rows = list(csv.DictReader(preds.open()))
    source = list(csv.DictReader(blobs_csv.open()))
    assert len(rows) == len(source)
    assert list(rows[0]) == ["prediction", "prob_cat", "prob_dog", "prob_eel"]
    for row in rows:
        assert math.isclose(sum(float(row[f"prob_{c}"]) for c in ("cat", "dog", "eel")), 1.0, abs_tol=1e-5)
    agree = np.mean([r["prediction"] == s["animal"] for r, s in zip(rows, source)])
    assert agree > 0.9  # well-separated clusters
    # rows in input order: the API gives the same labels for the same rows
    X = np.array([[float(s[k]) for k in "abc"] for s in source])
    assert [r["prediction"] for r in rows] == list(run.predict(X))
    # columns in another order (and without the target) are matched by name
    shuffled = write_csv(tmp_path / "cba.csv", ["c", "b", "a"], [[s["c"], s["b"], s["a"]] for s in source])
    assert nnrecipe.predict(nnrecipe.load(out), str(shuffled)) == preds.read_text()
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(out), "--data", str(blobs_csv), "--out", str(report)]) == 0
    metrics = json.loads(report.read_text())
    assert set(metrics) == METRIC_KEYS
    assert metrics["accuracy"] == pytest.approx(agree)


def test_same_seed_same_metrics(blobs_csv, tmp_path):
    a = nnrecipe.fit(str(blobs_csv), overrides=FAST, seed=3, out=tmp_path / "a").metrics
    b = nnrecipe.fit(str(blobs_csv), overrides=FAST, seed=3, out=tmp_path / "b").metrics
    c = nnrecipe.fit(str(blobs_csv), overrides=FAST, seed=4, out=tmp_path / "c").metrics
    for m in (a, b, c):
        m.pop("train_seconds")
    assert a == b
    assert a != c


def test_config_yaml_reproduces_run(blobs_csv, tmp_path):
    first = nnrecipe.fit(str(blobs_csv), overrides=FAST + ["optimizer.name=sgd"], out=tmp_path / "a")
    again = nnrecipe.fit(config=first.dir / "config.yaml", out=tmp_path / "b")
    assert again.config == first.config
    assert again.metrics["test"] == first.metrics["test"]


def test_regression_on_diabetes(tmp_path):
    run = nnrecipe.fit("diabetes", overrides=["train.epochs=40", "model.hidden=[32]", "optimizer.lr=0.01"], out=tmp_path / "r")
    assert run.task == "regression"
    assert set(run.metrics["test"]) == {"mse", "rmse", "mae", "r2"}
    assert run.metrics["test"]["r2"] > 0.2  # a linear model gets ~0.45 on this split
    assert math.isclose(run.metrics["test"]["rmse"] ** 2, run.metrics["test"]["mse"], rel_tol=1e-9)
    assert not (run.dir / "plots" / "confusion_matrix.png").exists()
    assert run.metrics["calibration"] is None


def test_divergence_is_caught_and_last_good_weights_kept(blobs_csv, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["fit", "--data", str(blobs_csv), "--out", str(out), "--quiet",
                 *set_args(["optimizer.name=sgd", "optimizer.lr=1e12", "clip.name=none",
                            "schedule.name=constant", "schedule.warmup.fraction=0", "train.epochs=5"])])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("error: training diverged") and "Traceback" not in err
    weights = load_file(str(out / "model.safetensors"))
    assert all(np.isfinite(w.numpy()).all() for w in weights.values())
    assert json.loads((out / "metrics.json").read_text())["status"].startswith("diverged")


def test_existing_out_dir_is_refused(blobs_csv, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(nnrecipe.UserError):
        nnrecipe.fit(str(blobs_csv), overrides=FAST, out=out)
    assert (out / "keep.txt").read_text() == "mine"


def test_test_data_file(blobs_csv, tmp_path):
    run = nnrecipe.fit(str(blobs_csv), overrides=FAST, test_data=str(blobs_csv), out=tmp_path / "run")
    assert sum(map(sum, run.metrics["test"]["confusion_matrix"])) == 120
