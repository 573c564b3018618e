"""scikit-learn estimators: `NNClassifier` and `NNRegressor`, the whole `nnrecipe.fit` recipe
behind ``fit(X, y)`` / ``predict(X)``, so that nnrecipe models drop into ``Pipeline``,
``GridSearchCV``, ``cross_val_score`` and ``clone``.

    from nnrecipe.sklearn import NNClassifier
    clf = NNClassifier(epochs=30).fit(X_train, y_train)
    clf.predict(X_test), clf.predict_proba(X_test), clf.score(X_test, y_test)

How a fit works. ``__init__`` only stores its arguments (scikit-learn's convention: `get_params`,
`set_params` and `clone` see them unchanged). `fit` validates X and y
(`sklearn.utils.validation`) and calls `nnrecipe.fit((X, y), ...)` on the arrays in memory, with the named hyperparameters as
config (they win over the same keys in ``config``, a nested dict of any other config overrides,
e.g. ``{"schedule": {"name": "constant"}}``). The recipe keeps its stratified validation split
(``validation_fraction`` of the rows, default 0.1: early stopping with ``patience`` and, for the
classifier, temperature scaling use it); every other row trains the model. nnrecipe's own test
split is not taken: the training rows are passed as ``test=``, so the run's "test"
metrics in metrics.json are on the training rows (the estimator is scored by whoever calls
`score` on held-out data). The returned `nnrecipe.run.Run` stays on the estimator as ``run_``
(model in memory); `predict` applies its stored standardization to raw rows.

Disk. With ``run_dir=None`` (default) the run is written inside the temporary directory and
deleted with it, without plots/ and report.html (`nnrecipe.rundir.plots_and_report`; they cost
most of a small fit's time): nothing stays on disk, e.g. in a GridSearchCV. With ``run_dir=PATH``
the full run directory (plots and report included) is written there and `nnrecipe.load` reads it;
PATH must not exist or be empty, so give each fit its own. Its config.yaml names the data
``memory:tuple``: the arrays are not stored.

Labels. ``classes_`` are the sorted unique labels in their original dtype; the model sees their
indices 0..K−1, and predictions map back through ``classes_`` (integer labels come back as
integers, strings as strings). `decision_function` is the logits divided by the temperature
(1 with ``calibrate=False``): shape [N, K], or [N] for two classes (z₁ − z₀, positive means
``classes_[1]``), as scikit-learn expects.

``model`` names a built-in model (``"mlp"``, the only one that fits plain feature vectors;
``hidden`` and ``dropout`` are the MLP's) or is the user's own ``nn.Module`` taking [N, D] rows
(deep-copied at each `fit`, so a refit or a `clone` starts from the same weights). Runs are deterministic on the CPU for a given ``seed``.
"""

from __future__ import annotations

import tempfile
import copy
from pathlib import Path

import numpy as np
from torch import nn
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # older scikit-learn: the estimator method it replaced
    def validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)

from nnrecipe.driver import fit as nn_fit
from nnrecipe.rundir import plots_and_report

__all__ = ["NNClassifier", "NNRegressor", "EXPECTED_FAILED_CHECKS"]

# `sklearn.utils.estimator_checks.check_estimator(est, expected_failed_checks=...)`: the checks
# these estimators fail on purpose, with the reason (tests/test_sklearn.py runs the rest).
# One dict serves both estimators (a check listed here that passes is simply reported as passed).
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_methods_subset_invariance":
        "the network computes in float32 and the BLAS kernel (so the rounding) depends on the batch "
        "size: outputs for a subset of rows differ from the full batch's in the 7th significant "
        "digit (relative ~3e-7), above the check's rtol=1e-7",
}


def _merge(base: dict, top: dict) -> dict:
    """Nested dict merge; `top` wins."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class _NNEstimator(BaseEstimator):
    """What `NNClassifier` and `NNRegressor` share: the hyperparameters and the call of `nnrecipe.fit`."""

    _task: str  # "classification" or "regression"

    def __init__(self, model="mlp", *, hidden=(256, 128), epochs=60, lr=None, batch_size=64,
                 weight_decay=0.05, dropout=0.1, patience=30, validation_fraction=0.1, seed=0,
                 config=None, run_dir=None):
        self.model = model
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.config = config
        self.run_dir = run_dir

    def _config(self, val_fraction: float) -> dict:
        """`config` with the named hyperparameters on top (lr=None: the optimizer's default)."""
        named = {"data": {"task": self._task, "val_fraction": val_fraction},
                 "model": {"hidden": list(self.hidden), "dropout": self.dropout},
                 "optimizer": {"weight_decay": self.weight_decay},
                 "train": {"batch_size": self.batch_size, "patience": self.patience}}
        if self.lr is not None:
            named["optimizer"]["lr"] = self.lr
        return _merge(self.config or {}, named)

    def _train(self, X: np.ndarray, y: np.ndarray, val_fraction: float | None = None):
        """`nnrecipe.fit` on the arrays in memory; the `Run`, with its model in memory."""
        model = copy.deepcopy(self.model) if isinstance(self.model, nn.Module) else self.model  # refits start fresh
        with tempfile.TemporaryDirectory(prefix="nnrecipe-sklearn-") as tmp:
            out = self.run_dir if self.run_dir is not None else Path(tmp) / "run"
            with plots_and_report(self.run_dir is not None):
                run = nn_fit((X, y), test=(X, y), config=self._config(val_fraction or self.validation_fraction),
                             task=self._task, epochs=self.epochs, seed=self.seed, model=model, out=out)
        if self.run_dir is None:
            run.dir = None  # deleted with the temporary directory
        return run

    def _validate_rows(self, X) -> np.ndarray:
        check_is_fitted(self, "run_")
        return validate_data(self, X, reset=False, dtype=np.float64)


class NNClassifier(ClassifierMixin, _NNEstimator):
    """A neural-network classifier trained by the nnrecipe recipe (module docstring).

    ``calibrate``: temperature scaling on the validation split (`predict_proba` and
    `decision_function` are calibrated; `predict` is unchanged by it).
    Fitted attributes: ``classes_``, ``n_features_in_`` (``feature_names_in_`` for DataFrames),
    ``run_`` (the `nnrecipe.run.Run`).
    """

    _task = "classification"

    def __init__(self, model="mlp", *, hidden=(256, 128), epochs=60, lr=None, batch_size=64,
                 weight_decay=0.05, dropout=0.1, patience=30, validation_fraction=0.1, calibrate=True,
                 seed=0, config=None, run_dir=None):
        super().__init__(model, hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size,
                         weight_decay=weight_decay, dropout=dropout, patience=patience,
                         validation_fraction=validation_fraction, seed=seed, config=config, run_dir=run_dir)
        self.calibrate = calibrate

    def _config(self, val_fraction: float) -> dict:
        return _merge(super()._config(val_fraction), {"calibration": {"temperature": bool(self.calibrate)}})

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes in y, got 1 class "
                             f"({self.classes_[0]!r})")
        codes = codes.astype(np.int64)
        # small data: the stratified validation split needs 2 rows of each class (a class with one
        # row is given a copy) and at least one validation row per class
        single = np.flatnonzero(np.bincount(codes, minlength=k) == 1)
        if len(single):
            rows = np.concatenate([np.arange(len(codes)), np.flatnonzero(np.isin(codes, single))])
            X, codes = X[rows], codes[rows]
        val_fraction = max(self.validation_fraction, (k - 0.5) / len(codes))  # ceil(...·n) = k rows
        run = self._train(X, codes, val_fraction)
        # the run's class names are the codes as text; column j of its output is class int(name_j)
        self._columns_ = np.asarray([int(name) for name in run.class_names])
        self.run_ = run
        return self

    def _in_class_order(self, values: np.ndarray) -> np.ndarray:
        ordered = np.empty_like(values)
        ordered[:, self._columns_] = values
        return ordered

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities [N, K], columns in the order of ``classes_`` (calibrated)."""
        X = self._validate_rows(X)
        return self._in_class_order(self.run_.predict_proba(X))

    def predict_log_proba(self, X) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X) -> np.ndarray:
        """Logits / temperature: [N, K], or [N] (z₁ − z₀) for two classes."""
        X = self._validate_rows(X)
        z = self._in_class_order(self.run_.logits(X).double().numpy() / self.run_.temperature)
        return z[:, 1] - z[:, 0] if len(self.classes_) == 2 else z

    def predict(self, X) -> np.ndarray:
        """The most probable label of each row, from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


class NNRegressor(RegressorMixin, _NNEstimator):
    """A neural-network regressor (one target) trained by the nnrecipe recipe (module docstring);
    the target is standardized for training and predictions come back in its units.
    Fitted attributes: ``n_features_in_`` (``feature_names_in_`` for DataFrames), ``run_``."""

    _task = "regression"

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        self.run_ = self._train(X, y.astype(np.float64))
        return self

    def predict(self, X) -> np.ndarray:
        X = self._validate_rows(X)
        return np.asarray(self.run_.predict(X), dtype=np.float64)
