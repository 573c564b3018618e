"""split_indices: sizes, stratification, determinism and the too-few-rows errors."""

from __future__ import annotations

import numpy as np
import pytest

from nnrecipe.data import load_table, split_indices
from nnrecipe.errors import UserError


@pytest.fixture(scope="module")
def digits_y():
    return load_table("digits").y


def split(y, **kwargs):
    options = dict(y=y, val_fraction=0.1, test_fraction=0.2, seed=0, stratify=True)
    options.update(kwargs)
    return split_indices(len(y), **options)


def test_sizes_70_10_20_and_disjoint(digits_y):
    train, val, test = split(digits_y)
    n = len(digits_y)
    for part, share in ((train, 0.7), (val, 0.1), (test, 0.2)):
        assert abs(len(part) - share * n) <= 1
    together = np.concatenate([train, val, test])
    assert sorted(together.tolist()) == list(range(n))


def test_stratified_keeps_class_proportions(digits_y):
    overall = np.bincount(digits_y) / len(digits_y)
    for part in split(digits_y):
        share = np.bincount(digits_y[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.01


def test_same_seed_same_split_different_seed_different(digits_y):
    first, again, other = split(digits_y), split(digits_y), split(digits_y, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_unstratified_without_y():
    train, val, test = split_indices(100, y=None, val_fraction=0.1, test_fraction=0.2, seed=3,
                                     stratify=False)
    assert (len(train), len(val), len(test)) == (70, 10, 20)


def test_has_test_splits_train_val_only(digits_y):
    train, val, test = split(digits_y, has_test=True)
    assert len(test) == 0
    assert abs(len(val) - 0.125 * len(digits_y)) <= 1  # 0.1 / (1 − 0.2)
    assert len(train) + len(val) == len(digits_y)


def test_too_few_rows():
    with pytest.raises(UserError, match="2 rows are too few for train/val/test splits") as info:
        split_indices(2, y=None, val_fraction=0.1, test_fraction=0.2, seed=0, stratify=False)
    assert "at least 3 rows are needed" in info.value.what and "add rows" in info.value.fix


def test_too_few_rows_per_class_in_a_split():
    y = np.arange(30) % 10
    with pytest.raises(UserError, match="30 rows are too few for stratified .* 10 classes") as info:
        split(y)
    assert "at least 92 rows are needed" in info.value.what
    assert "data.test_fraction" in info.value.fix


def test_rare_class_named():
    y = np.array(["a"] * 50 + ["b"] * 50 + ["rare"] * 2)
    with pytest.raises(UserError, match=r"class 'rare' \(2 rows\) too rare") as info:
        split(y)
    assert "at least 3 rows per class" in info.value.what
    assert len(split(y, has_test=True)[1]) > 0  # two rows suffice for train/val only


def test_fractions_must_leave_training_rows(digits_y):
    with pytest.raises(UserError, match="leaves no training rows"):
        split(digits_y, val_fraction=0.5, test_fraction=0.5)
