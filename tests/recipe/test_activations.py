"""activation_stats / summarize_activations: each verdict provoked by the init that causes it."""

from __future__ import annotations

import json

import torch

from nnrecipe.config import InitConfig
from nnrecipe.models import MLP
from nnrecipe.recipe.activations import FIXES, activation_stats, summarize_activations
from nnrecipe.training.init import initialize

KEYS = {"layer", "mean", "std", "dead_fraction", "saturated_fraction", "verdict"}


def _mlp(activation, init, *, width=256, depth=6, inputs=64, **kw):
    torch.manual_seed(0)
    model = MLP(inputs, 10, hidden=(width,) * depth, activation=activation)
    initialize(model, InitConfig(name=init, **kw), activation=activation)
    return model


def _inputs(n=256, d=64):
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(0))
    return (X - X.mean(0)) / X.std(0)  # standardized


def _summary(model, activation):
    stats = activation_stats(model, _inputs(), activation=activation)
    return stats, summarize_activations(stats)


def test_tanh_with_tiny_normal_init_collapses():
    stats, summary = _summary(_mlp("tanh", "normal", std=0.01), "tanh")
    assert len(stats) == 6 and all(KEYS <= set(s) for s in stats)
    assert stats[-1]["std"] < 0.1 * stats[0]["std"] and stats[-1]["std"] < 0.05
    assert summary["verdict"] == "collapse" and stats[-1]["layer"] in summary["layers"]
    assert "Xavier for tanh/sigmoid, Kaiming for ReLU" in summary["fix"]


def test_tanh_with_unit_normal_init_on_wide_layers_saturates():
    stats, summary = _summary(_mlp("tanh", "normal", width=512, std=1.0), "tanh")
    assert summary["verdict"] == "saturation"
    assert max(s["saturated_fraction"] for s in stats) > 0.3
    assert "lower the init scale" in summary["fix"]


def test_xavier_tanh_is_healthy():
    stats, summary = _summary(_mlp("tanh", "xavier_uniform"), "tanh")
    assert summary == {"verdict": "healthy", "layers": [], "fix": None}
    assert all(s["verdict"] == "healthy" for s in stats)
    assert all(s["saturated_fraction"] <= 0.3 for s in stats)


def test_kaiming_relu_is_healthy():
    stats, summary = _summary(_mlp("relu", "kaiming_normal"), "relu")
    assert summary["verdict"] == "healthy"
    assert all(0.3 < s["zero_fraction"] < 0.7 for s in stats)  # half the entries are 0: normal for ReLU
    assert all(s["dead_fraction"] < 0.5 for s in stats)


def test_relu_with_unit_normal_init_explodes():
    stats, summary = _summary(_mlp("relu", "normal", std=1.0), "relu")
    assert summary["verdict"] == "explosion" and stats[-1]["std"] > 10 * stats[0]["std"]
    assert "lower the init scale" in summary["fix"]


def test_relu_units_off_for_the_whole_batch_are_dead():
    model = _mlp("relu", "kaiming_normal", depth=2)
    with torch.no_grad():
        model.body[0].bias.fill_(-100.0)
    stats, summary = _summary(model, "relu")
    assert stats[0]["dead_fraction"] == 1.0 and summary["verdict"] == "dead"
    assert summary["layers"][0] == "body.1" and summary["fix"] == FIXES["dead"]


def test_sigmoid_saturation_counts_both_tails():
    stats, _ = _summary(_mlp("sigmoid", "normal", width=512, std=1.0, depth=2), "sigmoid")
    assert stats[0]["saturated_fraction"] > 0.3 and stats[0]["dead_fraction"] == 0.0


def test_hooks_removed_mode_restored_and_json_serializable():
    model = _mlp("relu", "auto", depth=3).train()
    stats = activation_stats(model, _inputs(), activation="relu")
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    assert [s["layer"] for s in stats] == ["body.1", "body.3", "body.5"]
    json.dumps(stats)
    json.dumps(summarize_activations(stats))


def test_a_model_without_activation_modules_is_healthy():
    stats = activation_stats(torch.nn.Linear(64, 10), _inputs(), activation="relu")
    assert stats == [] and summarize_activations(stats)["verdict"] == "healthy"
