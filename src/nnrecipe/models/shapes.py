"""Convolution arithmetic: output sizes, parameter counts and multiply-accumulates (MACs).

Output size along one spatial axis (Dumoulin & Visin 2016, "A guide to convolution arithmetic"):

    W_out = ⌊(W − K + 2P) / S⌋ + 1

P = "same" means P = (K − 1)/2, which keeps W_out = W at stride 1 (odd K only: an even kernel
would need asymmetric padding, which nn.Conv2d's integer padding cannot express); P = "valid"
means P = 0. Parameters of a K×K convolution with C_in → C_out channels in `groups` groups:

    K·K·(C_in/groups)·C_out  (+ C_out with a bias)

so a depthwise conv (groups = C_in = C_out = C) has K·K·C (+ C) and a 1×1 ("pointwise") conv
C_in·C_out (+ C_out). Its MACs for an H_out×W_out output are K·K·(C_in/groups)·C_out·H_out·W_out
(each output value is a dot product of length K·K·C_in/groups). These are the textbook formulas,
written out so tests and `summary` can check torch against them; torch has no function for them.
"""

from __future__ import annotations

Padding = int | str


def same_padding(kernel: int) -> int:
    """P = (K − 1)/2, the padding that keeps the size at stride 1; ValueError for even K."""
    if kernel < 1:
        raise ValueError(f"kernel size must be ≥ 1, got {kernel}")
    if kernel % 2 == 0:
        raise ValueError(f"'same' padding needs an odd kernel size, got {kernel} (use an explicit padding)")
    return (kernel - 1) // 2


def resolve_padding(padding: Padding, kernel: int) -> int:
    """An int padding as is; "same" → (K − 1)/2; "valid" → 0."""
    if padding == "same":
        return same_padding(kernel)
    if padding == "valid":
        return 0
    if isinstance(padding, str) or padding < 0:
        raise ValueError(f"padding must be an int ≥ 0, 'same' or 'valid', got {padding!r}")
    return padding


def conv_output_size(size: int, kernel: int, padding: Padding = 0, stride: int = 1) -> int:
    """⌊(W − K + 2P)/S⌋ + 1 for input size W, kernel K, padding P (int, "same", "valid"), stride S."""
    if size < 1 or kernel < 1 or stride < 1:
        raise ValueError(f"size, kernel and stride must be ≥ 1, got W={size}, K={kernel}, S={stride}")
    pad = resolve_padding(padding, kernel)
    if size + 2 * pad < kernel:
        raise ValueError(f"kernel {kernel} is larger than the padded input {size} + 2·{pad}")
    return (size - kernel + 2 * pad) // stride + 1


def conv_params(kernel: int, c_in: int, c_out: int, *, bias: bool = True, groups: int = 1) -> int:
    """K·K·(C_in/groups)·C_out + C_out (the bias term only with `bias`)."""
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide both C_in={c_in} and C_out={c_out}")
    return kernel * kernel * (c_in // groups) * c_out + (c_out if bias else 0)


def depthwise_conv_params(kernel: int, channels: int, *, bias: bool = True) -> int:
    """A depthwise conv (groups = C_in = C_out = C): K·K·C + C."""
    return conv_params(kernel, channels, channels, bias=bias, groups=channels)


def pointwise_conv_params(c_in: int, c_out: int, *, bias: bool = True) -> int:
    """A 1×1 conv: C_in·C_out + C_out."""
    return conv_params(1, c_in, c_out, bias=bias)


def conv_macs(kernel: int, c_in: int, c_out: int, h_out: int, w_out: int, *, groups: int = 1) -> int:
    """K·K·(C_in/groups)·C_out·H_out·W_out multiply-accumulates for one image."""
    return conv_params(kernel, c_in, c_out, bias=False, groups=groups) * h_out * w_out
