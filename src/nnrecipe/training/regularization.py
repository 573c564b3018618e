"""Explicit L1 / L2 penalties added to the loss, over the decayed weights only.

    L2:  Ω₂(w) = (λ₂ / 2) · Σ w²      ∇Ω₂ = λ₂ · w          (Tikhonov / ridge; Krogh & Hertz 1992)
    L1:  Ω₁(w) = λ₁ · Σ |w|          ∂Ω₁ = λ₁ · sign(w)    (lasso; Tibshirani 1996)

The sums run over `nnrecipe.training.params.decayed_weights(model)`: weight matrices and
convolution kernels, never biases or normalization parameters (penalizing those does not reduce
capacity, it only fights the model).

Not the same as the optimizer's weight decay. An L2 penalty goes through the gradient, so an
adaptive optimizer divides it by its per-parameter denominator: for Adam the step on w is
η·(ĝ + λw)/(√v̂ + ε), and weights with large historical gradients are regularized *less*.
Decoupled weight decay (AdamW; Loshchilov & Hutter 2019, "Decoupled Weight Decay
Regularization") applies w ← w − η·λ·w outside the adaptive update, so every weight shrinks at the
same rate; it generalizes better with Adam and is the default (`optimizer.weight_decay`). For plain
SGD the two coincide (with λ_decay = λ₂). Use `regularization.l2` to reproduce a classical
penalized objective, and `regularization.l1` for sparse weights, which decay does not give.

With plain (sub)gradient steps L1 does not produce exact zeros: weights that should be zero end
oscillating within about η·λ₁ of 0.
"""

from __future__ import annotations

import torch
from torch import nn

from nnrecipe.training.params import decayed_weights


def penalty(model: nn.Module, *, l1: float, l2: float) -> torch.Tensor | None:
    """λ₁·Σ|w| + (λ₂/2)·Σw² over `decayed_weights(model)`, as a 0-dim tensor to add to the loss.

    Returns None when both coefficients are 0 (or nothing is decayed), so the loop adds nothing
    and builds no extra graph.
    """
    if l1 < 0 or l2 < 0:
        raise ValueError(f"penalty coefficients must be >= 0, got l1={l1}, l2={l2}")
    if l1 == 0 and l2 == 0:
        return None
    weights = decayed_weights(model)
    if not weights:
        return None
    total = weights[0].new_zeros(())
    if l2 > 0:
        total = total + (0.5 * l2) * sum(w.square().sum() for w in weights)
    if l1 > 0:
        total = total + l1 * sum(w.abs().sum() for w in weights)
    return total
