"""The doctor's checks, each provoked into its healthy and its unhealthy verdict."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import load_digits

from nnrecipe.config import InitConfig
from nnrecipe.models import MLP
from nnrecipe.recipe.activations import activation_stats, summarize_activations
from nnrecipe.recipe.initial_loss import initial_loss_check
from nnrecipe.recipe.lr_finder import lr_range_test, plot_lr_finder
from nnrecipe.recipe.overfit import overfit_small
from nnrecipe.training.init import initialize
from testutil import random_classes


def _mlp(activation, init, *, width=256, depth=6, inputs=64, classes=10, **kw):
    torch.manual_seed(0)
    model = MLP(inputs, classes, hidden=(width,) * depth, activation=activation)
    initialize(model, InitConfig(name=init, **kw), activation=activation)
    return model


def _data(n=512, d=64, classes=10, seed=0):
    return random_classes(n, d, classes, seed)


def test_initial_loss_ok_then_flagged_when_head_is_scaled_up():
    X, y = _data()
    model = _mlp("relu", "auto", depth=2)
    ok = initial_loss_check(model, X, y, task="classification", num_classes=10)
    assert ok["ok"] and ok["expected"] == pytest.approx(math.log(10)) and ok["likely_cause"] is None
    with torch.no_grad():
        model.head.weight.mul_(20)
    bad = initial_loss_check(model, X, y, task="classification", num_classes=10)
    assert not bad["ok"] and bad["measured"] > bad["expected"] and "init scale" in bad["likely_cause"]


def test_initial_loss_regression_expects_the_target_second_moment():
    X, _ = _data()
    y = torch.randn(512)
    out = initial_loss_check(_mlp("relu", "auto", depth=2, classes=1), X, y, task="regression", num_classes=None)
    assert out["expected"] == pytest.approx(float((y.double() ** 2).mean()))


@pytest.mark.parametrize("activation,init,kw,verdict", [
    ("tanh", "normal", {"std": 0.01}, "collapse"),
    ("tanh", "normal", {"std": 1.0}, "saturation"),
    ("tanh", "xavier_uniform", {}, "healthy"),
    ("relu", "kaiming_normal", {}, "healthy"),
])
def test_activation_verdicts(activation, init, kw, verdict):
    X, _ = _data()
    width = 512 if verdict == "saturation" else 256
    stats = activation_stats(_mlp(activation, init, width=width, **kw), X, activation=activation)
    assert len(stats) == 6
    summary = summarize_activations(stats)
    assert summary["verdict"] == verdict, stats
    assert (summary["fix"] is None) == (verdict == "healthy")
    if verdict != "healthy":
        assert "init" in summary["fix"]


def test_dead_relu_layer_is_flagged():
    X, _ = _data()
    model = _mlp("relu", "kaiming_normal", depth=2)
    with torch.no_grad():
        model.body[0].bias.fill_(-100.0)
    summary = summarize_activations(activation_stats(model, X))
    assert summary["verdict"] == "dead" and summary["layers"][0] == "body.1"


def test_overfit_small_passes_and_diagnoses_both_failures():
    X, y = _data(n=160)
    factory = lambda: _mlp("relu", "auto", depth=1)  # noqa: E731
    ok = overfit_small(factory, X, y, task="classification", lr=1e-3)
    assert ok["passed"] and ok["final_accuracy"] == 1.0 and ok["diagnosis"] is None
    flat = overfit_small(factory, X, y, task="classification", lr=1e-9, max_iterations=50)
    assert not flat["passed"] and "not going down" in flat["diagnosis"]
    boom = overfit_small(factory, X, y, task="classification", lr=1e6, optimizer_name="sgd", max_iterations=50)
    assert not boom["passed"] and "exploded" in boom["diagnosis"]


def test_lr_range_test_on_digits(tmp_path):
    digits = load_digits()
    X = torch.as_tensor((digits.data - digits.data.mean(0)) / (digits.data.std(0) + 1e-8), dtype=torch.float32)
    y = torch.as_tensor(digits.target)
    model = _mlp("relu", "auto", depth=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_range_test(model, opt, torch.nn.functional.cross_entropy, X, y)
    assert 1e-4 <= result["suggested_lr"] <= 1e-1, result["suggested_lr"]
    assert result["stopped_early"]  # 10 is far past divergence for this model
    assert len(result["lrs"]) < 100 and result["lrs"][0] == pytest.approx(1e-7)
    ratios = [b / a for a, b in zip(result["lrs"], result["lrs"][1:])]
    assert max(ratios) == pytest.approx(min(ratios))  # geometric growth
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert opt.state_dict()["state"] == {}
    plot_lr_finder(result, tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
