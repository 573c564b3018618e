"""Initial loss check: before any training step, the loss should be what an uninformed model gets.

Karpathy, "A Recipe for Training Neural Networks" (2019), "verify loss @ init"; CS231n,
"Babysitting the learning process". One forward pass on the batch with the model in eval mode (no
dropout; BatchNorm with its initial running statistics is the identity) and the plain loss (no
label smoothing, no L1/L2 penalty):

- classification, softmax cross-entropy over C classes: expected = ln C, the loss of the uniform
  prediction p = 1/C (exactly ln C whatever the class balance). A random head adds ≈ Var(logit)/2
  (`nnrecipe.training.init`: ≈ ln C + 0.7 for the `auto` init), well inside the default tolerance.
- regression, MSE: expected = E[y²] = Var(y) + ȳ², the cost of predicting 0, which is what a head
  with zero bias predicts on average. On a standardized target ȳ ≈ 0 and this is Var(y), the MSE
  of predicting the mean. A random head adds its own output variance E[out²] on top, so an output
  scale comparable to the target's already fails the check (the head should start small, or its
  bias at the target mean).

Verdict: ok ⇔ measured is finite and |measured − expected| ≤ tolerance · expected (relative;
default 0.5, i.e. within ±50%). Loose enough for the random head's scale, tight enough to catch a
head initialized ~10× too large, a wrong number of classes or label encoding (too high), and labels
leaking into the features (too low).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TOO_HIGH = "logits too large at init: init scale of the head, or label encoding/number of classes wrong"
TOO_HIGH_REGRESSION = ("outputs too large at init: init scale of the head, or the target is not "
                       "standardized (start the head's bias at the target mean)")
TOO_LOW = "loss below chance at init: labels may leak into the features or the head is not random"
TASKS = ("classification", "regression")


@torch.no_grad()
def initial_loss_check(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, task: str,
                       num_classes: int | None, tolerance: float = 0.5) -> dict:
    """Measured vs expected loss at init (module docstring); the model's mode is restored.

    Returns {"measured", "expected", "ok", "tolerance", "likely_cause"} (likely_cause None when ok).
    `num_classes` None for classification: the width of the model's output.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    was_training = model.training
    model.eval()  # no dropout: regularization off for the check
    try:
        out = model(X)
    finally:
        model.train(was_training)
    if task == "classification":
        classes = num_classes if num_classes is not None else out.shape[-1]
        if classes < 2:
            raise ValueError(f"num_classes must be >= 2 for cross-entropy, got {classes}")
        measured = F.cross_entropy(out.float(), y).item()
        expected = math.log(classes)
    else:
        target = y.double()
        measured = F.mse_loss(out.double().reshape(target.shape), target).item()
        expected = (target ** 2).mean().item()
    ok = math.isfinite(measured) and abs(measured - expected) <= tolerance * expected
    cause = None
    if not ok:
        high = not math.isfinite(measured) or measured > expected
        cause = (TOO_HIGH if task == "classification" else TOO_HIGH_REGRESSION) if high else TOO_LOW
    return {"measured": float(measured), "expected": float(expected), "ok": bool(ok),
            "tolerance": float(tolerance), "likely_cause": cause}
