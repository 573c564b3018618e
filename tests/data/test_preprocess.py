"""Standardizer and TargetScaler against scikit-learn's StandardScaler."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from nnrecipe.data import Standardizer, TargetScaler, load_table, split_indices
from nnrecipe.errors import UserError


def test_matches_sklearn_fitted_on_train_only():
    table = load_table("wine")
    train, val, test = split_indices(len(table.y), y=table.y, val_fraction=0.1,
                                     test_fraction=0.2, seed=0, stratify=True)
    ours = Standardizer.fit(table.X[train])
    reference = StandardScaler().fit(table.X[train])
    np.testing.assert_allclose(ours.mean, reference.mean_)
    np.testing.assert_allclose(ours.std, np.sqrt(reference.var_))  # population σ
    np.testing.assert_allclose(ours.transform(table.X[val]), reference.transform(table.X[val]))
    # val/test rows do not move μ: they differ from the full-data statistics
    assert not np.allclose(ours.mean, Standardizer.fit(table.X).mean)
    changed = table.X.copy()
    changed[np.concatenate([val, test])] += 1000.0
    np.testing.assert_array_equal(Standardizer.fit(changed[train]).mean, ours.mean)


def test_constant_column_centred_not_divided():
    X = np.array([[1.0, 0.1], [3.0, 0.1], [5.0, 0.1]])
    scaler = Standardizer.fit(X)
    assert scaler.std[1] == 0.0
    Z = scaler.transform(np.array([[3.0, 0.6]]))
    np.testing.assert_allclose(Z, [[0.0, 0.5]])
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X)


def test_round_trip_through_json():
    X = np.random.default_rng(0).normal(size=(20, 3))
    scaler = Standardizer.fit(X)
    again = Standardizer.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))


def test_wrong_feature_count():
    scaler = Standardizer.fit(np.ones((4, 3)))
    with pytest.raises(UserError, match="expected 3 features, got 2"):
        scaler.transform(np.ones((4, 2)))


def test_malformed_dict():
    with pytest.raises(UserError, match="malformed"):
        Standardizer.from_dict({"mean": [0.0]})
    with pytest.raises(UserError, match="shape"):
        Standardizer.from_dict({"mean": [0.0], "std": [1.0, 2.0]})


def test_target_scaler():
    y = load_table("diabetes").y
    scaler = TargetScaler.fit(y)
    assert scaler.mean == pytest.approx(y.mean()) and scaler.std == pytest.approx(y.std())
    z = scaler.transform(y)
    assert z.mean() == pytest.approx(0, abs=1e-12) and z.std() == pytest.approx(1)
    again = TargetScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_allclose(again.inverse_transform(z), y)
    constant = TargetScaler.fit(np.full(5, 2.5))
    assert constant.std == 0.0 and constant.transform(np.array([3.5])).tolist() == [1.0]
