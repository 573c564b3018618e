"""nnrecipe.sklearn: NNClassifier / NNRegressor as scikit-learn estimators."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from torch import nn

import nnrecipe
from nnrecipe.sklearn import EXPECTED_FAILED_CHECKS, NNClassifier, NNRegressor

QUICK = {"hidden": (16,), "epochs": 3}
# enough training for check_estimator's score checks (accuracy > 0.83, R² > 0.5 on its small sets)
CHECKED = {"hidden": (32,), "epochs": 30, "lr": 1e-2}


def test_expected_failures_are_few_and_explained():
    assert len(EXPECTED_FAILED_CHECKS) <= 5 and all(len(why) > 20 for why in EXPECTED_FAILED_CHECKS.values())


@pytest.mark.slow
@pytest.mark.parametrize("estimator", [NNClassifier(**CHECKED), NNRegressor(**CHECKED)], ids=["classifier", "regressor"])
def test_check_estimator(estimator):
    check_estimator(estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS)


def test_labels_come_back_in_their_own_type_and_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NNClassifier(**QUICK).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"] and clf.n_features_in_ == 4
    assert set(clf.predict(X)) <= set(names)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(1), 1)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[clf.decision_function(X).argmax(1)])
    ints = NNClassifier(**QUICK).fit(X, y + 10)
    assert ints.predict(X[:5]).dtype.kind == "i" and list(ints.classes_) == [10, 11, 12]
    assert list(tmp_path.iterdir()) == []  # run_dir=None: nothing left behind


def test_digits_accuracy_pipeline_and_grid_search():
    X, y = load_digits(return_X_y=True)
    scores = cross_val_score(NNClassifier(epochs=20), X, y, cv=3)
    assert scores.mean() >= 0.9  # a plain MLP on digits: 0.95 measured
    grid = GridSearchCV(make_pipeline(StandardScaler(), NNClassifier(hidden=(32,), epochs=3)),
                        {"nnclassifier__lr": [1e-3, 1e-2]}, cv=2).fit(X[:400], y[:400])
    assert grid.best_params_["nnclassifier__lr"] in (1e-3, 1e-2) and 0 <= grid.best_score_ <= 1
    assert clone(grid.best_estimator_).get_params()["nnclassifier__lr"] == grid.best_params_["nnclassifier__lr"]


def test_regressor_and_a_user_module_and_run_dir(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([1.0, -1.0, 2.0, 0.5]) + 3.0
    reg = NNRegressor(hidden=(32,), epochs=40, lr=1e-2, weight_decay=0.0).fit(X, y)
    assert reg.score(X, y) > 0.9  # R²
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    before = net[0].weight.detach().clone()
    clf = NNClassifier(model=net, epochs=3, run_dir=tmp_path / "run").fit(X, (y > 3).astype(int))
    assert torch.equal(net[0].weight, before)  # the estimator trains a copy: refits start the same
    # nn.Sequential(...) records no constructor kwargs: its weights load into an instance passed in
    assert nnrecipe.load(tmp_path / "run", model=copy.deepcopy(net)).info["architecture"]["name"] == "custom"
    assert (tmp_path / "run" / "report.html").is_file()
    assert clf.predict(X[:4]).shape == (4,)
