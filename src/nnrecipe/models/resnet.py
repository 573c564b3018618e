"""A small-image ResNet (He et al. 2016, "Deep Residual Learning"; the CIFAR variant of §4.2).

Stem: conv 3×3 stride 1 → norm → act, with no 7×7/stride-2 conv and no max pool, which would
leave an 8×8 or 32×32 image almost nothing. Then one stage per width w_i of ``blocks[i]``
`BasicBlock`s, y = act(F(x) + s(x)); the first block of every stage after the first has stride 2
(H → ⌈H/2⌉, with a 1×1 projection shortcut) while the map is still ≥ 2 pixels, so 8×8 inputs end at
2×2 and 32×32 at 8×8 with the default three stages. Global average pooling and a linear head:

    logits = head(dropout(mean_{h,w} features(x)))

Structure shared by the vision models: ``features`` (stem, stage1, ...), ``pool``, ``dropout``,
``head`` (the last nn.Linear).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nnrecipe.models.blocks import BasicBlock, ConvNormAct
from nnrecipe.models.shapes import conv_output_size

MIN_DOWNSAMPLE_SIZE = 2  # stride 2 only while the map has at least this many pixels per side


class ResNet(nn.Module):
    def __init__(self, *, in_channels: int, image_size: tuple[int, int], out_features: int,
                 widths: tuple[int, ...] = (32, 64, 128), blocks: tuple[int, ...] = (2, 2, 2), norm: str = "batch",
                 activation: str = "relu", negative_slope: float = 0.01, dropout: float = 0.0):
        super().__init__()
        if not widths or len(widths) != len(blocks):
            raise ValueError(f"resnet needs one block count per stage width: widths {list(widths)} "
                             f"vs blocks {list(blocks)}")
        if min(blocks) < 1:
            raise ValueError(f"resnet needs ≥ 1 block per stage, got blocks {list(blocks)}")
        act = {"norm": norm, "activation": activation, "negative_slope": negative_slope}
        h, w = image_size
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        stages["stem"] = ConvNormAct(in_channels, widths[0], 3, **act)
        width = widths[0]
        for i, (c, n) in enumerate(zip(widths, blocks), start=1):
            stride = 2 if i > 1 and min(h, w) >= MIN_DOWNSAMPLE_SIZE else 1
            h, w = conv_output_size(h, 3, 1, stride), conv_output_size(w, 3, 1, stride)
            layers = [BasicBlock(width, c, stride=stride, **act)]
            layers += [BasicBlock(c, c, **act) for _ in range(n - 1)]
            stages[f"stage{i}"] = nn.Sequential(*layers)
            width = c
        self.features = nn.Sequential(stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.features(x))))
