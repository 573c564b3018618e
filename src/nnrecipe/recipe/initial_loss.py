"""Initial loss check: before training, the loss should match what a random head predicts.

Expected values: softmax cross-entropy over C balanced classes with near-uniform predictions gives
ln C; MSE of a model that predicts ≈ 0 on a standardized target gives E[y²] = Var(y) + ȳ² ≈ Var(y)
(we use the batch's second moment E[y²], which is what "predicting 0" costs exactly).
The check passes when |measured − expected| ≤ tolerance · expected (default 50%): loose enough for
the head's random scale, tight enough to catch a head initialized 10× too large, labels encoded
wrongly, or labels leaking into the features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TOO_HIGH = ("logits too large at init: the head's init scale, or the label encoding / number of classes "
            "is wrong")
TOO_LOW = "loss below chance at init: labels may leak into the features, or the head is not random"


@torch.no_grad()
def initial_loss_check(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, task: str,
                       num_classes: int | None, tolerance: float = 0.5) -> dict:
    was_training = model.training
    model.eval()  # no dropout: regularization off for the check
    out = model(X)
    model.train(was_training)
    if task == "classification":
        measured = F.cross_entropy(out, y).item()
        expected = math.log(num_classes)
    else:
        measured = F.mse_loss(out.squeeze(-1), y).item()
        expected = float((y.double() ** 2).mean())
    ok = math.isfinite(measured) and abs(measured - expected) <= tolerance * expected
    cause = None if ok else (TOO_HIGH if not math.isfinite(measured) or measured > expected else TOO_LOW)
    return {"measured": measured, "expected": expected, "ok": ok, "tolerance": tolerance, "likely_cause": cause}
