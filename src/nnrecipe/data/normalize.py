"""Per-channel image normalization, fitted on the training images only.

    z[n, c, y, x] = (x[n, c, y, x] − μ_c) / σ_c

    μ_c = mean of channel c over all training images and pixel positions (N·H·W values)
    σ_c = its population std (ddof = 0)

as for ImageNet's well-known per-channel mean/std, but computed from the user's training split so
that validation and test pixels stay out of the model. A constant channel (σ_c = 0) is only
centred, as `nnrecipe.data.preprocess.Standardizer` does for a constant column. Rows are flat
[N, C·H·W] in C, H, W order (`nnrecipe.data.sources.Table`), so only C is needed at transform
time; the statistics serialize to a JSON-ready dict stored with the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnrecipe.errors import UserError

_REFIT = "re-run `nnrecipe fit` to write it again"


def _safe(std: np.ndarray) -> np.ndarray:
    return np.where(std > 0, std, 1.0)


@dataclass
class ChannelNormalizer:
    mean: np.ndarray  # μ per channel [C]
    std: np.ndarray  # population σ per channel [C]; 0 for a constant channel

    @classmethod
    def fit(cls, X: np.ndarray, image_shape: tuple[int, int, int]) -> ChannelNormalizer:
        X = np.asarray(X, dtype=np.float64)
        c, h, w = image_shape
        if X.ndim != 2 or len(X) == 0 or X.shape[1] != c * h * w:
            raise ValueError(f"fit needs a non-empty [N, {c * h * w}] array for images "
                             f"{c}×{h}×{w}, got shape {X.shape}")
        pixels = X.reshape(len(X), c, h * w)  # a view: statistics over axes N and H·W
        mean = pixels.mean(axis=(0, 2))
        std = pixels.std(axis=(0, 2))  # ddof=0
        # A constant channel's σ may come out ~1e-17 from rounding in the mean; pin it to 0.
        std = np.where(pixels.max(axis=(0, 2)) == pixels.min(axis=(0, 2)), 0.0, std)
        return cls(mean=mean, std=std)

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        c = len(self.mean)
        got = X.shape[-1] if X.ndim else 0
        if X.ndim != 2 or got == 0 or got % c:
            raise UserError(f"expected flat images with {c} channel(s), got "
                            + (f"{got} values per row" if X.ndim == 2 else f"shape {X.shape}"),
                            "input to the fitted channel normalizer",
                            "give images with the same channels as at training")
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(x − μ_c) / σ_c for every pixel of channel c; x − μ_c where σ_c = 0 (flat rows)."""
        X = self._check(X)
        c = len(self.mean)
        Z = (X.reshape(len(X), c, -1) - self.mean[:, None]) / _safe(self.std)[:, None]
        return Z.reshape(X.shape)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """z · σ_c + μ_c per channel; z + μ_c where σ_c = 0."""
        Z = self._check(Z)
        c = len(self.mean)
        X = Z.reshape(len(Z), c, -1) * _safe(self.std)[:, None] + self.mean[:, None]
        return X.reshape(Z.shape)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> ChannelNormalizer:
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            std = np.asarray(d["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"saved channel normalizer is malformed ({type(e).__name__}: {e})",
                            "the run directory", _REFIT) from None
        if mean.ndim != 1 or len(mean) == 0 or mean.shape != std.shape:
            raise UserError(f"saved channel normalizer has mean of shape {mean.shape} and std of "
                            f"shape {std.shape}", "the run directory", _REFIT)
        return cls(mean=mean, std=std)
