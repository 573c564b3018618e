"""LR range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", §3.3; fastai's
``lr_find``): train briefly while the LR grows geometrically and read a good LR off the loss curve.

- LR schedule: η_i = start_lr · q^i, q = (end_lr/start_lr)^(1/(iterations−1)), i = 0…iterations−1
  (η multiplied by q every step, reaching end_lr at the last step). One mini-batch per step,
  drawn from fresh random permutations of the rows (`iterate_batches`), the model in train mode.
- Smoothing: bias-corrected exponential moving average of the mini-batch loss ℓ_t (t = 1, 2, …),
  a_t = β·a_{t−1} + (1−β)·ℓ_t, a_0 = 0, s_t = a_t/(1−β^t), β = 1 − ``smoothing``.
- Stop early when ℓ_t is non-finite (that point is not recorded) or s_t > ``diverge_factor`` ×
  min_{τ≤t} s_τ (recorded).
- ``steepest_lr``: the η where ds/d(log₁₀ η) is most negative (``numpy.gradient`` over the
  recorded curve), ignoring the first and the last ``SKIP_FRACTION`` (10%, at least one point)
  of the points: the start is EMA warm-up noise and the end the divergence.
- ``min_loss_lr_over_10``: η at the minimum of s, divided by 10 (fastai's ``lr_min``): at the
  minimum the loss is about to blow up, so an order of magnitude lower is safe.
- ``suggested_lr`` = ``steepest_lr``, unless it exceeds ``min_loss_lr_over_10`` · 10 (the steepest
  descent lies beyond the minimum, i.e. in the divergence: a noisy curve); then
  ``min_loss_lr_over_10``. With fewer than ``MIN_POINTS`` recorded points every suggestion is the
  first LR tried (the test diverged at once: start lower).

The model's and the optimizer's states (weights, buffers, moments, LRs) are deep-copied before and
loaded back afterwards, also when the test fails, and the model's train/eval mode is restored.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from nnrecipe.training.loop import iterate_batches

SKIP_FRACTION = 0.1
MIN_POINTS = 5


def lr_range_test(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn, X: torch.Tensor, y: torch.Tensor, *,
                  start_lr: float = 1e-7, end_lr: float = 10.0, iterations: int = 100, batch_size: int = 64,
                  smoothing: float = 0.05, diverge_factor: float = 4.0, seed: int = 0) -> dict:
    """Run the test (module docstring); `loss_fn(outputs, targets)` → scalar loss.

    Returns {"suggested_lr", "steepest_lr", "min_loss_lr_over_10", "lrs", "losses" (smoothed),
    "stopped_early"}.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
    if iterations < 2 or not 0 < smoothing <= 1 or diverge_factor <= 1:
        raise ValueError("need iterations >= 2, 0 < smoothing <= 1 and diverge_factor > 1")
    model_state = copy.deepcopy(model.state_dict())
    optim_state = copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    generator = torch.Generator().manual_seed(seed)
    factor = (end_lr / start_lr) ** (1.0 / (iterations - 1))
    beta, avg, best = 1.0 - smoothing, 0.0, math.inf
    lrs: list[float] = []
    losses: list[float] = []
    stopped_early = False

    def batches():
        while True:  # fresh permutations, epoch after epoch
            yield from iterate_batches(len(X), batch_size, generator, X.device)

    model.train()
    try:
        for t, idx in enumerate(batches(), start=1):
            lr = start_lr * factor ** (t - 1)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn(model(X[idx]), y[idx])
            value = loss.item()  # the stopping rule needs the value every step
            if not math.isfinite(value):
                stopped_early = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            avg = beta * avg + (1.0 - beta) * value
            smoothed = avg / (1.0 - beta ** t)
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if smoothed > diverge_factor * best:
                stopped_early = t < iterations
                break
            if t == iterations:
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
        model.train(was_training)
    return {**suggest_lr(lrs, losses, first_lr=start_lr), "lrs": lrs, "losses": losses,
            "stopped_early": stopped_early}


def suggest_lr(lrs: list[float], losses: list[float], *, first_lr: float | None = None) -> dict:
    """{"suggested_lr", "steepest_lr", "min_loss_lr_over_10"} from a smoothed curve (module docstring)."""
    if len(lrs) < MIN_POINTS:
        lr = float(first_lr if first_lr is not None else (lrs[0] if lrs else math.nan))
        return {"suggested_lr": lr, "steepest_lr": lr, "min_loss_lr_over_10": lr}
    smoothed = np.asarray(losses, dtype=float)
    slope = np.gradient(smoothed, np.log10(np.asarray(lrs, dtype=float)))
    skip = max(1, int(len(lrs) * SKIP_FRACTION))
    steepest = float(lrs[skip + int(np.argmin(slope[skip:len(lrs) - skip]))])
    min_over_10 = float(lrs[int(np.argmin(smoothed))]) / 10.0
    suggested = steepest if steepest <= min_over_10 * 10.0 else min_over_10
    return {"suggested_lr": suggested, "steepest_lr": steepest, "min_loss_lr_over_10": min_over_10}


def plot_lr_finder(result: dict, out_png: str | Path) -> None:
    """Smoothed loss against LR (log x), the two suggestions as vertical lines, and a legend."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(result["lrs"], result["losses"], lw=1.5, label="smoothed loss")
    ax.set_xscale("log")
    for key, colour, label in (("steepest_lr", "tab:red", "steepest descent"),
                               ("min_loss_lr_over_10", "tab:green", "min loss / 10")):
        value = result.get(key)
        if value is not None and math.isfinite(value) and value > 0:
            style = "-" if value == result.get("suggested_lr") else "--"
            ax.axvline(value, color=colour, ls=style, label=f"{label}: {value:.2e}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    ax.set_title(f"LR range test (suggested {result['suggested_lr']:.2e})")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.savefig(out_png, dpi=110)
