"""initial_loss_check: ln C / E[y²] expectations, both verdicts, and the likely cause."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from nnrecipe.config import InitConfig
from nnrecipe.models import MLP
from nnrecipe.recipe.initial_loss import TOO_HIGH, TOO_LOW, initial_loss_check
from nnrecipe.training.init import initialize
from testutil import random_classes


def _mlp(out_features=10, *, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    model = MLP(32, out_features, hidden=(256, 128), dropout=dropout)
    initialize(model, InitConfig(name="auto"), activation="relu")
    return model


def _data(n=512, d=32, classes=10, seed=0):
    return random_classes(n, d, classes, seed)


def test_auto_init_on_ten_random_classes_is_ok():
    X, y = _data()
    out = initial_loss_check(_mlp(), X, y, task="classification", num_classes=10)
    assert out["ok"] and out["likely_cause"] is None
    assert out["expected"] == pytest.approx(math.log(10))
    assert abs(out["measured"] - out["expected"]) <= 0.5 * out["expected"]
    assert out["tolerance"] == 0.5
    json.dumps(out)  # plain, JSON-serializable values


def test_head_scaled_by_20_is_flagged_as_too_high():
    X, y = _data()
    model = _mlp()
    with torch.no_grad():
        model.head.weight.mul_(20)
    out = initial_loss_check(model, X, y, task="classification", num_classes=10)
    assert not out["ok"] and out["measured"] > 1.5 * out["expected"]
    assert out["likely_cause"] == TOO_HIGH and "init scale of the head" in out["likely_cause"]


def test_labels_leaking_into_features_is_flagged_as_too_low():
    _, y = _data()
    X = nn.functional.one_hot(y, 10).float()  # the label is a feature
    model = nn.Linear(10, 10)
    with torch.no_grad():
        model.weight.copy_(5 * torch.eye(10))
        model.bias.zero_()
    out = initial_loss_check(model, X, y, task="classification", num_classes=10)
    assert not out["ok"] and out["measured"] < 0.5 * out["expected"]
    assert out["likely_cause"] == TOO_LOW and "leak" in out["likely_cause"]


def test_num_classes_defaults_to_the_output_width():
    X, y = _data(classes=7)
    out = initial_loss_check(_mlp(7), X, y, task="classification", num_classes=None)
    assert out["expected"] == pytest.approx(math.log(7))


def test_eval_mode_no_dropout_and_mode_restored():
    X, y = _data()
    model = _mlp(dropout=0.5).train()
    first = initial_loss_check(model, X, y, task="classification", num_classes=10)
    second = initial_loss_check(model, X, y, task="classification", num_classes=10)
    assert first["measured"] == second["measured"]  # no dropout noise
    assert model.training


def test_regression_expects_the_second_moment_of_the_target():
    X, _ = _data()
    y = torch.randn(512, generator=torch.Generator().manual_seed(1))
    model = _mlp(1)
    with torch.no_grad():
        model.head.weight.mul_(0.1)  # a small head: outputs ≈ 0
    out = initial_loss_check(model, X, y, task="regression", num_classes=None)
    assert out["expected"] == pytest.approx(float((y.double() ** 2).mean()))
    assert out["ok"]
    with torch.no_grad():
        model.head.weight.mul_(200)
    big = initial_loss_check(model, X, y, task="regression", num_classes=None)
    assert not big["ok"] and "init scale of the head" in big["likely_cause"]


def test_tolerance_is_relative_to_the_expectation():
    X, y = _data()
    model = _mlp()
    measured = initial_loss_check(model, X, y, task="classification", num_classes=10)["measured"]
    rel = abs(measured - math.log(10)) / math.log(10)
    assert initial_loss_check(model, X, y, task="classification", num_classes=10, tolerance=rel * 1.01)["ok"]
    assert not initial_loss_check(model, X, y, task="classification", num_classes=10, tolerance=rel * 0.99)["ok"]


def test_unknown_task_is_rejected():
    X, y = _data()
    with pytest.raises(ValueError, match="task"):
        initial_loss_check(_mlp(), X, y, task="ranking", num_classes=10)
