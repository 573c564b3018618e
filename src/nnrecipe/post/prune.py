"""Magnitude pruning and the bisection that picks how much to prune.

- Global unstructured pruning (Han et al. 2015, "Learning both Weights and Connections"): pool the
  weights W of the Linear/Conv layers, zero the fraction s of smallest |w| over the pool (one
  threshold for the whole network, so layers with many small weights lose more).
  `torch.nn.utils.prune.global_unstructured` with `L1Unstructured` does this; `prune.remove` then
  bakes the mask into the weight so the model is a plain module again. Biases and normalization
  weights are never pruned: they are few and removing them shifts every activation.
- Recurrent layers (nn.RNN/LSTM/GRU) join the same global pool with their input and recurrent
  matrices W_ih, W_hh of every layer and direction (``weight_ih_l*``, ``weight_hh_l*``; not the
  biases). torch's pruning works on any named parameter, and RNNBase re-points its flat weight list
  whenever one of these attributes is set, so the pruned module runs as is; after `prune.remove`
  they are plain Parameters again under their own names (save/load and quantize_dynamic, which
  reads them by name, see ordinary tensors; symmetric int8 maps 0 to 0, so pruned zeros survive).
- The output head (``model.head``, else the last Linear) is never pruned. It is a few percent of
  the weights, but its fan-in is the widest and its weights the smallest, so one global threshold
  strips it first: on the default digits MLP, 50% global sparsity zeroes 94% of the head and
  accuracy falls from 96% to 59%, while keeping the head dense holds 96% up to 70% sparsity. (Gale
  et al. 2019 keep the first/last layers dense for the same reason.)
- Structured (channel) pruning (Li et al. 2017, "Pruning Filters for Efficient ConvNets"): in every
  Linear/Conv layer except the head, zero the fraction s of output channels (rows) with the smallest
  L2 norm ‖W_c‖₂ (`prune.ln_structured`, n = 2, dim = 0). Recurrent matrices are left out: a row of
  W_ih is one gate of one unit, and removing a unit would take aligned rows of all four gates in
  W_ih, W_hh and the biases plus a column of W_hh, which row norms of each matrix do not give.
- `bisect_sparsity`: the largest s in [0, s_max] with drop(s) ≤ budget, by bisection, assuming the
  metric degrades monotonically as s grows (true in trend, not step by step; the answer is always a
  sparsity that was *measured* within budget, at worst a slightly smaller one than the best).
  Hand-written: it is ten lines and libraries bundle it with their own training loops.
"""

from __future__ import annotations

import copy
from typing import Callable

from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
MAX_SPARSITY = 0.99  # s = 1 would zero every weight; keep the search inside a meaningful range
TOLERANCE = 1 / 256  # bisection stops when the bracket is this narrow (8 evaluations from 0.99)


def output_head(model: nn.Module) -> nn.Module | None:
    """`model.head` when it is a Linear layer, else the last Linear in module order."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def recurrent_weight_names(module: nn.RNNBase) -> list[str]:
    """``weight_ih_l0``, ``weight_hh_l0``, … (``_reverse`` for the backward direction, ``weight_hr``
    with a projection): the matrices of a recurrent layer, not its biases."""
    return [n for n in module._flat_weights_names if n.startswith("weight_")]


def prunable_weights(model: nn.Module, *, recurrent: bool = True) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) of every Linear/Conv weight but the output head's and, with
    `recurrent`, every RNN/LSTM/GRU weight matrix, in module order."""
    head = output_head(model)
    out = []
    for m in model.modules():
        if isinstance(m, PRUNABLE) and m is not head:
            out.append((m, "weight"))
        elif recurrent and isinstance(m, nn.RNNBase):
            out += [(m, name) for name in recurrent_weight_names(m)]
    return out


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero entries among the prunable weights (Linear/Conv but the head, RNN)."""
    weights = [getattr(m, name).detach() for m, name in prunable_weights(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


def global_magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """A copy of `model` with the fraction `amount` of smallest-|w| prunable weights set to 0."""
    pruned = copy.deepcopy(model)
    params = prunable_weights(pruned)
    if amount > 0 and params:
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(amount))
        for module, name in params:
            prune.remove(module, name)  # weight = weight_orig * mask, a plain parameter again
    return pruned


def channel_prune(model: nn.Module, amount: float) -> nn.Module:
    """A copy of `model` with the fraction `amount` of lowest-L2 output channels zeroed in every
    Linear/Conv layer except the head (recurrent layers stay dense)."""
    pruned = copy.deepcopy(model)
    if amount > 0:
        for module, name in prunable_weights(pruned, recurrent=False):
            prune.ln_structured(module, name, amount=float(amount), n=2, dim=0)
            prune.remove(module, name)
    return pruned


def bisect_sparsity(within_budget: Callable[[float], bool], *, high: float = MAX_SPARSITY,
                    tol: float = TOLERANCE) -> tuple[float, list[tuple[float, bool]]]:
    """Largest s in [0, high] with within_budget(s), by bisection.

    s = 0 is not evaluated (pruning nothing is the original model); when no evaluated s is within
    budget the answer is 0. Returns (s, trials): every (s, within_budget(s)) evaluated, in order."""
    trials: list[tuple[float, bool]] = []

    def check(s: float) -> bool:
        ok = bool(within_budget(s))
        trials.append((s, ok))
        return ok

    if check(high):
        return high, trials
    lo, hi = 0.0, high  # invariant: lo is 0 or within budget, hi is not
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if check(mid):
            lo = mid
        else:
            hi = mid
    return lo, trials
