"""ChannelNormalizer: per-channel statistics over N, H, W; constant channels; saving; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnrecipe.data import ChannelNormalizer
from nnrecipe.errors import UserError

SHAPE = (3, 4, 5)


def images(n: int = 16, seed: int = 0) -> np.ndarray:
    """[N, 3, 4, 5] with very different per-channel means and scales."""
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 10.0, 0.1]).reshape(1, 3, 1, 1)
    shift = np.array([0.5, -20.0, 3.0]).reshape(1, 3, 1, 1)
    return rng.normal(size=(n, *SHAPE)) * scale + shift


def test_statistics_match_numpy_over_n_h_w():
    X4 = images()
    norm = ChannelNormalizer.fit(X4.reshape(len(X4), -1), SHAPE)
    np.testing.assert_allclose(norm.mean, X4.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(norm.std, X4.std(axis=(0, 2, 3)), rtol=1e-12)  # ddof=0


def test_transform_matches_torch_batch_norm():
    X4 = images(seed=1)
    norm = ChannelNormalizer.fit(X4.reshape(len(X4), -1), SHAPE)
    Z = norm.transform(X4.reshape(len(X4), -1))
    assert Z.shape == (16, 60)
    # batch_norm in training mode normalizes each channel by its batch mean and biased variance
    oracle = F.batch_norm(torch.from_numpy(X4), None, None, training=True,
                          eps=1e-300).numpy()  # eps must be > 0; this one vanishes in var + eps
    np.testing.assert_allclose(Z, oracle.reshape(16, -1), atol=1e-10)
    new = images(n=3, seed=2).reshape(3, -1)  # other rows use the training statistics
    expected = (new.reshape(3, 3, 20) - norm.mean[:, None]) / norm.std[:, None]
    np.testing.assert_allclose(norm.transform(new), expected.reshape(3, -1), rtol=1e-12)
    np.testing.assert_allclose(norm.inverse_transform(norm.transform(new)), new, rtol=1e-12)


def test_constant_channel_is_only_centred():
    X4 = images(seed=3)
    X4[:, 1] = 0.1  # mean of many 0.1s is not exactly 0.1 in floating point
    norm = ChannelNormalizer.fit(X4.reshape(len(X4), -1), SHAPE)
    assert norm.std[1] == 0.0
    Z = norm.transform(X4.reshape(len(X4), -1)).reshape(X4.shape)
    np.testing.assert_array_equal(Z[:, 1], X4[:, 1] - norm.mean[1])
    assert np.isfinite(Z).all()


def test_dict_round_trip_through_json():
    X = images(seed=4).reshape(16, -1)
    norm = ChannelNormalizer.fit(X, SHAPE)
    back = ChannelNormalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.transform(X), norm.transform(X))


def test_bad_input():
    norm = ChannelNormalizer.fit(images(seed=5).reshape(16, -1), SHAPE)
    with pytest.raises(UserError, match="3 channel"):
        norm.transform(np.ones((2, 61)))
    with pytest.raises(UserError, match="shape"):
        norm.transform(np.ones(60))
    with pytest.raises(ValueError, match="3×4×5"):
        ChannelNormalizer.fit(np.ones((2, 59)), SHAPE)
    with pytest.raises(UserError, match="malformed"):
        ChannelNormalizer.from_dict({"mean": [0.0]})
    with pytest.raises(UserError, match="shape"):
        ChannelNormalizer.from_dict({"mean": [0.0, 1.0], "std": [1.0]})
