"""LR range test (Smith 2017, "Cyclical Learning Rates"; fastai's `lr_find`).

The LR grows geometrically from `start_lr` to `end_lr` over `iterations` steps,
η_i = start·(end/start)^(i/(iterations−1)). The loss is smoothed with a bias-corrected EMA,
a_i = β·a_{i−1} + (1−β)·loss_i, s_i = a_i/(1−β^i), β = 1 − smoothing; the test stops when
s_i > diverge_factor × min(s) or the loss is non-finite. Suggestions: `steepest` = the LR where
ds/d(log η) is most negative (numpy.gradient, ignoring the first and last 10% of points);
`min_over_10` = the LR of the minimum smoothed loss divided by 10. `suggested_lr` = steepest,
unless it lies above the minimum-loss LR (then min_over_10, the safer choice). The model's and
the optimizer's states are restored afterwards.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure


def lr_range_test(model, optimizer, loss_fn, X, y, *, start_lr: float = 1e-7, end_lr: float = 10.0,
                  iterations: int = 100, batch_size: int = 64, smoothing: float = 0.05,
                  diverge_factor: float = 4.0, seed: int = 0) -> dict:
    model_state = copy.deepcopy(model.state_dict())
    optim_state = copy.deepcopy(optimizer.state_dict())
    g = torch.Generator().manual_seed(seed)
    ratio = (end_lr / start_lr) ** (1 / max(iterations - 1, 1))
    beta, avg, best = 1 - smoothing, 0.0, math.inf
    lrs, losses = [], []
    stopped_early = False
    model.train()
    try:
        perm = torch.randperm(len(X), generator=g).to(X.device)
        for i in range(iterations):
            lr = start_lr * ratio ** i
            for group in optimizer.param_groups:
                group["lr"] = lr
            start = (i * batch_size) % max(len(X) - batch_size + 1, 1)
            idx = perm[start:start + batch_size]
            loss = loss_fn(model(X[idx]), y[idx])
            value = loss.item()
            if not math.isfinite(value):
                stopped_early = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            avg = beta * avg + (1 - beta) * value
            smoothed = avg / (1 - beta ** (i + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if smoothed > diverge_factor * best:
                stopped_early = True
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
    return {**suggest(lrs, losses), "lrs": lrs, "losses": losses, "stopped_early": stopped_early}


def suggest(lrs: list[float], losses: list[float]) -> dict:
    if len(lrs) < 5:
        lr = lrs[0] if lrs else math.nan
        return {"suggested_lr": lr, "steepest_lr": lr, "min_loss_lr_over_10": lr}
    log_lr, s = np.log10(lrs), np.asarray(losses)
    slope = np.gradient(s, log_lr)
    skip = max(1, len(s) // 10)
    steepest = lrs[skip + int(np.argmin(slope[skip:len(s) - skip]))]
    min_lr = lrs[int(np.argmin(s))]
    suggested = steepest if steepest <= min_lr else min_lr / 10
    return {"suggested_lr": suggested, "steepest_lr": steepest, "min_loss_lr_over_10": min_lr / 10}


def plot_lr_finder(result: dict, out_png: str | Path) -> None:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(result["lrs"], result["losses"], lw=1.5, label="smoothed loss")
    ax.set_xscale("log")
    for key, colour, label in (("steepest_lr", "tab:red", "steepest slope"),
                               ("min_loss_lr_over_10", "tab:green", "min loss / 10")):
        if math.isfinite(result.get(key, math.nan)):
            ax.axvline(result[key], color=colour, ls="--", label=f"{label}: {result[key]:.2e}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test (suggested {result['suggested_lr']:.2e})")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(out_png, dpi=110)
