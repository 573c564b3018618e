import pytest
import torch
from torch import nn

from nnrecipe.models import MLP, build_model, summarize
from nnrecipe.models.shapes import conv_macs
from nnrecipe.models.summary import human


def _small_conv_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(128, 10))


def test_hand_computed_macs_params_and_shapes_of_a_small_conv_net():
    result = summarize(_small_conv_net(), (1, 1, 8, 8))
    rows = result["layers"]
    assert [r["name"] for r in rows] == [str(i) for i in range(8)]
    assert [r["type"] for r in rows] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "Flatten",
                                         "Dropout", "Linear"]
    assert [r["output_shape"] for r in rows] == [(4, 8, 8), (4, 8, 8), (4, 8, 8), (4, 4, 4), (8, 4, 4), (128,),
                                                 (128,), (10,)]
    # conv1: 3·3·1 weights per output, 4 channels × 8·8 positions; conv2: groups 2, so each output
    # sees 3·3·(4/2) inputs, 8 channels × 4·4 positions; linear: 128·10.
    macs = [9 * 1 * 4 * 64, 0, 0, 0, 9 * 2 * 8 * 16, 0, 0, 128 * 10]
    assert [r["macs"] for r in rows] == macs
    assert result["total_macs"] == sum(macs) == 2304 + 2304 + 1280
    params = [9 * 4 + 4, 2 * 4, 0, 0, 9 * 2 * 8 + 8, 0, 0, 128 * 10 + 10]
    assert [r["params"] for r in rows] == params
    assert result["total_params"] == result["trainable_params"] == sum(params)


@pytest.mark.parametrize("spec,shape", [
    ({"name": "cnn", "in_channels": 3, "image_size": [32, 32], "channels": [8, 16]}, (1, 3, 32, 32)),
    ({"name": "resnet", "in_channels": 1, "image_size": [8, 8], "widths": [8, 16], "blocks": [2, 1]}, (1, 1, 8, 8)),
    ({"name": "mobilenetv2", "in_channels": 1, "image_size": [8, 8], "width_mult": 0.25}, (1, 1, 8, 8)),
    ({"name": "vit", "in_channels": 1, "image_size": [8, 8], "dim": 16, "depth": 1, "heads": 2}, (1, 1, 8, 8)),
    ({"name": "mlp", "in_features": 64, "hidden": [32, 16], "activation": "relu", "norm": "batch"}, (1, 64)),
])
def test_totals_equal_the_model_parameters(spec, shape):
    model = build_model(spec | {"out_features": 10})
    result = summarize(model, shape)
    total = sum(p.numel() for p in model.parameters())
    assert result["total_params"] == total == sum(r["params"] for r in result["layers"])
    assert result["layers"][-1]["name"] == "head" and result["layers"][-1]["output_shape"] == (10,)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    rows = {r["name"]: r for r in result["layers"]}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            c, h, w = rows[name]["output_shape"]
            assert rows[name]["macs"] == conv_macs(m.kernel_size[0], m.in_channels, c, h, w, groups=m.groups)
    assert convs or spec["name"] == "mlp"


def test_linear_macs_count_every_row_but_the_batch():
    result = summarize(nn.Linear(16, 8), (3, 5, 16))  # 5 tokens per sample: 5·16·8 each
    assert result["layers"][0]["macs"] == 5 * 16 * 8 and result["layers"][0]["output_shape"] == (5, 8)


def test_trainable_params_and_mode_and_statistics_are_left_alone():
    model = MLP(8, 3, hidden=(16,), norm="batch")
    for p in model.body[0].parameters():
        p.requires_grad_(False)
    model.train()
    before = model.body[1].running_mean.clone()
    result = summarize(model, (1, 8))
    assert result["trainable_params"] == result["total_params"] - (8 * 16 + 16)
    assert model.training and torch.equal(model.body[1].running_mean, before)


class _Twice(nn.Module):
    """A layer called twice, a tied weight, a class-token parameter and a module never called."""

    def __init__(self):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(4))
        self.fc = nn.Linear(4, 4)
        self.tied = nn.Linear(4, 4)
        self.tied.weight = self.fc.weight
        self.unused = nn.Linear(4, 2)

    def forward(self, x):
        return self.tied(self.fc(self.fc(x + self.token)))


def test_repeated_calls_shared_and_unused_parameters():
    model = _Twice()
    result = summarize(model, (1, 4))
    rows = {r["name"]: r for r in result["layers"]}
    assert [r["name"] for r in result["layers"]] == ["", "fc", "tied", "unused"]
    assert rows[""]["params"] == 4 and rows["fc"]["macs"] == 2 * 16
    assert rows["tied"]["params"] == 4  # its weight is fc's, counted there; only its own bias
    assert rows["unused"]["output_shape"] is None and rows["unused"]["params"] == 10
    assert result["total_params"] == sum(r["params"] for r in result["layers"]) == sum(
        p.numel() for p in model.parameters())


@pytest.mark.parametrize("n,text", [(999, "999"), (1234, "1.23 K"), (1234567, "1.23 M"), (2.5e9, "2.5 G"), (0, "0")])
def test_human(n, text):
    assert human(n) == text
