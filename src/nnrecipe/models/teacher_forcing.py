"""Unrolling an autoregressive decoder over a gold target, shared by the seq2seq decoder and the
image captioner: teacher forcing, or scheduled sampling (Bengio et al. 2015) when the ratio is < 1.

    y_0 = tgt_in[:, 0] (BOS);  y_t = tgt_in[:, t] with probability r, else argmax z_{t−1}
    z_t, state, w_t = step(y_t, state)

Returns the logits [B, T, V] and the per-step extras (attention weights) stacked as [B, T, …].
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def teacher_forced(step: Callable, state, tgt_in: torch.Tensor, *, teacher_forcing: float = 1.0,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`step(y [B], state) -> (logits [B, V], state, extra [B, …])` over the T steps of tgt_in [B, T]."""
    logits, extras = [], []
    y = tgt_in[:, 0]
    for t in range(tgt_in.shape[1]):
        if t > 0:
            y = tgt_in[:, t]
            if teacher_forcing < 1.0:
                gold = torch.rand(y.shape[0], generator=generator, device=y.device) < teacher_forcing
                y = torch.where(gold, y, logits[-1].argmax(dim=-1))
        z, state, extra = step(y, state)
        logits.append(z)
        extras.append(extra)
    return torch.stack(logits, dim=1), torch.stack(extras, dim=1)
