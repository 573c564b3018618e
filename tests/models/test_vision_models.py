import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from nnrecipe.config import InitConfig
from nnrecipe.models import MODELS, build_model
from nnrecipe.models.blocks import BasicBlock, InvertedResidual
from nnrecipe.models.mobilenetv2 import SMALL_IMAGE_SETTINGS, make_divisible
from nnrecipe.models.shapes import conv_params
from nnrecipe.training.init import initialize

NAMES = ["cnn", "resnet", "mobilenetv2"]
SMALL = {"cnn": {"channels": [8, 16], "convs_per_stage": 1}, "resnet": {"widths": [8, 16], "blocks": [1, 1]},
         "mobilenetv2": {"width_mult": 0.25, "last_channels": 32}}
SIZES = [(1, 8), (3, 32)]


def _spec(name: str, c: int = 1, s: int = 8, **kw) -> dict:
    return {"name": name, "in_channels": c, "image_size": [s, s], "out_features": 5} | kw


def _numel(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def test_registered():
    assert set(NAMES) <= set(MODELS)


# Final feature map per model and input size: cnn pools while ≥ 4 (8 → 4 → 2, 32 → 16 → 8), resnet
# strides 2 in stages 2 and 3 (8 → 4 → 2, 32 → 16 → 8), mobilenetv2 in stages 3, 4, 6 (8 → 1, 32 → 4).
FINAL = {("cnn", 8): 2, ("cnn", 32): 8, ("resnet", 8): 2, ("resnet", 32): 8, ("mobilenetv2", 8): 1,
         ("mobilenetv2", 32): 4}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c,s", SIZES)
def test_default_models_give_logits_and_share_one_structure(name, c, s):
    torch.manual_seed(0)
    m = build_model(_spec(name, c, s, dropout=0.3)).eval()
    x = _x(2, c, s, s)
    logits = m(x)
    assert logits.shape == (2, 5)
    assert isinstance(m.features, nn.Sequential)
    stages = [n for n, _ in m.features.named_children()]
    assert all(not n.isdigit() for n in stages) and stages[-1] != "head"
    assert [type(p) for p in m.pool] == [nn.AdaptiveAvgPool2d, nn.Flatten]
    assert isinstance(m.dropout, nn.Dropout) and m.dropout.p == 0.3
    assert [x for x in m.modules() if isinstance(x, nn.Linear)][-1] is m.head
    feats = m.features(x)
    assert feats.shape[2:] == (FINAL[name, s], FINAL[name, s]) and m.head.in_features == feats.shape[1]
    torch.testing.assert_close(logits, m.head(m.dropout(m.pool(feats))))


def test_cnn_parameter_count_and_pooling_rule():
    m = build_model(_spec("cnn", 3, 32, channels=[16, 32, 64], convs_per_stage=2))
    convs = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    expected = sum(conv_params(3, a, b, bias=False) + 2 * b for a, b in convs) + 64 * 5 + 5
    assert _numel(m) == expected
    assert list(dict(m.features.named_children())) == ["stage1", "stage2", "stage3"]
    pools = [sum(isinstance(x, nn.MaxPool2d) for x in stage.modules()) for stage in m.features]
    assert pools == [1, 1, 1]  # 32 → 16 → 8 → 4
    digits = build_model(_spec("cnn", 1, 8, channels=[8, 8, 8]))
    assert [sum(isinstance(x, nn.MaxPool2d) for x in st.modules()) for st in digits.features] == [1, 1, 0]


def _resnet_params(c_in: int, widths: list[int], blocks: list[int], classes: int) -> int:
    total = conv_params(3, c_in, widths[0], bias=False) + 2 * widths[0]
    width = widths[0]
    for i, (w, n) in enumerate(zip(widths, blocks)):
        for j in range(n):
            total += conv_params(3, width, w, bias=False) + conv_params(3, w, w, bias=False) + 4 * w
            if width != w or (i > 0 and j == 0):
                total += conv_params(1, width, w, bias=False) + 2 * w
            width = w
    return total + width * classes + classes


def test_resnet_parameter_count_and_downsampling():
    m = build_model(_spec("resnet", 3, 32))
    assert _numel(m) == _resnet_params(3, [32, 64, 128], [2, 2, 2], 5)
    assert list(dict(m.features.named_children())) == ["stem", "stage1", "stage2", "stage3"]
    assert sum(isinstance(b, BasicBlock) for b in m.modules()) == 6
    assert not any(isinstance(x, nn.MaxPool2d) for x in m.modules())
    strides = [stage[0].conv1.conv.stride[0] for stage in list(m.features)[1:]]
    assert strides == [1, 2, 2]
    # A 2×2 image stops downsampling once the map is 1 pixel: 2 → 1 → 1.
    tiny = build_model(_spec("resnet", 1, 2))
    assert [stage[0].conv1.conv.stride[0] for stage in list(tiny.features)[1:]] == [1, 2, 1]
    assert tiny(_x(2, 1, 2, 2)).shape == (2, 5)


@pytest.mark.parametrize("value,expected", [(32, 32), (11.2, 16), (8, 8), (3, 8), (20, 24), (18, 24), (100, 104),
                                            (1280, 1280)])
def test_make_divisible(value, expected):
    # 11.2 → 8 would lose 29 % (> 10 %), so 16; 18 → 16 loses 11 %, so 24; small values floor at 8.
    assert make_divisible(value) == expected


def test_mobilenetv2_width_multiplier_and_last_channels():
    m = build_model(_spec("mobilenetv2", 3, 32, width_mult=0.5, last_channels=128))
    stages = list(dict(m.features.named_children()))
    assert stages == ["stem", *(f"stage{i}" for i in range(1, 8)), "last_conv"]
    assert m.features.stem.conv.out_channels == make_divisible(32 * 0.5)
    for (t, c, n, s), name in zip(SMALL_IMAGE_SETTINGS, stages[1:-1]):
        stage = getattr(m.features, name)
        assert len(stage) == n and all(b.project.conv.out_channels == make_divisible(c * 0.5) for b in stage)
        assert all((b.expand is None) == (t == 1) for b in stage)
    assert m.head.in_features == 128  # last_channels·max(1, α): not shrunk below the setting
    assert build_model(_spec("mobilenetv2", width_mult=2.0, last_channels=128)).head.in_features == 256
    assert _numel(m) < _numel(build_model(_spec("mobilenetv2", 3, 32, last_channels=128)))
    residual = [b.use_residual for b in m.modules() if isinstance(b, InvertedResidual)]
    assert sum(residual) == sum(n - 1 for _, _, n, _ in SMALL_IMAGE_SETTINGS)  # every repeat, never a first block


def test_mobilenetv2_uses_relu6_whatever_the_activation():
    m = build_model(_spec("mobilenetv2", width_mult=0.25, activation="gelu"))
    kinds = {type(x) for x in m.modules() if isinstance(x, (nn.ReLU, nn.ReLU6, nn.GELU, nn.LeakyReLU))}
    assert kinds == {nn.ReLU6}


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_activation_and_norm_are_selectable(name):
    m = build_model(_spec(name, activation="leaky_relu", negative_slope=0.2, norm="group", **SMALL[name]))
    assert any(isinstance(x, nn.LeakyReLU) and x.negative_slope == 0.2 for x in m.modules())
    assert not any(isinstance(x, (nn.ReLU, nn.BatchNorm2d)) for x in m.modules())
    assert any(isinstance(x, nn.GroupNorm) for x in m.modules())
    bare = build_model(_spec(name, norm="none", **SMALL[name]))
    assert not any(isinstance(x, (nn.BatchNorm2d, nn.GroupNorm)) for x in bare.modules())
    # Group and layer norm do not mix samples: one image gives the same logits alone or in a batch.
    for norm in ("group", "layer"):
        m = build_model(_spec(name, norm=norm, **SMALL[name])).train()
        x = _x(4, 1, 8, 8)
        torch.testing.assert_close(m(x)[:1], m(x[:1]))


def test_bad_specs():
    with pytest.raises(ValueError, match="widths"):
        build_model(_spec("resnet", widths=[8, 16], blocks=[1]))
    with pytest.raises(ValueError, match="≥ 1 block"):
        build_model(_spec("resnet", widths=[8, 16], blocks=[1, 0]))
    with pytest.raises(ValueError, match="channels"):
        build_model(_spec("cnn", channels=[]))
    with pytest.raises(ValueError, match="convs_per_stage"):
        build_model(_spec("cnn", convs_per_stage=0))
    with pytest.raises(ValueError, match="unknown norm"):
        build_model(_spec("cnn", norm="instance"))
    with pytest.raises(ValueError, match="width_mult"):
        build_model(_spec("mobilenetv2", width_mult=0))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        build_model(_spec("cnn") | {"image_size": [8, 8, 8]})


@pytest.mark.parametrize("name", NAMES)
def test_init_zeroes_residual_branches_and_weights_save(name, tmp_path):
    m = build_model(_spec(name, **SMALL[name]))
    initialize(m, InitConfig(), activation="relu")
    lasts = [b.residual_last for b in m.modules() if getattr(b, "residual_last", None) is not None]
    blocks = [b for b in m.modules() if isinstance(b, (BasicBlock, InvertedResidual))]
    # Every basic block; the inverted residuals that add their input (at α = 0.25 also the first
    # blocks of stages 1 and 2, whose widths round to 8 = their input's).
    assert len(lasts) == sum(isinstance(b, BasicBlock) or b.use_residual for b in blocks)
    assert len(lasts) == {"cnn": 0, "resnet": 2, "mobilenetv2": 12}[name]
    assert all(torch.all(last.weight == 0) for last in lasts)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "w.safetensors"))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c,s", SIZES)
def test_trains_on_a_tiny_fixed_batch(name, c, s):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, c, s, s, generator=g), torch.randint(0, 5, (16,), generator=g)
    m = build_model(_spec(name, c, s, **SMALL[name]))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(m(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.7 * losses[0]
