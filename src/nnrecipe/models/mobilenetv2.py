"""MobileNetV2 for small images (Sandler et al. 2018, "Inverted Residuals and Linear Bottlenecks").

The paper's body, Table 2, one row per stage: n `InvertedResidual` blocks with expansion t and
C_out = c, the first with stride s (the rest stride 1):

    t  c    n  s            t  c    n  s
    1  16   1  1            6  96   3  1
    6  24   2  2 → 1        6  160  3  2
    6  32   3  2            6  320  1  1
    6  64   4  2

For 224×224 ImageNet the stem conv and the 24-channel stage have stride 2; here both are 1 (the
usual CIFAR adaptation), and any stride 2 is dropped once the map is < 2 pixels, so 32×32 ends at
4×4 and 8×8 at 1×1. Widths scale by the multiplier α, rounded to a multiple of 8:

    make_divisible(v) = max(8, ⌊v + 4⌋₈), plus 8 if that lost more than 10 % of v

(the reference implementation's rule; ⌊·⌋₈ rounds down to a multiple of 8). After the body a 1×1
conv widens to ``last_channels``·max(1, α) (the paper's 1280 at α ≤ 1, never shrunk; here
``last_channels`` defaults to 256, enough for 10-class small images and 5× fewer head parameters).
Activations are ReLU6(x) = min(max(0, x), 6) everywhere, as in the paper (robust in low
precision); the spec's ``activation`` does not apply. Global average pooling, dropout, linear head.

Structure shared by the vision models: ``features`` (stem, stage1..stage7, last_conv), ``pool``,
``dropout``, ``head`` (the last nn.Linear).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nnrecipe.models.blocks import ConvNormAct, InvertedResidual
from nnrecipe.models.shapes import conv_output_size

# (t, c, n, s) — Table 2 with the 24-channel stage's stride 2 → 1 for small images.
SMALL_IMAGE_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
DIVISOR = 8
MIN_DOWNSAMPLE_SIZE = 2


def make_divisible(value: float, divisor: int = DIVISOR) -> int:
    """Round `value` to the nearest multiple of `divisor` (≥ divisor), never losing more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class MobileNetV2(nn.Module):
    def __init__(self, *, in_channels: int, image_size: tuple[int, int], out_features: int,
                 width_mult: float = 1.0, last_channels: int = 256, norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        if width_mult <= 0 or last_channels < 1:
            raise ValueError(f"mobilenetv2 needs width_mult > 0 and last_channels ≥ 1, got {width_mult}, "
                             f"{last_channels}")
        act = {"norm": norm, "activation": "relu6"}
        h, w = image_size
        width = make_divisible(STEM_CHANNELS * width_mult)
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        stages["stem"] = ConvNormAct(in_channels, width, 3, **act)
        for i, (t, c, n, s) in enumerate(SMALL_IMAGE_SETTINGS, start=1):
            c_out = make_divisible(c * width_mult)
            layers = []
            for j in range(n):
                stride = s if j == 0 and min(h, w) >= MIN_DOWNSAMPLE_SIZE else 1
                h, w = conv_output_size(h, 3, 1, stride), conv_output_size(w, 3, 1, stride)
                layers.append(InvertedResidual(width, c_out, stride=stride, expand_ratio=t, **act))
                width = c_out
            stages[f"stage{i}"] = nn.Sequential(*layers)
        last = make_divisible(last_channels * max(1.0, width_mult))
        stages["last_conv"] = ConvNormAct(width, last, 1, **act)
        self.features = nn.Sequential(stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(last, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.features(x))))
