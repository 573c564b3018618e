"""Additive attention (Bahdanau et al. 2015, "Neural Machine Translation by Jointly Learning to
Align and Translate"), shared by the seq2seq decoder (over source tokens) and the image captioner
(over a grid of CNN feature vectors, Xu et al. 2015):

    e_j = vᵀ tanh(W_q q + W_k k_j),    α = softmax(e),    c = Σ_j α_j k_j

W_k k_j does not depend on the query, so ``prepare(keys)`` computes it once per source and each
decoder step only adds W_q q (``score``); the softmax and the context are the caller's (it masks
padding first).
"""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    """Bahdanau: score(q, k) = vᵀ tanh(W_q q + W_k k); W_k k is computed once per source."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.w_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.w_k = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return self.w_k(keys)

    def score(self, q: torch.Tensor, prepared: torch.Tensor) -> torch.Tensor:  # [B, Q], [B, S, A] → [B, S]
        return self.v(torch.tanh(self.w_q(q).unsqueeze(1) + prepared)).squeeze(-1)
