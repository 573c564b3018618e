"""Standardization of features and regression targets, fitted on the training rows only.

    z = (x − μ) / σ        μ = mean over training rows, σ = population std (ddof = 0)

per feature column (`Standardizer`) or for the scalar regression target (`TargetScaler`). A
constant column has σ = 0 and is only centred (z = x − μ) rather than divided by zero. Fitting on
the training rows alone keeps validation and test statistics out of the model. The inverse is
x = z·σ + μ (z + μ where σ = 0). Both serialize to JSON-ready dicts so a saved run reproduces the
exact transform at predict time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnrecipe.errors import UserError

_REFIT = "re-run `nnrecipe fit` to write it again"


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(axis=0)
    std = values.std(axis=0)  # ddof=0, as sklearn's StandardScaler
    # A constant column's computed σ can be ~1e-17 rather than 0 from rounding in the mean;
    # pin it to exactly 0 so it is centred, not blown up.
    std = np.where(np.ptp(values, axis=0) == 0, 0.0, std)
    return mean, std


def _safe(std: np.ndarray) -> np.ndarray:
    return np.where(std > 0, std, 1.0)


@dataclass
class Standardizer:
    mean: np.ndarray  # μ per feature [D]
    std: np.ndarray  # population σ per feature [D]; 0 for constant columns

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"fit needs a non-empty 2-D array, got shape {X.shape}")
        return cls(*_moments(X))

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        got = X.shape[-1] if X.ndim else 0
        if X.ndim != 2 or got != len(self.mean):
            raise UserError(f"expected {len(self.mean)} features, got {got}"
                            + ("" if X.ndim == 2 else f" (array of shape {X.shape})"),
                            "input to the fitted standardizer",
                            "give the same feature columns, in the same order, as at training")
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(x − μ) / σ per column; x − μ where σ = 0."""
        return (self._check(X) - self.mean) / _safe(self.std)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """z · σ + μ per column; z + μ where σ = 0."""
        return self._check(Z) * _safe(self.std) + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Standardizer:
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            std = np.asarray(d["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"saved standardizer is malformed ({type(e).__name__}: {e})",
                            "the run directory", _REFIT) from None
        if mean.ndim != 1 or mean.shape != std.shape:
            raise UserError(f"saved standardizer has mean of shape {mean.shape} and std of shape "
                            f"{std.shape}", "the run directory", _REFIT)
        return cls(mean=mean, std=std)


@dataclass
class TargetScaler:
    mean: float  # μ of the training targets
    std: float  # population σ; 0 for a constant target

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScaler:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(y) == 0:
            raise ValueError("fit needs at least one target value")
        mean, std = _moments(y)
        return cls(mean=float(mean), std=float(std))

    def transform(self, y: np.ndarray) -> np.ndarray:
        """(y − μ) / σ; y − μ where σ = 0."""
        return (np.asarray(y, dtype=np.float64) - self.mean) / (self.std or 1.0)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """z · σ + μ; z + μ where σ = 0."""
        return np.asarray(z, dtype=np.float64) * (self.std or 1.0) + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> TargetScaler:
        try:
            return cls(mean=float(d["mean"]), std=float(d["std"]))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"saved target scaler is malformed ({type(e).__name__}: {e})",
                            "the run directory", _REFIT) from None
