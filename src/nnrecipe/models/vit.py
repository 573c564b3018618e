"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

An image [N, C, H, W] is cut into (H/p)·(W/p) non-overlapping p×p patches, each flattened and
projected to ``dim``: z_i = E·vec(patch_i) + b. A Conv2d with kernel = stride = p is exactly that
linear map (p·p·C·dim + dim parameters). A learned CLS token is prepended, learned positions added,
then ``depth`` pre-LN blocks (attention.py), a final LN, and the head classifies the CLS state:

    z⁰ = [x_cls; E x_1; …; E x_n] + P,   zˡ = Block(zˡ⁻¹),   y = head(LN(z^L)_0)

``self.head`` is registered last, so it is the last nn.Linear that ``initialize`` treats as the head.
"""

from __future__ import annotations

import torch
from torch import nn

from nnrecipe.models.attention import TransformerBlock


def _pair(size: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class ViT(nn.Module):
    def __init__(self, *, in_channels: int, image_size: int | list[int] | tuple[int, int], out_features: int,
                 patch_size: int = 4, dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0,
                 dropout: float = 0.0):
        super().__init__()
        h, w = _pair(image_size)
        if h % patch_size or w % patch_size:
            raise ValueError(f"image_size {h}x{w} must be divisible by patch_size {patch_size}")
        self.num_patches = (h // patch_size) * (w // patch_size)
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        # Both start small, N(0, 0.02²), as in the reference implementation (timm / big_vision).
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, self.num_patches + 1, dim) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio=mlp_ratio, dropout=dropout)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_features)

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # [N, dim, h, w] → [N, h·w, dim]
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return self.drop(torch.cat([cls, patches], dim=1) + self.positions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self._tokens(x)
        for block in self.blocks:
            z, _ = block(z)
        return self.head(self.norm(z)[:, 0])

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per block, the attention weights [N, heads, 1 + patches, 1 + patches] (for plotting)."""
        z, maps = self._tokens(x), []
        for block in self.blocks:
            z, w = block(z, need_weights=True)
            maps.append(w)
        return maps
