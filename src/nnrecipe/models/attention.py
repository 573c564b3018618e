"""Multi-head attention, pre-LayerNorm Transformer blocks and position encodings (shared by
transformer.py and vit.py).

Scaled dot-product attention (Vaswani et al. 2017, "Attention Is All You Need"):

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + M) V

M is 0 where a query may look at a key and −∞ where it may not (key padding, or a future position
under the causal mask). Multi-head attention projects x to h heads of d_k = dim / h, attends in
each, concatenates and projects back: MHA(x) = W_o [head_1; …; head_h]. The default path is
``torch.nn.functional.scaled_dot_product_attention`` (a fused kernel that never materializes the
T×S weight matrix); ``need_weights=True`` computes the same thing explicitly so the weights can be
plotted.

Pre-LN block (Xiong et al. 2020; GPT-2, ViT):  x ← x + MHA(LN(x)),  x ← x + MLP(LN(x)),  with a GELU
MLP dim → mlp_ratio·dim → dim. Normalizing inside the residual branch keeps the identity path clean,
so deep stacks train without the warm-up the post-LN original needs; the model adds a final LN.

Positions: sinusoidal PE(pos, 2i) = sin(pos / 10000^{2i/d}), PE(pos, 2i+1) = cos(pos / 10000^{2i/d})
(Vaswani et al. 2017), or a learned table [max_len, d] (BERT, ViT), added to the token embeddings.

Masks are booleans with True = "this key is padding" for ``key_padding_mask`` [B, S]. Padding is
expected on the right: a query row whose keys are all masked would have no key to attend to.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

POSITIONS = ("sinusoidal", "learned")


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The [length, dim] table PE(pos, 2i) = sin(pos/10000^{2i/dim}), PE(pos, 2i+1) = cos(…)."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dim, got {dim}")
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    inv_freq = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq)
    return table.float()


class PositionEncoding(nn.Module):
    """x [B, T, dim] → x + P[:T]; P sinusoidal (fixed) or learned (init N(0, 0.02²) as in BERT/ViT)."""

    def __init__(self, dim: int, *, kind: str = "sinusoidal", max_len: int = 512):
        super().__init__()
        if kind not in POSITIONS:
            raise ValueError(f"unknown positions '{kind}'; choose one of {', '.join(POSITIONS)}")
        self.kind, self.max_len = kind, max_len
        if kind == "sinusoidal":
            # Not persistent: it is a function of the shape, so checkpoints need not carry it.
            self.register_buffer("table", sinusoidal_positions(max_len, dim), persistent=False)
        else:
            self.table = nn.Parameter(torch.randn(max_len, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence length {x.shape[1]} exceeds max_len {self.max_len}")
        return x + self.table[: x.shape[1]].to(x.dtype)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True at positions ≥ length (the keys attention must ignore)."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) >= lengths.to(torch.long).unsqueeze(1)


def attention_mask(t: int, s: int, *, key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                   device: torch.device | None = None) -> torch.Tensor | None:
    """Boolean [B|1, 1, T, S] mask with True = may attend (SDPA's convention), or None if all may."""
    allowed = None
    if causal:
        allowed = torch.ones(t, s, dtype=torch.bool, device=device).tril(diagonal=s - t).view(1, 1, t, s)
    if key_padding_mask is not None:
        keys = (~key_padding_mask).view(key_padding_mask.shape[0], 1, 1, s)
        allowed = keys if allowed is None else allowed & keys
    return allowed


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                       *, dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(QKᵀ/√d_k + M) V computed step by step; returns (output, weights [..., T, S])."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    dropped = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights


class MultiHeadAttention(nn.Module):
    """MHA(x, memory) = W_o concat_h Attention(W_q^h x, W_k^h m, W_v^h m); m = x for self-attention."""

    def __init__(self, dim: int, heads: int, *, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, dim] → [B, h, T, d_k]
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, *,
                key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [B, T, dim], memory [B, S, dim] (None: self-attention) → (out [B, T, dim], weights
        [B, h, T, S] if need_weights else None)."""
        kv = x if memory is None else memory
        q, k, v = self._split(self.q(x)), self._split(self.k(kv)), self._split(self.v(kv))
        p = self.dropout if self.training else 0.0
        t, s = q.shape[2], k.shape[2]
        weights = None
        if need_weights:
            mask = attention_mask(t, s, key_padding_mask=key_padding_mask, causal=causal, device=x.device)
            out, weights = explicit_attention(q, k, v, mask, dropout_p=p)
        elif key_padding_mask is None and causal and t == s:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            mask = attention_mask(t, s, key_padding_mask=key_padding_mask, causal=causal, device=x.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        b = x.shape[0]
        return self.out(out.transpose(1, 2).reshape(b, t, -1)), weights


def _mlp(dim: int, mlp_ratio: float, dropout: float) -> nn.Sequential:
    hidden = int(dim * mlp_ratio)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class TransformerBlock(nn.Module):
    """Pre-LN self-attention block: x + MHA(LN(x)), then x + MLP(LN(x)). Causal → a decoder-only block."""

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _mlp(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attn(self.norm1(x), key_padding_mask=key_padding_mask, causal=causal,
                               need_weights=need_weights)
        x = x + self.drop(a)
        return x + self.mlp(self.norm2(x)), weights


class CrossAttentionBlock(nn.Module):
    """Pre-LN encoder–decoder block: x + causal MHA(LN(x)), x + MHA(LN(x), memory), x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = MultiHeadAttention(dim, heads, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = _mlp(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, *, memory_padding_mask: torch.Tensor | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (x, cross-attention weights [B, h, T, S] or None). No target padding mask: under
        the causal mask a right-padded target's pads sit after every real token and are never seen."""
        a, _ = self.self_attn(self.norm1(x), causal=True)
        x = x + self.drop(a)
        a, weights = self.cross_attn(self.norm2(x), memory, key_padding_mask=memory_padding_mask,
                                     need_weights=need_weights)
        x = x + self.drop(a)
        return x + self.mlp(self.norm3(x)), weights
