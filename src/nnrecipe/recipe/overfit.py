"""Overfit a small sample: a model that cannot memorize a few mini-batches has a bug or a bad LR.

Karpathy, "A Recipe for Training Neural Networks" (2019), "overfit one batch"; CS231n,
"Babysitting the learning process". `batches · batch_size` rows drawn at random (all rows when
there are fewer), regularization off: every ``nn.Dropout`` gets p = 0, weight decay 0, plain loss
(no label smoothing, no L1/L2). The optimizer is the project's (`build_optimizer`, so
``optimizer_name`` takes any name of the ``OPTIMIZERS`` registry), its LR fixed at ``lr`` (no
schedule). The sample's mini-batches are cycled in a fixed order, one optimizer step each, at most
``max_iterations`` steps; after every full pass the whole sample is scored (no grad):

- passed (classification): training accuracy = 100%;
- passed (regression): MSE < ``REGRESSION_TARGET`` (1e-3) × the initial MSE.

``initial_loss`` is the sample's loss before the first step. Diagnosis when it did not pass:

- a non-finite loss → ``EXPLODED`` (LR too high or bad init);
- final ≥ ``FLAT_RATIO`` (0.9) × initial → ``FLAT`` (LR too low or bad init);
- otherwise → ``SLOW`` (decreasing, but too slowly: train longer or raise the LR).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import OptimizerConfig
from nnrecipe.training.optim import build_optimizer

EXPLODED = "loss exploded to Inf/NaN: LR too high or bad init"
FLAT = "loss not going down: LR too low or bad init"
SLOW = "loss decreasing but too slowly: train longer or raise the LR"
REGRESSION_TARGET = 1e-3
FLAT_RATIO = 0.9


def _loss(out: torch.Tensor, target: torch.Tensor, classification: bool) -> torch.Tensor:
    if classification:
        return F.cross_entropy(out, target)
    return F.mse_loss(out.reshape(target.shape), target)


def _diagnose(passed: bool, initial: float, final: float) -> str | None:
    if passed:
        return None
    if not (math.isfinite(final) and math.isfinite(initial)):
        return EXPLODED
    return FLAT if final >= FLAT_RATIO * initial else SLOW


def overfit_small(model_factory: Callable[[], nn.Module], X: torch.Tensor, y: torch.Tensor, *, task: str,
                  lr: float, optimizer_name: str = "adam", batches: int = 5, batch_size: int = 32,
                  max_iterations: int = 500, seed: int = 0) -> dict:
    """Train a fresh model (from `model_factory`) on a small sample until it is memorized.

    Returns {"passed", "iterations" (optimizer steps run), "initial_loss", "final_loss",
    "final_accuracy" (None for regression), "rows" (sample size), "diagnosis"}.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if batches < 1 or batch_size < 1 or max_iterations < 1:
        raise ValueError("batches, batch_size and max_iterations must be >= 1")
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(X), generator=g)[: batches * batch_size]
    if len(rows) > 1 and len(rows) % batch_size == 1:
        rows = rows[:-1]  # a 1-row batch breaks BatchNorm in train mode
    rows = rows.to(X.device)
    Xs, ys = X[rows], y[rows]
    chunks = [(Xs[i:i + batch_size], ys[i:i + batch_size]) for i in range(0, len(Xs), batch_size)]
    classification = task == "classification"

    model = model_factory()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.train()
    optimizer = build_optimizer(model, OptimizerConfig(name=optimizer_name, lr=lr, weight_decay=0.0))

    def score() -> tuple[float, float | None]:
        with torch.no_grad():
            out = model(Xs)
            loss = _loss(out, ys, classification).item()
            accuracy = (out.argmax(1) == ys).float().mean().item() if classification else None
        return loss, accuracy

    initial, accuracy = score()
    final, passed, iterations = initial, False, 0
    while not passed and iterations < max_iterations and math.isfinite(final):
        for xb, yb in chunks[: max_iterations - iterations]:
            loss = _loss(model(xb), yb, classification)
            if not torch.isfinite(loss):  # a diagnostic: one sync per step is fine here
                final = loss.item()
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            iterations += 1
        else:  # a full pass (or the last, partial one): score the whole sample
            final, accuracy = score()
            passed = accuracy == 1.0 if classification else final < REGRESSION_TARGET * initial
    return {"passed": bool(passed), "iterations": iterations, "initial_loss": float(initial),
            "final_loss": float(final), "final_accuracy": accuracy, "rows": len(Xs),
            "diagnosis": _diagnose(passed, initial, final)}
