import pytest
import torch
from torch import nn

from nnrecipe.models import MLP, build_model


def test_shapes_and_parameter_count():
    m = MLP(64, 10, hidden=(512, 256), activation="relu", dropout=0.2)
    assert m(torch.randn(5, 64)).shape == (5, 10)
    expected = (64 * 512 + 512) + (512 * 256 + 256) + (256 * 10 + 10)
    assert sum(p.numel() for p in m.parameters()) == expected


@pytest.mark.parametrize("norm,kind", [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_norm_layers(norm, kind):
    m = MLP(8, 3, hidden=(16, 16), norm=norm)
    assert sum(isinstance(x, kind) for x in m.modules()) == 2


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "relu6"])
def test_every_activation_builds(act):
    m = build_model({"name": "mlp", "in_features": 4, "out_features": 2, "hidden": [8], "activation": act})
    assert m(torch.randn(3, 4)).shape == (3, 2)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="mlp"):
        build_model({"name": "nope"})
