"""infer_task and encode_labels."""

from __future__ import annotations

import numpy as np
import pytest

from nnrecipe.data import encode_labels, infer_task, load_table, regression_targets
from nnrecipe.errors import UserError


@pytest.mark.parametrize("name,task", [("digits", "classification"), ("iris", "classification"),
                                       ("breast_cancer", "classification"),
                                       ("diabetes", "regression")])
def test_infer_task_bundled(name, task):
    assert infer_task(load_table(name).y) == task


@pytest.mark.parametrize("y,task", [
    (np.array(["cat", "dog"]), "classification"),
    (np.array([True, False]), "classification"),
    (np.array([0.0, 1.0, 1.0, 0.0]), "classification"),
    (np.arange(100, dtype=np.int64), "classification"),  # ints are labels; data.task overrides
    (np.arange(21, dtype=np.float64), "regression"),  # more than 20 distinct values
    (np.arange(20, dtype=np.float64), "classification"),
    (np.array([0.5, 1.0, 1.5]), "regression"),
    (np.array([1, "a"], dtype=object), "classification"),
    (np.array([0.0, 1.0], dtype=object), "classification"),
])
def test_infer_task_rule(y, task):
    assert infer_task(y) == task


def test_encode_sorted_numeric_and_names_without_dot_zero():
    codes, names = encode_labels(np.array([10.0, 2.0, 2.0, 1.0]))
    assert names == ["1", "2", "10"]  # numeric, not lexicographic, order
    assert codes.tolist() == [2, 1, 1, 0] and codes.dtype == np.int64


def test_encode_strings_lexicographic():
    codes, names = encode_labels(np.array(["b", "a", "c", "a"]))
    assert names == ["a", "b", "c"] and codes.tolist() == [1, 0, 2, 0]


def test_encode_digits_names():
    codes, names = encode_labels(load_table("digits").y)
    assert names == [str(i) for i in range(10)] and codes.max() == 9


def test_encode_with_training_class_names():
    codes, names = encode_labels(np.array([1.0, 0.0, 1.0]), class_names=["0", "1"])
    assert codes.tolist() == [1, 0, 1] and names == ["0", "1"]
    # one class present is fine at evaluate time; the order comes from training
    codes, _ = encode_labels(np.array(["no"]), class_names=["yes", "no"])
    assert codes.tolist() == [1]


def test_encode_unseen_label():
    with pytest.raises(UserError, match=r"label 'maybe' \(2 rows\) not seen in training "
                                        r"\(classes: no, yes\)"):
        encode_labels(np.array(["yes", "maybe", "maybe"]), class_names=["no", "yes"])


def test_encode_single_class():
    with pytest.raises(UserError, match="only one class 'x' in the target") as info:
        encode_labels(np.array(["x", "x"]))
    assert "at least 2 classes" in info.value.fix


def test_regression_targets():
    assert regression_targets(np.array(["1.5", "2"])).tolist() == [1.5, 2.0]
    assert regression_targets(np.array([1, 2])).dtype == np.float64
    with pytest.raises(UserError, match="non-numeric values such as 'cat'"):
        regression_targets(np.array(["1", "cat"]))
