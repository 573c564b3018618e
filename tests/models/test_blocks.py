import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import InitConfig
from nnrecipe.models.blocks import (BasicBlock, ConvNormAct, DepthwiseSeparable, InvertedResidual, conv1x1,
                                    group_count, norm2d, pool2d, projection)
from nnrecipe.models.shapes import conv_params, depthwise_conv_params, pointwise_conv_params
from nnrecipe.training.init import initialize, zero_init_residual_branches


def _numel(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- normalization --------------------------------------------------------------------------------

def test_norm_factory_kinds():
    assert isinstance(norm2d("batch", 16), nn.BatchNorm2d)
    layer = norm2d("layer", 16)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == 1
    group = norm2d("group", 64)
    assert isinstance(group, nn.GroupNorm) and group.num_groups == 32
    assert norm2d("none", 16) is None
    with pytest.raises(ValueError, match="batch, group, layer, none"):
        norm2d("instance", 16)


@pytest.mark.parametrize("channels,groups", [(64, 32), (32, 32), (48, 24), (40, 20), (16, 16), (3, 3), (1, 1)])
def test_group_count_is_the_largest_divisor_up_to_32(channels, groups):
    assert group_count(channels) == groups
    assert channels % groups == 0


def test_layer_norm_normalizes_each_sample_over_channels_height_width():
    x = _x(4, 6, 5, 5) * 3 + 2
    torch.testing.assert_close(norm2d("layer", 6)(x), F.layer_norm(x, x.shape[1:]))


def test_group_norm_normalizes_each_group_of_channels():
    x = _x(2, 48, 3, 3) * 2 - 1
    g = x.reshape(2, 24, -1)  # 24 groups of 2 channels
    expected = ((g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + 1e-5))
    torch.testing.assert_close(norm2d("group", 48)(x), expected.reshape_as(x))


def test_batch_norm_uses_batch_statistics_in_train_and_running_averages_in_eval():
    torch.manual_seed(0)
    block = ConvNormAct(3, 4, 3, norm="batch", activation=None)
    x = _x(8, 3, 6, 6) + 1.5
    y = block.conv(x)
    mean, var = y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=False)
    out = block.train()(x)
    eps, m = block.norm.eps, block.norm.momentum
    torch.testing.assert_close(out, (y - mean[:, None, None]) / torch.sqrt(var[:, None, None] + eps))
    # Running averages: r ← (1 − m)·r + m·batch statistic (unbiased variance), from r = (0, 1).
    n = y.numel() // 4
    torch.testing.assert_close(block.norm.running_mean, m * mean.detach())
    torch.testing.assert_close(block.norm.running_var, (1 - m) + m * var.detach() * n / (n - 1))
    out_eval = block.eval()(x)
    r_mean, r_var = block.norm.running_mean, block.norm.running_var
    torch.testing.assert_close(out_eval, (y - r_mean[:, None, None]) / torch.sqrt(r_var[:, None, None] + eps))
    assert not torch.allclose(out_eval, out)


# --- conv → norm → act, pooling, projections ------------------------------------------------------

@pytest.mark.parametrize("kernel,stride,size,expected", [(3, 1, 8, 8), (3, 2, 8, 4), (3, 2, 7, 4), (1, 1, 5, 5),
                                                         (5, 2, 9, 5)])
def test_conv_norm_act_shape(kernel, stride, size, expected):
    block = ConvNormAct(3, 8, kernel, stride=stride)
    assert block(_x(2, 3, size, size)).shape == (2, 8, expected, expected)
    assert list(block._modules) == ["conv", "norm", "act"]


@pytest.mark.parametrize("norm,extra", [("batch", 2 * 16), ("group", 2 * 16), ("layer", 2 * 16), ("none", 16)])
def test_conv_norm_act_parameters(norm, extra):
    # With a norm the conv has no bias (β replaces it); without one the conv keeps its C_out biases.
    block = ConvNormAct(8, 16, 3, norm=norm)
    assert _numel(block) == conv_params(3, 8, 16, bias=False) + extra
    assert (block.conv.bias is None) == (norm != "none")


def test_conv_norm_act_order_and_activation():
    block = ConvNormAct(2, 4, 3, norm="layer", activation="leaky_relu", negative_slope=0.2).eval()
    x = _x(3, 2, 5, 5)
    torch.testing.assert_close(block(x), F.leaky_relu(F.group_norm(block.conv(x), 1), 0.2))
    assert "act" not in ConvNormAct(2, 4, activation=None)._modules


@pytest.mark.parametrize("kind,fn", [("max", F.max_pool2d), ("avg", F.avg_pool2d)])
def test_pooling_has_no_parameters(kind, fn):
    pool = pool2d(kind, 2)
    x = _x(2, 3, 8, 6)
    assert _numel(pool) == 0
    assert pool(x).shape == (2, 3, 4, 3)
    torch.testing.assert_close(pool(x), fn(x, 2))
    with pytest.raises(ValueError, match="max, avg"):
        pool2d("min")


def test_1x1_projection():
    conv = conv1x1(16, 32, stride=2)
    assert _numel(conv) == pointwise_conv_params(16, 32, bias=False)
    assert conv(_x(1, 16, 8, 8)).shape == (1, 32, 4, 4)
    proj = projection(16, 32, stride=2)
    assert _numel(proj) == pointwise_conv_params(16, 32, bias=False) + 2 * 32
    assert proj(_x(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_depthwise_separable():
    block = DepthwiseSeparable(8, 16, stride=2)
    assert block(_x(2, 8, 8, 8)).shape == (2, 16, 4, 4)
    assert block.depthwise.conv.groups == 8 and block.pointwise.conv.kernel_size == (1, 1)
    expected = (depthwise_conv_params(3, 8, bias=False) + 2 * 8) + (pointwise_conv_params(8, 16, bias=False) + 2 * 16)
    assert _numel(block) == expected
    assert expected < conv_params(3, 8, 16, bias=False)  # the point of the factorization


# --- ResNet basic block ---------------------------------------------------------------------------

def test_basic_block_identity_and_projection_shortcuts():
    same = BasicBlock(8, 8)
    assert isinstance(same.shortcut, nn.Identity)
    assert same(_x(2, 8, 6, 6)).shape == (2, 8, 6, 6)
    assert _numel(same) == 2 * (conv_params(3, 8, 8, bias=False) + 2 * 8)
    down = BasicBlock(8, 16, stride=2)
    assert isinstance(down.shortcut, ConvNormAct) and down.shortcut.conv.stride == (2, 2)
    assert down(_x(2, 8, 6, 6)).shape == (2, 16, 3, 3)
    assert _numel(down) == (conv_params(3, 8, 16, bias=False) + conv_params(3, 16, 16, bias=False) + 2 * 2 * 16
                            + pointwise_conv_params(8, 16, bias=False) + 2 * 16)
    assert isinstance(BasicBlock(8, 16).shortcut, ConvNormAct)  # width change at stride 1 too


@pytest.mark.parametrize("norm", ["batch", "group", "layer"])
def test_zeroed_basic_block_computes_relu_of_its_input(norm):
    # ResNet v1 applies the activation after the sum: y = relu(F(x) + x), so F = 0 gives relu(x).
    torch.manual_seed(0)
    block = BasicBlock(8, 8, norm=norm)
    x = _x(4, 8, 5, 5)
    assert block.residual_last is block.conv2.norm
    assert not torch.allclose(block(x), F.relu(x))
    assert zero_init_residual_branches(block) == 1
    torch.testing.assert_close(block(x), F.relu(x))


def test_zeroed_basic_block_without_norm_zeroes_the_last_conv():
    torch.manual_seed(0)
    block = BasicBlock(4, 4, norm="none")
    assert block.residual_last is block.conv2.conv
    initialize(block, InitConfig(zero_init_residual=True), activation="relu")  # biases 0, last conv 0
    x = _x(2, 4, 5, 5)
    torch.testing.assert_close(block(x), F.relu(x))


def test_zeroed_projection_block_computes_relu_of_the_shortcut():
    torch.manual_seed(0)
    block = BasicBlock(4, 8, stride=2)
    zero_init_residual_branches(block)
    x = _x(2, 4, 6, 6)
    torch.testing.assert_close(block(x), F.relu(block.shortcut(x)))


def test_residual_last_is_not_registered_twice():
    # A second registration would duplicate state-dict keys (safetensors refuses shared tensors).
    for block in (BasicBlock(4, 4), InvertedResidual(8, 8, expand_ratio=2)):
        names = [n for n, _ in block.named_parameters(remove_duplicate=False)]
        assert len(names) == len(set(p for p in block.parameters())) and not any("residual_last" in n for n in names)


# --- MobileNetV2 inverted residual ----------------------------------------------------------------

def _inverted_params(c_in: int, c_out: int, t: int) -> int:
    hidden = c_in * t
    expand = pointwise_conv_params(c_in, hidden, bias=False) + 2 * hidden if t != 1 else 0
    return (expand + depthwise_conv_params(3, hidden, bias=False) + 2 * hidden
            + pointwise_conv_params(hidden, c_out, bias=False) + 2 * c_out)


@pytest.mark.parametrize("c_in,c_out,stride,t,residual", [(8, 8, 1, 6, True), (8, 16, 1, 6, False),
                                                          (8, 8, 2, 6, False), (16, 8, 1, 1, False),
                                                          (8, 8, 1, 1, True)])
def test_inverted_residual_shape_parameters_and_residual(c_in, c_out, stride, t, residual):
    block = InvertedResidual(c_in, c_out, stride=stride, expand_ratio=t)
    out = block(_x(2, c_in, 8, 8))
    assert out.shape == (2, c_out, 8 // stride, 8 // stride)
    assert _numel(block) == _inverted_params(c_in, c_out, t)
    assert (block.expand is None) == (t == 1)
    assert block.use_residual is residual
    assert (block.residual_last is block.project.norm) if residual else block.residual_last is None


def test_inverted_residual_adds_the_input_and_ends_linear():
    torch.manual_seed(0)
    block = InvertedResidual(8, 8, expand_ratio=4).eval()
    x = _x(2, 8, 5, 5)
    branch = block.project(block.depthwise(block.expand(x)))
    torch.testing.assert_close(block(x), x + branch)
    assert (branch < 0).any()  # no activation after the projection: the bottleneck is linear
    assert zero_init_residual_branches(block) == 1
    torch.testing.assert_close(block(x), x)  # zeroed project norm: exactly the identity, no ReLU after
    assert zero_init_residual_branches(InvertedResidual(8, 16)) == 0


def test_inverted_residual_uses_relu6_which_clamps_to_0_6():
    block = InvertedResidual(4, 4, expand_ratio=6)
    acts = [m for m in block.modules() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.GELU, nn.LeakyReLU))]
    assert len(acts) == 2 and all(isinstance(a, nn.ReLU6) for a in acts)
    x = torch.linspace(-10, 10, 101)
    torch.testing.assert_close(acts[0](x), torch.minimum(torch.maximum(x, torch.zeros(())), torch.full((), 6.0)))
    seen = []
    block.depthwise.act.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        block.depthwise.norm.weight.fill_(50)  # γ = 50: normalized pre-activations reach far past ±6
        block(_x(2, 4, 6, 6))
    assert seen[0].max() == 6 and seen[0].min() == 0
