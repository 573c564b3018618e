import pytest
import torch
from torch import nn

from nnrecipe.models import MLP, build_model


def test_shapes_and_parameter_count():
    m = MLP(64, 10, hidden=(512, 256), activation="relu", dropout=0.2)
    assert m(torch.randn(5, 64)).shape == (5, 10)
    expected = (64 * 512 + 512) + (512 * 256 + 256) + (256 * 10 + 10)
    assert sum(p.numel() for p in m.parameters()) == expected


@pytest.mark.parametrize("norm,kind", [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm), ("group", nn.GroupNorm)])
def test_norm_layers(norm, kind):
    m = MLP(8, 3, hidden=(16, 16), norm=norm)
    assert sum(isinstance(x, kind) for x in m.modules()) == 2


def test_group_norm_normalizes_each_sample_in_groups_of_features():
    torch.manual_seed(0)
    m = MLP(5, 2, hidden=(48,), norm="group")  # 48 features: G = 24, the largest divisor ≤ 32
    norm = next(x for x in m.modules() if isinstance(x, nn.GroupNorm))
    assert norm.num_groups == 24
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-1, 1)
    h = m.body[0](torch.randn(7, 5))
    groups = h.reshape(7, 24, 2)
    by_hand = (groups - groups.mean(-1, keepdim=True)) / torch.sqrt(groups.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(m.body[1](h), by_hand.reshape(7, 48) * norm.weight + norm.bias)
    built = build_model({"name": "mlp", "in_features": 5, "out_features": 2, "hidden": [48], "activation": "relu",
                         "norm": "group"})
    assert any(isinstance(x, nn.GroupNorm) for x in built.modules())


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="unknown norm"):
        MLP(4, 2, hidden=(8,), norm="instance")


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "relu6"])
def test_every_activation_builds(act):
    m = build_model({"name": "mlp", "in_features": 4, "out_features": 2, "hidden": [8], "activation": act})
    assert m(torch.randn(3, 4)).shape == (3, 2)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="mlp"):
        build_model({"name": "nope"})
