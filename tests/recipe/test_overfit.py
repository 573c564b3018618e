"""overfit_small: memorizes random labels at a sane LR; each failure gets its diagnosis."""

from __future__ import annotations

import json

import pytest
import torch

from nnrecipe.config import InitConfig
from nnrecipe.errors import UserError
from nnrecipe.models import MLP
from nnrecipe.recipe.overfit import EXPLODED, FLAT, SLOW, overfit_small
from nnrecipe.training.init import initialize


def _factory(out_features=10, *, dropout=0.0, made=None):
    def make():
        torch.manual_seed(0)
        model = MLP(64, out_features, hidden=(256,), dropout=dropout)
        initialize(model, InitConfig(name="auto"), activation="relu")
        if made is not None:
            made.append(model)
        return model
    return make


@pytest.fixture(scope="module")
def random_labels():
    g = torch.Generator().manual_seed(0)
    return torch.randn(160, 64, generator=g), torch.randint(0, 10, (160,), generator=g)


def test_memorizes_160_random_labels(random_labels):
    X, y = random_labels
    made: list = []
    out = overfit_small(_factory(dropout=0.5, made=made), X, y, task="classification", lr=1e-3)
    assert out["passed"] and out["final_accuracy"] == 1.0 and out["diagnosis"] is None
    assert out["rows"] == 160 and 0 < out["iterations"] < 500
    assert out["final_loss"] < out["initial_loss"]
    assert all(m.p == 0.0 for m in made[0].modules() if isinstance(m, torch.nn.Dropout))  # regularization off
    json.dumps(out)


def test_tiny_lr_is_not_going_down(random_labels):
    X, y = random_labels
    out = overfit_small(_factory(), X, y, task="classification", lr=1e-9, max_iterations=50)
    assert not out["passed"] and out["iterations"] == 50
    assert out["final_loss"] >= 0.9 * out["initial_loss"] and out["diagnosis"] == FLAT


def test_huge_sgd_lr_explodes(random_labels):
    X, y = random_labels
    out = overfit_small(_factory(), X, y, task="classification", lr=1e6, optimizer_name="sgd", max_iterations=50)
    assert not out["passed"] and out["diagnosis"] == EXPLODED and out["iterations"] < 50


def test_too_few_iterations_is_too_slow(random_labels):
    X, y = random_labels
    out = overfit_small(_factory(), X, y, task="classification", lr=1e-3, max_iterations=25)
    assert not out["passed"] and out["iterations"] == 25
    assert out["final_loss"] < 0.9 * out["initial_loss"] and out["diagnosis"] == SLOW


def test_regression_target_is_a_thousandth_of_the_initial_mse(random_labels):
    X, _ = random_labels
    y = torch.randn(160, generator=torch.Generator().manual_seed(1))
    out = overfit_small(_factory(1), X, y, task="regression", lr=3e-3)
    assert out["passed"] and out["final_accuracy"] is None
    assert out["final_loss"] < 1e-3 * out["initial_loss"]


def test_uses_all_rows_when_fewer_than_requested(random_labels):
    X, y = random_labels
    out = overfit_small(_factory(), X[:50], y[:50], task="classification", lr=1e-3, max_iterations=5)
    assert out["rows"] == 50


def test_unknown_optimizer_is_rejected(random_labels):
    X, y = random_labels
    with pytest.raises(UserError, match="did you mean 'adam'"):
        overfit_small(_factory(), X, y, task="classification", lr=1e-3, optimizer_name="adamm")
