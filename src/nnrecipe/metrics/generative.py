"""Scores of generative models, as pure functions (tensors/arrays in, numbers out).

VAE terms (Kingma & Welling 2014), per example, in nats:
    KL(q(z|x) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)           (`gaussian_kl`)
    reconstruction = −log p(x|z) = Σ_pixels BCE(x, sigmoid(logits))        (`bernoulli_nll`)
    ELBO = −(reconstruction + KL) ≤ log p(x)                               (`elbo`)

Classifier-based sample scores (a "judge" classifier's p(y|x) and penultimate features):
    class entropy      H(p̄), p̄ = mean_x p(y|x)          high: every class is generated
    mean entropy       mean_x H(p(y|x))                   low: each sample looks like one class
    mean confidence    mean_x max_y p(y|x)
    inception score    exp(E_x KL(p(y|x) ‖ p̄))            (Salimans et al. 2016; 1 … number of classes)
    Fréchet distance   ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^½)   (Heusel et al. 2017: FID)

Hand-written because the libraries that ship FID/IS (torchmetrics, pytorch-fid) fix the feature
extractor to an ImageNet Inception network, which means nothing on 8×8 digits; here any
classifier's features go in. The matrix square root is scipy.linalg.sqrtm, with pytorch-fid's
guard: if the product is singular, ε·I is added to both covariances.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

_EPS = 1e-12


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per example (summed over the latent dimensions), shape [B]."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) for Bernoulli pixels with means sigmoid(logits), summed per example, shape [B].
    Targets in [0, 1]; computed from logits (log-sum-exp form) so saturated pixels stay finite."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


def elbo(reconstruction: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """ELBO = −(reconstruction + KL), per example (nats)."""
    return -(reconstruction + kl)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, _EPS, None))).sum(axis=-1)


def inception_score(probs: np.ndarray) -> float:
    """exp(mean_x KL(p(y|x) ‖ p̄)) over all rows at once (no splits); probs [N, C], rows sum to 1."""
    p = np.asarray(probs, dtype=np.float64)
    marginal = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(np.clip(p, _EPS, None)) - np.log(np.clip(marginal, _EPS, None)))).sum(axis=1)
    return float(np.exp(kl.mean()))


def class_scores(probs: np.ndarray) -> dict:
    """Class entropy H(p̄), mean per-sample entropy, mean confidence and the inception score (nats)."""
    p = np.asarray(probs, dtype=np.float64)
    return {"class_entropy": float(_entropy(p.mean(axis=0))),
            "max_class_entropy": float(np.log(p.shape[1])),
            "mean_entropy": float(_entropy(p).mean()),
            "mean_confidence": float(p.max(axis=1).mean()),
            "inception_score": inception_score(p)}


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     *, eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance² between N(μ1, Σ1) and N(μ2, Σ2)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(s1 @ s2)
        except linalg.LinAlgWarning:  # singular product (fewer samples than features, dead features)
            covmean = None
    if covmean is None or not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)  # rounding can leave tiny imaginary parts
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of feature rows [N, D]."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two sets of feature rows."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))
