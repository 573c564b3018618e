"""`fit --ensemble K`: members on one split, averaged calibrated probabilities, loadable and predictable."""

import csv

import numpy as np

import nnrecipe
from nnrecipe.cli import main
from testutil import FAST, set_args


def test_ensemble_run_averages_members(blobs_csv, tmp_path):
    out = tmp_path / "ens"
    assert main(["fit", "--data", str(blobs_csv), "--ensemble", "2", "--out", str(out), "--quiet",
                 *set_args(FAST)]) == 0
    run = nnrecipe.load(out)
    assert len(run.members) == 2 and run.model is None
    assert [m["seed"] for m in run.metrics["members"]] == [0, 1]
    assert (out / "members" / "0" / "model.safetensors").is_file() and (out / "plots" / "confusion_matrix.png").is_file()
    X = np.loadtxt(blobs_csv, delimiter=",", skiprows=1, usecols=(0, 1, 2))
    mean = (run.members[0].predict_proba(X) + run.members[1].predict_proba(X)) / 2
    np.testing.assert_allclose(run.predict_proba(X), mean, rtol=1e-12)
    assert list(run.predict(X)) == list(np.asarray(run.class_names)[mean.argmax(1)])
    # the members share the split: identical test confusion-matrix totals
    totals = {sum(map(sum, m["test"]["confusion_matrix"])) for m in run.metrics["members"]}
    assert len(totals) == 1
    preds = tmp_path / "p.csv"
    assert main(["predict", str(out), "--data", str(blobs_csv), "--out", str(preds)]) == 0
    rows = list(csv.DictReader(preds.open()))
    assert [r["prediction"] for r in rows] == list(run.predict(X))


def test_regression_ensemble_averages_predictions(tmp_path):
    run = nnrecipe.fit("diabetes", overrides=["train.epochs=5", "model.hidden=[16]", "train.ensemble=2"],
                       out=tmp_path / "r")
    from sklearn.datasets import load_diabetes
    X = load_diabetes().data[:10]
    np.testing.assert_allclose(run.predict(X), (run.members[0].predict(X) + run.members[1].predict(X)) / 2)
    assert set(run.metrics["test"]) == {"mse", "rmse", "mae", "r2"}
