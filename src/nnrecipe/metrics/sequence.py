"""Token-level and sequence-level metrics for sequence models, as pure functions.

Targets are int ids [N, T]; positions whose target equals ``pad_id`` (0 by default, None keeps
every position) are left out, so padding never changes a result. With M the set of non-pad
positions (i, t), logits z_it ∈ R^V and predicted id ŷ_it = argmax_v z_itv:

- token accuracy = (1/|M|) Σ_M [ŷ_it = y_it]
- cross-entropy  = (1/|M|) Σ_M −log softmax(z_it)[y_it]     (computed in float64)
- perplexity     = exp(cross-entropy); uniform logits over V classes give exactly V
- exact match    = (1/N) Σ_i [prediction_i = target_i]   (whole strings or id sequences)

Hand-written because they are one line each on torch; torch's own cross_entropy is the test
oracle for perplexity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _mask(targets: torch.Tensor, pad_id: int | None) -> torch.Tensor:
    mask = torch.ones_like(targets, dtype=torch.bool) if pad_id is None else targets != pad_id
    if not bool(mask.any()):
        raise ValueError("every target position is padding; the metric is undefined")
    return mask


def _targets(targets) -> torch.Tensor:
    t = torch.as_tensor(targets)
    if t.is_floating_point():
        raise ValueError("targets must be integer token ids")
    return t.long()


def token_accuracy(logits_or_ids, targets, *, pad_id: int | None = 0) -> float:
    """Fraction of non-pad target positions predicted correctly.

    ``logits_or_ids`` is either logits [N, T, V] (argmax over the last axis) or predicted ids
    [N, T]; ``targets`` is [N, T]. Any shape works as long as ids match targets' shape.
    """
    y = _targets(targets)
    pred = torch.as_tensor(logits_or_ids)
    if pred.ndim == y.ndim + 1:
        pred = pred.argmax(dim=-1)
    if pred.shape != y.shape:
        raise ValueError(f"predictions of shape {tuple(pred.shape)} do not match targets "
                         f"{tuple(y.shape)}; pass logits [N, T, V] or ids [N, T]")
    y = y.to(pred.device)
    mask = _mask(y, pad_id)
    return (pred[mask] == y[mask]).to(torch.float64).mean().item()


def perplexity(logits, targets, *, pad_id: int | None = 0) -> float:
    """exp(mean token cross-entropy over non-pad positions); logits [N, T, V], targets [N, T].

    Pad positions are dropped before the softmax, so even NaN logits there change nothing.
    """
    z = torch.as_tensor(logits)
    y = _targets(targets).to(z.device)
    if z.ndim != y.ndim + 1 or z.shape[:-1] != y.shape:
        raise ValueError(f"logits of shape {tuple(z.shape)} do not match targets "
                         f"{tuple(y.shape)}; expected logits [N, T, V] and targets [N, T]")
    mask = _mask(y, pad_id)
    nll = F.cross_entropy(z[mask].to(torch.float64), y[mask], reduction="mean")
    return perplexity_from_nll(nll.item())


def perplexity_from_nll(mean_nll: float) -> float:
    """exp(mean_nll) for mean_nll in nats per token; inf past 709 (math.exp raises there)."""
    return math.inf if mean_nll > 709.0 else math.exp(mean_nll)


def _sequence_key(x):
    if isinstance(x, str):
        return x
    if isinstance(x, torch.Tensor):
        return tuple(x.reshape(-1).tolist())
    return tuple(x)


def exact_match(predictions: Sequence[str] | Sequence[Sequence[int]],
                targets: Sequence[str] | Sequence[Sequence[int]]) -> float:
    """Fraction of predictions identical to their target (strings, or id lists/1-D tensors)."""
    if isinstance(predictions, str) or isinstance(targets, str):
        raise ValueError("predictions and targets must be lists of strings or of id sequences")
    if len(predictions) != len(targets):
        raise ValueError(f"length mismatch: {len(predictions)} predictions, {len(targets)} targets")
    if len(predictions) == 0:
        raise ValueError("exact match of an empty set is undefined")
    hits = 0
    for i, (p, t) in enumerate(zip(predictions, targets)):
        if isinstance(p, str) != isinstance(t, str):
            raise ValueError(f"item {i}: cannot compare a string with an id sequence")
        hits += _sequence_key(p) == _sequence_key(t)
    return hits / len(predictions)
