"""Generative-model scores against independent references: torch.distributions for the KL,
eigen-decompositions and closed forms for the Fréchet distance, hand-computed class scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg
from torch.distributions import Normal, kl_divergence

from nnrecipe.metrics.generative import (bernoulli_nll, class_scores, elbo, feature_stats, frechet_distance,
                                         frechet_distance_features, gaussian_kl, inception_score)


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))  # q = prior


def test_bernoulli_nll_sums_pixel_cross_entropies():
    g = torch.Generator().manual_seed(1)
    logits, x = torch.randn(4, 1, 3, 3, generator=g), torch.rand(4, 1, 3, 3, generator=g)
    p = torch.sigmoid(logits)
    expected = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_nll(logits, x), expected, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(bernoulli_nll(torch.full((1, 4), 200.0), torch.zeros(1, 4))).all()  # saturated
    torch.testing.assert_close(elbo(torch.tensor([3.0]), torch.tensor([2.0])), torch.tensor([-5.0]))


def _random_spd(d: int, rng) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _fd_by_eigen(mu1, s1, mu2, s2) -> float:
    """Tr((Σ1Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½) = Σ sqrt(eigenvalues), via symmetric eigendecompositions."""
    w, v = linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = linalg.eigvalsh(root1 @ s2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))


@pytest.mark.parametrize("d", [1, 4, 12])
def test_frechet_distance_matches_an_eigendecomposition_reference(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(d, rng), _random_spd(d, rng)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_fd_by_eigen(mu1, s1, mu2, s2), rel=1e-6, abs=1e-8)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    # commuting covariances: Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) = Σ_i (σ1_i − σ2_i)²
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
    expected = 1 + 0 + 4 + (2 ** 2 + 0 + 1 ** 2)
    assert frechet_distance(mu1, np.diag(sd1 ** 2), mu2, np.diag(sd2 ** 2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_identical_sets_is_zero_and_sample_estimate_converges():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    assert frechet_distance_features(a, a) == pytest.approx(0.0, abs=1e-6)
    # two large samples from N(0, I) and N(m, 4I): FD → ‖m‖² + d·(2 − 1)²
    b = rng.normal(size=(20000, 6))
    c = rng.normal(loc=0.5, scale=2.0, size=(20000, 6))
    assert frechet_distance_features(b, c) == pytest.approx(6 * 0.25 + 6 * 1.0, rel=0.05)
    mean, cov = feature_stats(a)
    np.testing.assert_allclose(cov, np.cov(a.T))
    np.testing.assert_allclose(mean, a.mean(0))


def test_frechet_distance_survives_singular_covariances():
    rng = np.random.default_rng(1)
    a = np.hstack([rng.normal(size=(50, 3)), np.zeros((50, 2))])  # two dead features
    b = np.hstack([rng.normal(size=(50, 3)), np.zeros((50, 2))])
    fd = frechet_distance_features(a, b)
    assert math.isfinite(fd) and fd >= -1e-6


def test_inception_score_of_confident_uniform_classes_is_the_class_count():
    C = 7
    probs = np.tile(np.eye(C), (3, 1))  # one-hot, every class equally often
    assert inception_score(probs) == pytest.approx(C)
    assert inception_score(np.tile(np.eye(C)[:1], (10, 1))) == pytest.approx(1.0)  # one class only
    assert inception_score(np.full((5, C), 1 / C)) == pytest.approx(1.0)  # no confidence at all


def test_class_scores_by_hand():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    s = class_scores(probs)
    mean = np.array([0.75, 0.25])
    assert s["class_entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert s["max_class_entropy"] == pytest.approx(math.log(2))
    assert s["mean_entropy"] == pytest.approx(math.log(2) / 2)
    assert s["mean_confidence"] == pytest.approx(0.75)
    kl = [0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25), math.log(1 / 0.75)]
    assert s["inception_score"] == pytest.approx(math.exp(np.mean(kl)))
    assert mean.sum() == 1
