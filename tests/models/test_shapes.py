import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.models import conv_output_size
from nnrecipe.models.shapes import (conv_macs, conv_params, depthwise_conv_params, pointwise_conv_params,
                                    same_padding)


@pytest.mark.parametrize("kernel,stride", list(itertools.product([1, 2, 3, 5], [1, 2, 3])))
def test_conv_output_size_matches_the_formula_and_torch(kernel, stride):
    for size, pad in itertools.product([1, 2, 4, 7, 8, 13], [0, 1, 2]):
        if size + 2 * pad < kernel:
            with pytest.raises(ValueError, match="larger than the padded input"):
                conv_output_size(size, kernel, pad, stride)
            continue
        got = conv_output_size(size, kernel, pad, stride)
        assert got == (size - kernel + 2 * pad) // stride + 1
        # Different height and width, so both axes of a real conv are checked.
        x = torch.zeros(1, 1, size, size + 3)
        y = F.conv2d(x, torch.zeros(1, 1, kernel, kernel), padding=pad, stride=stride)
        assert y.shape[2:] == (got, conv_output_size(size + 3, kernel, pad, stride))


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_same_padding_keeps_the_size_at_stride_one(kernel):
    assert same_padding(kernel) == (kernel - 1) // 2
    for size in (kernel, 8, 9):
        assert conv_output_size(size, kernel, "same", 1) == size
        conv = nn.Conv2d(1, 1, kernel, padding="same")
        assert conv(torch.zeros(1, 1, size, size)).shape[2:] == (size, size)
    assert conv_output_size(9, kernel, "same", 2) == (9 - 1) // 2 + 1  # ⌈W/S⌉ with odd K


def test_valid_padding_is_zero_and_bad_paddings_fail():
    assert conv_output_size(8, 3, "valid", 1) == conv_output_size(8, 3, 0, 1) == 6
    with pytest.raises(ValueError, match="odd kernel"):
        conv_output_size(8, 4, "same", 1)
    with pytest.raises(ValueError, match="padding"):
        conv_output_size(8, 3, "full", 1)
    with pytest.raises(ValueError, match="padding"):
        conv_output_size(8, 3, -1, 1)
    with pytest.raises(ValueError, match="≥ 1"):
        conv_output_size(8, 3, 0, 0)


@pytest.mark.parametrize("kernel,c_in,c_out,groups,bias",
                         [(3, 3, 16, 1, True), (3, 3, 16, 1, False), (5, 8, 4, 1, True),  # normal
                          (3, 12, 12, 12, False), (5, 7, 7, 7, True),  # depthwise
                          (1, 16, 32, 1, True), (1, 16, 32, 1, False),  # 1×1
                          (3, 8, 16, 4, True)])  # grouped
def test_conv_params_equals_torch_numel(kernel, c_in, c_out, groups, bias):
    conv = nn.Conv2d(c_in, c_out, kernel, groups=groups, bias=bias)
    numel = sum(p.numel() for p in conv.parameters())
    assert conv_params(kernel, c_in, c_out, bias=bias, groups=groups) == numel
    assert numel == kernel * kernel * (c_in // groups) * c_out + (c_out if bias else 0)


def test_depthwise_and_pointwise_helpers():
    assert depthwise_conv_params(3, 12) == sum(p.numel() for p in nn.Conv2d(12, 12, 3, groups=12).parameters())
    assert depthwise_conv_params(3, 12) == 9 * 12 + 12
    assert depthwise_conv_params(3, 12, bias=False) == 9 * 12
    assert pointwise_conv_params(16, 32) == sum(p.numel() for p in nn.Conv2d(16, 32, 1).parameters())
    assert pointwise_conv_params(16, 32, bias=False) == 16 * 32
    with pytest.raises(ValueError, match="groups"):
        conv_params(3, 6, 8, groups=4)


def test_conv_macs_counts_one_dot_product_per_output_value():
    # 3×3 conv 4 → 8 channels on an 8×8 map (same padding): 64 outputs per channel, each a dot
    # product of length 3·3·4 = 36 → 36·8·64.
    assert conv_macs(3, 4, 8, 8, 8) == 36 * 8 * 64
    assert conv_macs(3, 8, 8, 4, 4, groups=8) == 9 * 8 * 16  # depthwise: length-9 dot products
