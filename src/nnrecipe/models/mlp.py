"""Multi-layer perceptron: h⁽ˡ⁾ = f(W⁽ˡ⁾h⁽ˡ⁻¹⁾ + b⁽ˡ⁾), logits = W⁽ᴸ⁾h⁽ᴸ⁻¹⁾ + b⁽ᴸ⁾.

Each hidden block is Linear → [BatchNorm1d | LayerNorm | GroupNorm] → activation → Dropout. The
norm sits before the activation (Ioffe & Szegedy 2015); dropout after it is the inverted kind
(scaled by 1/(1−p) at train time, identity at eval), which is what ``nn.Dropout`` implements.
"group" (Wu & He 2018) normalizes each sample's features in G groups of width/G (G = the largest
divisor of the width ≤ 32), with a per-feature γ, β: between layer norm (G = 1) and per-feature
standardization, and like layer norm independent of the batch.
"""

from __future__ import annotations

from torch import nn

ACTIVATIONS = ("relu", "leaky_relu", "gelu", "tanh", "sigmoid", "relu6")


def make_activation(name: str, *, negative_slope: float = 0.01) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "gelu":
        return nn.GELU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu6":
        return nn.ReLU6()
    raise ValueError(f"unknown activation '{name}'; choose one of {', '.join(ACTIVATIONS)}")


MAX_GROUPS = 32  # Wu & He 2018's default number of groups


def group_count(channels: int) -> int:
    """The largest divisor of C that is ≤ 32 (GroupNorm needs G | C)."""
    return max(g for g in range(1, min(MAX_GROUPS, channels) + 1) if channels % g == 0)


def _norm(kind: str, width: int) -> nn.Module | None:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "group":
        return nn.GroupNorm(group_count(width), width)
    if kind == "none":
        return None
    raise ValueError(f"unknown norm '{kind}'; choose one of batch, layer, group, none")


class MLP(nn.Module):
    def __init__(self, in_features: int, out_features: int, *, hidden: tuple[int, ...] = (512, 256),
                 activation: str = "relu", negative_slope: float = 0.01, dropout: float = 0.0,
                 norm: str = "none"):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            norm_layer = _norm(norm, h)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(make_activation(activation, negative_slope=negative_slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, out_features)

    def forward(self, x):
        return self.head(self.body(x))
