"""A small VGG-style conv net (Simonyan & Zisserman 2015; LeNet's conv → pool pattern).

Stage i (width c_i) is ``convs_per_stage`` × [conv 3×3 "same" → norm → act], then 2×2 max pooling
(H, W → ⌊H/2⌋, ⌊W/2⌋) while the spatial size is still ≥ 4, so 8×8 digits keep a 2×2 map rather than
shrinking to nothing while 32×32 images halve at every stage. Then global average pooling and a
linear head:

    logits = head(dropout(mean_{h,w} features(x)))

Structure shared by the vision models (transfer learning freezes by it): ``features`` (named stages),
``pool``, ``dropout``, ``head`` (the last nn.Linear).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nnrecipe.models.blocks import ConvNormAct, pool2d

MIN_POOL_SIZE = 4  # pool only maps at least this big: 8×8 → 4×4 → 2×2, never 1×1 or smaller


class CNN(nn.Module):
    def __init__(self, *, in_channels: int, image_size: tuple[int, int], out_features: int,
                 channels: tuple[int, ...] = (32, 64), convs_per_stage: int = 2, norm: str = "batch",
                 activation: str = "relu", negative_slope: float = 0.01, dropout: float = 0.0):
        super().__init__()
        if not channels:
            raise ValueError("cnn needs at least one stage width in `channels`")
        if convs_per_stage < 1:
            raise ValueError(f"cnn convs_per_stage must be ≥ 1, got {convs_per_stage}")
        h, w = image_size
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        width = in_channels
        for i, c in enumerate(channels, start=1):
            layers: list[nn.Module] = []
            for _ in range(convs_per_stage):
                layers.append(ConvNormAct(width, c, 3, norm=norm, activation=activation,
                                          negative_slope=negative_slope))
                width = c
            if min(h, w) >= MIN_POOL_SIZE:
                layers.append(pool2d("max", 2))
                h, w = h // 2, w // 2
            stages[f"stage{i}"] = nn.Sequential(*layers)
        self.features = nn.Sequential(stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.features(x))))
