"""PCA/ZCA whitening: identity covariance, the ε formula, ZCA's optimality, saving; patch ZCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file, save_file
from sklearn.decomposition import PCA

from nnrecipe.data import Whitener, apply_patch_zca, patch_zca_filters
from nnrecipe.errors import UserError


def correlated(n: int = 2000, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) + 2 * np.eye(d)
    return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d) * 5


def population_cov(Z: np.ndarray) -> np.ndarray:
    return np.cov(Z, rowvar=False, bias=True)


@pytest.mark.parametrize("kind", ["pca", "zca"])
def test_whitened_training_covariance_is_identity(kind):
    X = correlated()
    eps = 1e-9
    Z = Whitener.fit(X, kind=kind, eps=eps).transform(X)
    lam = np.linalg.eigvalsh(population_cov(X))
    # Exactly W Σ Wᵀ = U Λ(Λ+εI)⁻¹ Uᵀ, so each entry is within ε/(λ_min+ε) of I (here ~1e-9).
    tolerance = eps / (lam.min() + eps) + 1e-9
    assert tolerance < 1e-6
    np.testing.assert_allclose(population_cov(Z), np.eye(6), rtol=0, atol=tolerance)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-9)


@pytest.mark.parametrize("kind", ["pca", "zca"])
def test_eps_shrinks_each_component_by_lambda_over_lambda_plus_eps(kind):
    X = correlated(seed=1)
    eps = 0.5
    Z = Whitener.fit(X, kind=kind, eps=eps).transform(X)
    lam = np.linalg.eigvalsh(population_cov(X))
    np.testing.assert_allclose(np.linalg.eigvalsh(population_cov(Z)), lam / (lam + eps),
                               rtol=1e-9)


def test_zca_matrix_is_symmetric_inverse_square_root():
    X = correlated(seed=2)
    zca = Whitener.fit(X, kind="zca", eps=0.1)
    np.testing.assert_allclose(zca.matrix, zca.matrix.T, atol=1e-12)
    # W_zca = (Σ + εI)^(−1/2), so W² = (Σ + εI)⁻¹ (oracle: numpy's inverse)
    np.testing.assert_allclose(zca.matrix @ zca.matrix,
                               np.linalg.inv(population_cov(X) + 0.1 * np.eye(6)), rtol=1e-8)


def test_pca_rows_are_principal_axes_largest_first():
    X = correlated(seed=3)
    pca = Whitener.fit(X, kind="pca", eps=0.1)
    lam = np.sort(np.linalg.eigvalsh(population_cov(X)))[::-1]
    np.testing.assert_allclose(pca.matrix @ pca.matrix.T, np.diag(1 / (lam + 0.1)), atol=1e-12)


def test_pca_matches_sklearn_whiten_up_to_sign_and_ddof():
    X = correlated(seed=4)
    ours = Whitener.fit(X, kind="pca", eps=1e-12).transform(X)
    theirs = PCA(whiten=True).fit_transform(X)  # divides by the ddof=1 std of each component
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs) * np.sqrt(len(X) / (len(X) - 1)),
                               rtol=1e-6, atol=1e-9)


def test_zca_is_the_whitening_closest_to_identity():
    X = correlated(seed=5)
    zca = Whitener.fit(X, kind="zca", eps=1e-6)
    pca = Whitener.fit(X, kind="pca", eps=1e-6)
    distance = {k: np.linalg.norm(w.matrix - np.eye(6)) for k, w in (("zca", zca), ("pca", pca))}
    assert distance["zca"] < distance["pca"]
    # every whitening is Q·W_zca with Q orthogonal; none is closer to I, nor moves the data less
    centred = X - X.mean(axis=0)
    moved_zca = np.mean(np.sum((zca.transform(X) - centred) ** 2, axis=1))
    rng = np.random.default_rng(0)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
        other = q @ zca.matrix
        assert np.linalg.norm(other - np.eye(6)) >= distance["zca"]
        assert np.mean(np.sum((centred @ other.T - centred) ** 2, axis=1)) >= moved_zca


@pytest.mark.parametrize("kind", ["pca", "zca"])
def test_round_trip_through_arrays_and_safetensors(tmp_path, kind):
    X = correlated(seed=6)
    w = Whitener.fit(X, kind=kind, eps=0.01)
    save_file(w.to_arrays(), str(tmp_path / "preprocess.safetensors"))
    back = Whitener.from_arrays(load_file(str(tmp_path / "preprocess.safetensors")),
                                kind=kind, eps=0.01)
    np.testing.assert_array_equal(back.transform(X[:10]), w.transform(X[:10]))
    assert back.kind == kind and back.eps == 0.01


def test_bad_arrays_and_inputs():
    w = Whitener.fit(correlated(n=50, d=4), kind="zca")
    with pytest.raises(KeyError):
        Whitener.from_arrays({"mean": w.mean}, kind="zca", eps=0.01)
    with pytest.raises(ValueError, match="expected"):
        Whitener.from_arrays({"mean": w.mean, "matrix": w.matrix[:3]}, kind="zca", eps=0.01)
    with pytest.raises(ValueError, match="unknown whitening"):
        Whitener.fit(np.ones((3, 2)), kind="pcz")
    with pytest.raises(UserError, match="expected 4 features, got 5"):
        w.transform(np.ones((2, 5)))


def smooth_images(n: int, c: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Noise blurred with a 3×3 box plus a per-channel offset: correlated neighbouring pixels."""
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, c, h + 2, w + 2)))
    blurred = F.avg_pool2d(x, 3, stride=1) + 0.3 * x[:, :, 1:-1, 1:-1]
    return (blurred + torch.arange(c).view(1, c, 1, 1)).numpy()


def all_patches(images: np.ndarray, k: int) -> np.ndarray:
    """Every valid k×k patch, flattened in C, k, k order (plain loops: an independent oracle)."""
    n, c, h, w = images.shape
    return np.array([images[i, :, y:y + k, x:x + k].reshape(-1) for i in range(n)
                     for y in range(h - k + 1) for x in range(w - k + 1)])


def test_patch_zca_whitens_every_valid_position():
    images = smooth_images(30, 2, 10, 10)
    eps = 1e-6
    weight, bias = patch_zca_filters(images, k=3, eps=eps)
    assert weight.shape == (18, 2, 3, 3) and bias.shape == (18,)
    np.testing.assert_allclose(weight.reshape(18, 18), weight.reshape(18, 18).T, atol=1e-10)
    out = F.conv2d(torch.from_numpy(images), torch.from_numpy(weight), torch.from_numpy(bias))
    channels = out.permute(0, 2, 3, 1).reshape(-1, 18).numpy()  # one row per valid position
    lam = np.linalg.eigvalsh(population_cov(all_patches(images, 3)))
    tolerance = eps / (lam.min() + eps) + 1e-8  # as for Whitener: λ_min here is ≈ 0.07
    assert tolerance < 1e-3
    np.testing.assert_allclose(population_cov(channels), np.eye(18), rtol=0, atol=tolerance)
    np.testing.assert_allclose(channels.mean(axis=0), 0, atol=1e-8)


def test_patch_sampling_is_seeded():
    images = smooth_images(20, 1, 12, 12, seed=1)  # 2000 valid positions
    full = patch_zca_filters(images, k=3)
    a = patch_zca_filters(images, k=3, max_patches=500, seed=0)
    b = patch_zca_filters(images, k=3, max_patches=500, seed=0)
    c = patch_zca_filters(images, k=3, max_patches=500, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], full[0])
    np.testing.assert_array_equal(patch_zca_filters(images, k=3, max_patches=2000)[0], full[0])


def test_apply_patch_zca_same_size_with_mean_padding():
    images = smooth_images(6, 2, 7, 8, seed=2)
    weight, bias = patch_zca_filters(images, k=3, eps=1e-2)
    out = apply_patch_zca(images, weight, bias, batch=4)  # two chunks
    assert out.shape == (6, 18, 7, 8) and out.dtype == np.float64
    w_t, b_t = torch.from_numpy(weight), torch.from_numpy(bias)
    valid = F.conv2d(torch.from_numpy(images), w_t, b_t).numpy()
    np.testing.assert_allclose(out[:, :, 1:-1, 1:-1], valid, atol=1e-10)
    channel_mean = all_patches(images, 3).mean(axis=0).reshape(2, 9).mean(axis=1)
    padded = np.stack([np.pad(images[:, i], ((0, 0), (1, 1), (1, 1)),
                              constant_values=channel_mean[i]) for i in range(2)], axis=1)
    np.testing.assert_allclose(out, F.conv2d(torch.from_numpy(padded), w_t, b_t).numpy(),
                               atol=1e-9)
    assert apply_patch_zca(images.astype(np.float32), weight, bias).dtype == np.float32


def test_patch_size_errors():
    images = smooth_images(2, 1, 5, 5)
    with pytest.raises(UserError, match="patch size 2"):
        patch_zca_filters(images, k=2)
    with pytest.raises(UserError, match="at most 5"):
        patch_zca_filters(images, k=7)
    weight, bias = patch_zca_filters(images, k=3)
    with pytest.raises(UserError, match=r"images \[N, 1, H, W\]"):
        apply_patch_zca(np.ones((1, 3, 5, 5)), weight, bias)
