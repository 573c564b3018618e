"""Building blocks of the conv nets: conv → norm → activation, pooling, residual and inverted residual.

- `ConvNormAct`: y = act(norm(W ∗ x)), K×K "same"-style padding P = ⌊(K − 1)/2⌋, so the size is
  ⌈W/S⌉ for odd K. The conv has no bias when a norm follows: the norm subtracts the mean and
  adds its own β, so a bias would be cancelled (exactly for batch norm) — torchvision's convention.
- `norm2d(kind, C)`: "batch" → BatchNorm2d (Ioffe & Szegedy 2015): batch statistics over (N, H, W)
  in train mode, running averages in eval mode; "group" → GroupNorm (Wu & He 2018) with G = the
  largest divisor of C that is ≤ 32 (the paper's G = 32 where C allows it, e.g. 48 → 24, 3 → 3);
  "layer" → GroupNorm(1, C), i.e. layer norm over (C, H, W) per sample with a per-channel γ, β;
  "none" → no layer (None). Group and layer norm do not depend on the batch.
- `DepthwiseSeparable` (Howard et al. 2017, MobileNet): depthwise 3×3 (groups = C_in) → norm → act
  → pointwise 1×1 → norm → act; 9·C_in + C_in·C_out weights instead of 9·C_in·C_out.
- `BasicBlock` (He et al. 2016, ResNet v1): y = act(F(x) + s(x)), F = conv3×3 → norm → act →
  conv3×3 → norm, s = identity or, when the stride or width changes, a 1×1 conv (stride S) → norm.
  The activation after the sum is the paper's, so with F zeroed (`zero_init_residual_branches`,
  Goyal et al. 2017) an identity-shortcut block computes act(x), not x.
- `InvertedResidual` (Sandler et al. 2018, MobileNetV2): expand 1×1 to t·C_in → ReLU6 → depthwise
  3×3 (stride S) → ReLU6 → project 1×1 to C_out with no activation (the "linear bottleneck": a
  ReLU on the narrow output would destroy information); y = x + F(x) when S = 1 and C_in = C_out,
  else F(x). t = 1 has no expansion conv. ReLU6(x) = min(max(0, x), 6).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nnrecipe.models.mlp import group_count, make_activation

NORMS = ("batch", "group", "layer", "none")
POOLS = ("max", "avg")


def norm2d(kind: str, channels: int) -> nn.Module | None:
    """A 2-d normalization layer over `channels` (see the module docstring); None for "none"."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(group_count(channels), channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return None
    raise ValueError(f"unknown norm '{kind}'; choose one of {', '.join(NORMS)}")


def pool2d(kind: str, kernel: int = 2, stride: int | None = None) -> nn.Module:
    """K×K max or average pooling (stride K by default); no parameters."""
    if kind == "max":
        return nn.MaxPool2d(kernel, stride)
    if kind == "avg":
        return nn.AvgPool2d(kernel, stride)
    raise ValueError(f"unknown pooling '{kind}'; choose one of {', '.join(POOLS)}")


def conv1x1(c_in: int, c_out: int, *, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """A 1×1 (pointwise) convolution: a per-pixel linear map of the channels."""
    return nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=bias)


class ConvNormAct(nn.Sequential):
    """conv K×K → norm → activation, children named ``conv``, ``norm``, ``act`` (those present).

    `activation` None gives a linear block (the residual branch end, a projection shortcut).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, *, stride: int = 1, groups: int = 1,
                 norm: str = "batch", activation: str | None = "relu", negative_slope: float = 0.01):
        norm_layer = norm2d(norm, c_out)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups,
                                   bias=norm_layer is None)
        if norm_layer is not None:
            layers["norm"] = norm_layer
        if activation is not None:
            layers["act"] = make_activation(activation, negative_slope=negative_slope)
        super().__init__(layers)

    @property
    def last_affine(self) -> nn.Module:
        """The norm if there is one, else the conv: what zeroing makes this block output ≈ 0."""
        return self.norm if "norm" in self._modules else self.conv


def projection(c_in: int, c_out: int, *, stride: int = 1, norm: str = "batch") -> ConvNormAct:
    """The 1×1 conv (stride S) → norm shortcut used when a residual block changes shape."""
    return ConvNormAct(c_in, c_out, 1, stride=stride, norm=norm, activation=None)


class DepthwiseSeparable(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, stride: int = 1, norm: str = "batch", activation: str = "relu",
                 negative_slope: float = 0.01):
        super().__init__()
        self.depthwise = ConvNormAct(c_in, c_in, 3, stride=stride, groups=c_in, norm=norm, activation=activation,
                                     negative_slope=negative_slope)
        self.pointwise = ConvNormAct(c_in, c_out, 1, norm=norm, activation=activation, negative_slope=negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, stride: int = 1, norm: str = "batch", activation: str = "relu",
                 negative_slope: float = 0.01):
        super().__init__()
        self.conv1 = ConvNormAct(c_in, c_out, 3, stride=stride, norm=norm, activation=activation,
                                 negative_slope=negative_slope)
        self.conv2 = ConvNormAct(c_out, c_out, 3, norm=norm, activation=None)
        self.shortcut = (projection(c_in, c_out, stride=stride, norm=norm) if stride != 1 or c_in != c_out
                         else nn.Identity())
        self.act = make_activation(activation, negative_slope=negative_slope)

    @property
    def residual_last(self) -> nn.Module:
        """The branch's last norm (or conv), zeroed by ``zero_init_residual_branches``. A property,
        not an attribute: assigning a module would register it twice (duplicate state-dict keys)."""
        return self.conv2.last_affine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, stride: int = 1, expand_ratio: float = 6, norm: str = "batch",
                 activation: str = "relu6"):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        hidden = int(round(c_in * expand_ratio))
        self.use_residual = stride == 1 and c_in == c_out
        self.expand = (ConvNormAct(c_in, hidden, 1, norm=norm, activation=activation) if expand_ratio != 1
                       else None)
        self.depthwise = ConvNormAct(hidden, hidden, 3, stride=stride, groups=hidden, norm=norm,
                                     activation=activation)
        self.project = ConvNormAct(hidden, c_out, 1, norm=norm, activation=None)  # linear bottleneck

    @property
    def residual_last(self) -> nn.Module | None:
        """The project norm (or conv) when there is a residual; None (nothing to zero) otherwise."""
        return self.project.last_affine if self.use_residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
        return x + out if self.use_residual else out
