"""The input transform of a run: raw rows → model input, fitted on the training split only.

    vectors: z = (x − μ)/σ per feature (`Standardizer`)            → [whiten: PCA | ZCA]
    images:  z = (x − μ_c)/σ_c per channel c (`ChannelNormalizer`) → [whiten: ZCA | patch ZCA]
             → reshaped to [N, C, H, W]

Rows arrive flat ([N, C·H·W] for images, as `nnrecipe.data.sources.Table` holds them), so split
and indexing code is shared by both kinds. The small statistics go to model.json
(`to_json`); whitening matrices, which are D×D, go to ``preprocess.safetensors`` (`arrays`).
PCA whitening rotates pixels into components, so an image model cannot use it (ZCA keeps the
image layout). Patch ZCA turns C channels into C·k² whitened channels (a fixed first layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnrecipe.data.preprocess import Standardizer
from nnrecipe.errors import UserError

from nnrecipe.data.normalize import ChannelNormalizer
from nnrecipe.data.whiten import Whitener, apply_patch_zca, patch_zca_filters


@dataclass
class InputTransform:
    standardizer: Standardizer | None = None  # vectors
    channel: ChannelNormalizer | None = None  # images
    whitener: Whitener | None = None
    patch: tuple[np.ndarray, np.ndarray] | None = None  # patch ZCA conv (weight, bias)
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of the raw images; None: vectors
    whiten_eps: float = 1e-2
    raw_shape: tuple[int, ...] | None = None  # other N-D inputs: no statistics, reshaped to [N, *raw_shape]

    @property
    def n_features(self) -> int:
        if self.raw_shape is not None:
            return int(np.prod(self.raw_shape))
        if self.image_shape is not None:
            return int(np.prod(self.image_shape))
        return len(self.standardizer.mean)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one model input (without the batch dimension)."""
        if self.raw_shape is not None:
            return self.raw_shape
        if self.image_shape is None:
            return (self.n_features,)
        c, h, w = self.image_shape
        if self.patch is not None:
            c = self.patch[0].shape[0]
        return (c, h, w)

    @classmethod
    def fit(cls, X: np.ndarray, *, image_shape: tuple[int, int, int] | None, standardize: bool = True,
            whiten: str = "none", eps: float = 1e-2, patch: int = 3,
            raw_shape: tuple[int, ...] | None = None) -> InputTransform:
        if raw_shape is not None:
            if whiten != "none":
                raise UserError(f"data.whiten={whiten} needs vectors or images, got inputs of shape "
                                f"{'×'.join(map(str, raw_shape))}", "data.whiten", "drop data.whiten")
            return cls(raw_shape=tuple(raw_shape), whiten_eps=eps)
        t = cls(image_shape=tuple(image_shape) if image_shape else None, whiten_eps=eps)
        d = X.shape[1]
        if image_shape is None:
            if whiten == "patch_zca":
                raise UserError("data.whiten=patch_zca needs images", "data.whiten",
                                "use pca or zca for vectors, or an image model with image data")
            t.standardizer = (Standardizer.fit(X) if standardize
                              else Standardizer(mean=np.zeros(d), std=np.ones(d)))
        else:
            if whiten == "pca":
                raise UserError("PCA whitening destroys the image layout an image model needs", "data.whiten",
                                "use zca or patch_zca for images (or pca with an mlp)")
            c = image_shape[0]
            t.channel = (ChannelNormalizer.fit(X, image_shape) if standardize
                         else ChannelNormalizer(mean=np.zeros(c), std=np.ones(c)))
        Z = t._normalize(X)
        if whiten in ("pca", "zca"):
            t.whitener = Whitener.fit(Z, kind=whiten, eps=eps)
        elif whiten == "patch_zca":
            t.patch = patch_zca_filters(Z.reshape(-1, *image_shape), k=patch, eps=eps)
        return t

    def _normalize(self, X: np.ndarray) -> np.ndarray:
        if self.raw_shape is not None:
            return X
        if self.standardizer is not None:
            return self.standardizer.transform(X)
        return self.channel.transform(X)

    def check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if (self.image_shape is not None and X.ndim == 4) or (self.raw_shape is not None and X.ndim > 2):
            X = X.reshape(len(X), -1)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            got = X.shape[1] if X.ndim == 2 else f"an array of shape {X.shape}"
            want = (f"images of shape {'×'.join(map(str, self.image_shape))}" if self.image_shape
                    else f"inputs of shape {'×'.join(map(str, self.raw_shape))}" if self.raw_shape
                    else f"{self.n_features} feature columns")
            raise UserError(f"expected {want}, got {got}" + (" values per row" if X.ndim == 2 else ""),
                            "model input", "pass data shaped like the training data")
        return X

    def apply(self, X) -> np.ndarray:
        """Raw rows → model input ([N, D] or [N, C, H, W]), float64."""
        Z = self._normalize(self.check(X))
        if self.whitener is not None:
            Z = self.whitener.transform(Z)
        if self.raw_shape is not None:
            return Z.reshape(len(Z), *self.raw_shape)
        if self.image_shape is None:
            return Z
        Z = Z.reshape(len(Z), *self.image_shape)
        if self.patch is not None:
            Z = apply_patch_zca(Z, *self.patch)
        return Z

    def to_json(self) -> dict:
        return {"image_shape": list(self.image_shape) if self.image_shape else None,
                "standardizer": self.standardizer.to_dict() if self.standardizer else None,
                "channel": self.channel.to_dict() if self.channel else None,
                "whiten": (self.whitener.kind if self.whitener else "patch_zca" if self.patch is not None
                           else "none"),
                "whiten_eps": self.whiten_eps, "raw_shape": list(self.raw_shape) if self.raw_shape else None}

    def arrays(self) -> dict[str, np.ndarray]:
        if self.whitener is not None:
            return {f"whiten.{k}": v for k, v in self.whitener.to_arrays().items()}
        if self.patch is not None:
            return {"patch_zca.weight": self.patch[0], "patch_zca.bias": self.patch[1]}
        return {}

    @classmethod
    def from_saved(cls, info: dict, arrays: dict[str, np.ndarray]) -> InputTransform:
        if info.get("raw_shape"):
            return cls(raw_shape=tuple(info["raw_shape"]), whiten_eps=float(info.get("whiten_eps", 1e-2)))
        shape = info.get("image_shape")
        t = cls(image_shape=tuple(shape) if shape else None, whiten_eps=float(info.get("whiten_eps", 1e-2)))
        if info.get("standardizer") is not None:
            t.standardizer = Standardizer.from_dict(info["standardizer"])
        if info.get("channel") is not None:
            t.channel = ChannelNormalizer.from_dict(info["channel"])
        kind = info.get("whiten", "none")
        fix = "re-run `nnrecipe fit` to write the run again"
        try:
            if kind in ("pca", "zca"):
                t.whitener = Whitener.from_arrays({k[7:]: v for k, v in arrays.items() if k.startswith("whiten.")},
                                                  kind=kind, eps=t.whiten_eps)
            elif kind == "patch_zca":
                t.patch = (arrays["patch_zca.weight"], arrays["patch_zca.bias"])
        except (KeyError, ValueError, TypeError) as exc:
            raise UserError(f"saved whitening transform is incomplete ({type(exc).__name__})",
                            "preprocess.safetensors", fix) from None
        if t.standardizer is None and t.channel is None:
            raise UserError("saved input transform has no statistics", "model.json", fix)
        return t
