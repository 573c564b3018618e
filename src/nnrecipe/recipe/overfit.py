"""Overfit a small sample: a model that cannot memorize 5–10 mini-batches has a bug or a bad LR.

Regularization off (dropout p = 0, no weight decay, no penalties), the same few batches cycled
until 100% training accuracy (classification) or MSE < 1e-3 × the initial MSE (regression),
at most `max_iterations` steps (Karpathy, "A recipe for training neural networks", 2019).
Diagnosis on failure: a non-finite loss → "LR too high or bad init"; final loss ≥ 0.9 × initial →
"LR too low or bad init"; otherwise "decreasing but too slowly".
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

EXPLODED = "loss exploded to Inf/NaN: LR too high or bad init"
FLAT = "loss not going down: LR too low or bad init"
SLOW = "loss decreasing but too slowly: train longer or raise the LR"
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def overfit_small(model_factory: Callable[[], nn.Module], X: torch.Tensor, y: torch.Tensor, *, task: str,
                  lr: float, optimizer_name: str = "adam", batches: int = 5, batch_size: int = 32,
                  max_iterations: int = 500, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(X), generator=g)[: batches * batch_size].to(X.device)
    Xs, ys = X[rows], y[rows]
    model = model_factory()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.train()
    optimizer = OPTIMIZERS[optimizer_name](model.parameters(), lr=lr)
    classification = task == "classification"

    def loss_of(out, target):
        return F.cross_entropy(out, target) if classification else F.mse_loss(out.squeeze(-1), target)

    initial = final = math.nan
    accuracy = None
    iterations = 0
    passed = False
    n_batches = max(1, -(-len(Xs) // batch_size))
    for iterations in range(1, max_iterations + 1):
        b = (iterations - 1) % n_batches
        loss = loss_of(model(Xs[b * batch_size:(b + 1) * batch_size]), ys[b * batch_size:(b + 1) * batch_size])
        if not torch.isfinite(loss):
            final = loss.item()
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if b == n_batches - 1:  # judge on the whole sample once per pass over it
            with torch.no_grad():
                out = model(Xs)
                final = loss_of(out, ys).item()
                initial = final if math.isnan(initial) else initial
                if classification:
                    accuracy = (out.argmax(1) == ys).float().mean().item()
                    passed = accuracy == 1.0
                else:
                    passed = final < 1e-3 * initial
            if passed or not math.isfinite(final):
                break
    diagnosis = None
    if not passed:
        diagnosis = EXPLODED if not math.isfinite(final) else FLAT if final >= 0.9 * initial else SLOW
    return {"passed": passed, "iterations": iterations, "initial_loss": initial, "final_loss": final,
            "final_accuracy": accuracy, "rows": len(Xs), "diagnosis": diagnosis}
