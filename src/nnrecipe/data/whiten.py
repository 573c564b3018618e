"""PCA and ZCA whitening of flat rows, and patch-wise ZCA filters for a fixed first conv layer.

Fitted on the training rows X [N, D]:

    μ = mean of the rows,   Σ = (X − μ)ᵀ(X − μ) / N = U Λ Uᵀ       (np.linalg.eigh)
    W_pca = (Λ + εI)^(−1/2) Uᵀ                   rows: principal axes, largest variance first
    W_zca = U (Λ + εI)^(−1/2) Uᵀ                 symmetric
    transform(x) = W (x − μ),  i.e. Z = (X − μ) Wᵀ for a batch of rows

so that the whitened training data has covariance W Σ Wᵀ = U Λ (Λ + εI)^(−1) Uᵀ (PCA: without the
U's), which is the identity up to ε/(λ_i + ε) per component. ε regularizes the directions of
tiny variance (pixel noise, or the rank deficit when N < D) that would otherwise be blown up; it
is in the units of the data's variance (after standardization the eigenvalues average 1).

Every whitening matrix is W = Q Σ^(−1/2) with Q orthogonal. ZCA (Bell & Sejnowski 1997, "The
'independent components' of natural scenes are edge filters"; used on CIFAR-10 by Krizhevsky
2009) is the one with Q = I: of all whitenings it keeps the output closest to the input,
minimising E‖W(x − μ) − (x − μ)‖² and ‖W − I‖_F (Kessy, Lewin & Strimmer 2018, "Optimal whitening
and decorrelation"). Whitened images therefore still look like images (edges enhanced) and keep
their pixel layout, so a conv net can use them; PCA whitening rotates pixels into components.

Patch-wise ZCA (`patch_zca_filters`; Coates & Ng 2012, "Learning feature representations with
K-means", and the hlb-cifar10 / airbench CIFAR-10 speedruns) whitens k×k patches instead of whole
images: with p the C·k·k vector of a patch (flattened in C, k, k order), μ_p and W_p from ZCA on
patches sampled from the training images, the filters are

    weight = W_p reshaped to [C·k·k, C, k, k],   bias = −W_p μ_p

so that ``F.conv2d(x, weight, bias)`` at every position equals W_p (p − μ_p): C·k·k whitened
channels, computed by a frozen first layer. The matrices are D×D (D in the thousands for images),
so they are stored as arrays (`to_arrays`, safetensors next to the model), not in JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnrecipe.errors import UserError

KINDS = ("pca", "zca")
MAX_PATCHES = 100_000  # patches sampled for the patch covariance: plenty for a 27×27 matrix


@dataclass
class Whitener:
    kind: str  # "pca" | "zca"
    mean: np.ndarray  # μ [D]
    matrix: np.ndarray  # W [D, D]; transform(X) = (X − μ) Wᵀ
    eps: float  # ε the matrix was built with (kept for the record)

    @classmethod
    def fit(cls, X: np.ndarray, *, kind: str = "zca", eps: float = 1e-2) -> Whitener:
        if kind not in KINDS:
            raise ValueError(f"unknown whitening '{kind}'; choose one of {', '.join(KINDS)}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"fit needs a non-empty 2-D array, got shape {X.shape}")
        mean = X.mean(axis=0)
        centred = X - mean
        cov = centred.T @ centred / len(X)
        lam, U = np.linalg.eigh(cov)  # ascending eigenvalues
        lam, U = np.clip(lam[::-1], 0.0, None), U[:, ::-1]  # largest first; rounding can give −0
        pca = (1.0 / np.sqrt(lam + eps))[:, None] * U.T
        matrix = pca if kind == "pca" else U @ pca
        return cls(kind=kind, mean=mean, matrix=matrix, eps=float(eps))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(x − μ) Wᵀ for every row."""
        X = np.asarray(X, dtype=np.float64)
        got = X.shape[-1] if X.ndim else 0
        if X.ndim != 2 or got != len(self.mean):
            raise UserError(f"expected {len(self.mean)} features, got {got}"
                            + ("" if X.ndim == 2 else f" (array of shape {X.shape})"),
                            "input to the fitted whitening transform",
                            "give data shaped like the training data")
        return (X - self.mean) @ self.matrix.T

    def to_arrays(self) -> dict[str, np.ndarray]:
        # contiguous: safetensors writes raw buffers
        return {"mean": np.ascontiguousarray(self.mean),
                "matrix": np.ascontiguousarray(self.matrix)}

    @classmethod
    def from_arrays(cls, d: dict[str, np.ndarray], *, kind: str, eps: float) -> Whitener:
        """Rebuild from `to_arrays`; KeyError/ValueError on missing or mis-shaped arrays."""
        if kind not in KINDS:
            raise ValueError(f"unknown whitening '{kind}'; choose one of {', '.join(KINDS)}")
        mean = np.asarray(d["mean"], dtype=np.float64)
        matrix = np.asarray(d["matrix"], dtype=np.float64)
        if mean.ndim != 1 or matrix.shape != (len(mean), len(mean)):
            raise ValueError(f"whitening arrays have mean of shape {mean.shape} and matrix of "
                             f"shape {matrix.shape}; expected [D] and [D, D]")
        return cls(kind=kind, mean=mean, matrix=matrix, eps=float(eps))


def patch_zca_filters(images: np.ndarray, k: int = 3, eps: float = 1e-2, *,
                      max_patches: int = MAX_PATCHES,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ZCA of the k×k patches of `images` [N, C, H, W] as conv filters (weight, bias).

    weight [C·k·k, C, k, k] and bias [C·k·k] (float64) such that ``F.conv2d(x, weight, bias)``
    whitens every patch. The covariance uses every valid patch position, or ``max_patches`` of
    them drawn without replacement with a fixed ``seed`` when there are more.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {images.shape}")
    n, c, h, w = images.shape
    if k < 1 or k % 2 == 0 or k > min(h, w):
        raise UserError(f"patch size {k} does not fit {h}×{w} images (it must be odd and at most "
                        f"{min(h, w)})", "data.whiten_patch", "use an odd patch size such as 3")
    hp, wp = h - k + 1, w - k + 1
    total = n * hp * wp
    if total > max_patches:
        index = np.random.default_rng(seed).choice(total, size=max_patches, replace=False)
    else:
        index = np.arange(total)
    which, rest = np.divmod(index, hp * wp)
    row, col = np.divmod(rest, wp)
    windows = np.lib.stride_tricks.sliding_window_view(images, (k, k), axis=(2, 3))
    patches = windows[which, :, row, col].reshape(len(index), c * k * k)  # [M, C, k, k] flat
    zca = Whitener.fit(patches, kind="zca", eps=eps)
    weight = zca.matrix.reshape(c * k * k, c, k, k)
    bias = -zca.matrix @ zca.mean
    return weight, bias


def apply_patch_zca(images: np.ndarray, weight: np.ndarray, bias: np.ndarray, *,
                    batch: int = 1024) -> np.ndarray:
    """[N, C, H, W] → [N, C·k·k, H, W] patch-whitened ('same' size), in the input's dtype.

    Border: the image is padded by (k − 1)/2 pixels with each channel's training mean μ_c (the
    mean of μ_p over the k×k positions of channel c), so a padded pixel is an average pixel and
    adds ≈ 0 to W_p (p − μ_p) — zero padding would add −W_p μ_p there unless the data had mean
    0. μ_p is recovered from bias = −W_p μ_p (W_p is invertible: its eigenvalues are
    (λ + ε)^(−1/2) > 0). Positions whose patch lies inside the image are exactly the valid
    convolution. Runs in chunks of ``batch`` images to bound the memory of the k²-fold output.
    """
    import torch  # here, not at the top: `nnrecipe.data` stays importable without loading torch
    import torch.nn.functional as F

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != weight.shape[1]:
        raise UserError(f"patch whitening expects images [N, {weight.shape[1]}, H, W], got "
                        f"shape {images.shape}", "model input",
                        "pass images with the training channels")
    out_c, c, k, _ = weight.shape
    mean_patch = np.linalg.solve(weight.reshape(out_c, -1), -bias)
    channel_mean = mean_patch.reshape(c, k, k).mean(axis=(1, 2))
    dtype = images.dtype if images.dtype in (np.float32, np.float64) else np.float64
    w_t = torch.from_numpy(np.ascontiguousarray(weight, dtype=dtype))
    b_t = torch.from_numpy(np.ascontiguousarray(bias, dtype=dtype))
    mu = torch.from_numpy(channel_mean.astype(dtype)).view(1, c, 1, 1)
    pad = (k - 1) // 2
    out = np.empty((len(images), out_c, *images.shape[2:]), dtype=dtype)
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch], dtype=dtype))
            x = F.pad(x - mu, (pad, pad, pad, pad)) + mu  # pad with μ_c
            out[start:start + batch] = F.conv2d(x, w_t, b_t).numpy()
    return out
