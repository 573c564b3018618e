"""The optimizer on a bowl: torch's optimizers on f(θ) = ½θᵀHθ in two dimensions, next to theory.

H = U·diag(λ₁, λ₂)·Uᵀ with λ₁ = 1, λ₂ = 1/κ and U the rotation by `angle`; the minimum is θ* = 0,
f* = 0. The start is z₀ = (1, √κ) in the eigenbasis (θ₀ = U z₀), so both directions hold the same
share of f(θ₀) = 1. A run counts the steps until f(θ_t)/f(θ₀) < ε.

Theory (each direction i evolves alone: z_{t+1} = (1 − ηλᵢ)·z_t for gradient descent):

- gradient descent at η = 2/(λ₁ + λ₂): |1 − ηλ₁| = |1 − ηλ₂| = r = (κ − 1)/(κ + 1), so f_t = r^{2t}·f₀
  exactly and t(ε) = ln(1/ε) / (2 ln(1/r)) ≈ κ·ln(1/ε)/4 (the distance ‖θ_t‖ falls as r^t:
  κ·ln(1/ε)/2 steps to shrink it by ε).
- heavy ball (Polyak 1964) at η = 4/(√λ₁ + √λ₂)², β = ((√κ − 1)/(√κ + 1))²: every direction
  contracts as √β = (√κ − 1)/(√κ + 1) per step, so t(ε) ≈ ln(1/ε) / (2 ln(1/√β)) ≈ √κ·ln(1/ε)/4
  (plus a transient: the extreme directions have a double root, a factor t in front of √β^t).
  torch's SGD with momentum β (v ← βv + g, θ ← θ − ηv) is exactly the heavy ball.
- Nesterov (η = 1/λ₁, β = (√κ − 1)/(√κ + 1), Nesterov 1983): f_t ≤ (1 − 1/√κ)^t·(f₀ + λ₂/2‖θ₀‖²),
  an upper bound.

- divergence: gradient descent with η > 2/λmax has |1 − ηλ₁| > 1 and grows without bound.

RMSProp, Adam and the other adaptive methods have no such formula here (their diagonal
preconditioner depends on the rotation: `angle` 0 aligns H with it); they get the grid search only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nnrecipe.config import OptimizerConfig
from nnrecipe.errors import UserError
from nnrecipe.training.optim import OPTIMIZERS, build_optimizer

ALIASES = {"sgd": {"name": "sgd", "momentum": 0.0}, "momentum": {"name": "sgd"},
           "nesterov": {"name": "sgd", "nesterov": True}}
DIVERGED = 1e8  # f/f₀ above this: the run diverged
GRID = [2.0 ** k for k in range(1, -9, -1)]  # η from 2 down to 2⁻⁸ (λ₁ = 1): fast runs first
PAST_THRESHOLD = 1.05  # the divergence demonstration runs at 1.05 × 2/λmax


class Bowl(nn.Module):
    """θ ∈ R², f(θ) = ½θᵀHθ."""

    def __init__(self, kappa: float, angle: float):
        super().__init__()
        a = math.radians(angle)
        self.U = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
        self.eigenvalues = torch.tensor([1.0, 1.0 / kappa], dtype=torch.float64)
        self.H = self.U @ torch.diag(self.eigenvalues) @ self.U.T
        self.start = self.U @ torch.tensor([1.0, math.sqrt(kappa)], dtype=torch.float64)
        self.theta = nn.Parameter(self.start.clone())

    def forward(self) -> torch.Tensor:
        return 0.5 * self.theta @ self.H @ self.theta

    def value(self, theta: torch.Tensor) -> torch.Tensor:
        """f at each row of `theta` [..., 2] (for contours)."""
        return 0.5 * torch.einsum("...i,ij,...j->...", theta, self.H, theta)


def theory(name: str, kappa: float, tol: float) -> dict | None:
    """The optimal η (and β) and the steps theory gives (module docstring), or None."""
    if name == "sgd":
        r = (kappa - 1) / (kappa + 1)
        steps = math.log(1 / tol) / (2 * math.log(1 / r)) if r > 0 else 1.0
        return {"lr": 2 / (1 + 1 / kappa), "momentum": 0.0, "steps": steps,
                "formula": "ln(1/ε)/(2 ln((κ+1)/(κ−1))) ≈ κ·ln(1/ε)/4, at η = 2/(λ₁+λ₂)"}
    root = math.sqrt(kappa)
    if name == "momentum":
        rate = (root - 1) / (root + 1)
        steps = math.log(1 / tol) / (2 * math.log(1 / rate)) if rate > 0 else 1.0
        return {"lr": 4 / (1 + 1 / root) ** 2, "momentum": rate ** 2, "steps": steps,
                "formula": "ln(1/ε)/(2 ln((√κ+1)/(√κ−1))) ≈ √κ·ln(1/ε)/4, at η = 4/(√λ₁+√λ₂)², "
                           "β = ((√κ−1)/(√κ+1))²"}
    if name == "nesterov":
        rate = 1 - 1 / root
        bound = 1 + (1 + kappa) / (2 * kappa)  # (f₀ + λ₂/2‖θ₀‖²)/f₀ with f₀ = 1, ‖θ₀‖² = 1 + κ
        steps = math.log(bound / tol) / math.log(1 / rate) if rate > 0 else 1.0
        return {"lr": 1.0, "momentum": (root - 1) / (root + 1), "steps": steps,
                "formula": "upper bound ln(C/ε)/ln(1/(1−1/√κ)) ≈ √κ·ln(C/ε), C = 1 + λ₂‖θ₀‖²/(2f₀), at η = 1/λ₁, "
                           "β = (√κ−1)/(√κ+1)"}
    return None


def optimizer_config(name: str, *, lr: float, momentum: float | None) -> OptimizerConfig:
    """The project's optimizer config for `name` (an alias or any ``optimizer.name``), no weight decay."""
    fields = dict(ALIASES.get(name, {"name": name}))
    if fields["name"] not in OPTIMIZERS:
        raise UserError(f"unknown optimizer '{name}'", "--optimizers",
                        f"use sgd, momentum, nesterov or one of {', '.join(OPTIMIZERS)}")
    if momentum is not None and name in ("momentum", "nesterov"):
        fields["momentum"] = momentum
    return OptimizerConfig(**fields, lr=lr, weight_decay=0.0)


def run_optimizer(name: str, *, kappa: float, angle: float, lr: float, tol: float, max_steps: int,
                  momentum: float | None = None, keep: int = 400) -> dict:
    """One run from θ₀: steps to f/f₀ < tol (None if not reached), the loss per step, the path."""
    bowl = Bowl(kappa, angle)
    optimizer = build_optimizer(bowl, optimizer_config(name, lr=lr, momentum=momentum))
    losses, path, reached, diverged, f0 = [], [], None, False, None
    for step in range(max_steps + 1):
        optimizer.zero_grad()
        loss = bowl()  # f(θ_step): one forward per step serves the count and the gradient
        f0 = f0 if f0 is not None else float(loss.detach())
        ratio = float(loss.detach()) / f0
        losses.append(ratio)
        if step <= keep:
            path.append(bowl.theta.detach().clone())
        if not math.isfinite(ratio) or ratio > DIVERGED:
            diverged = True
            break
        if ratio < tol:
            reached = step
            break
        if step < max_steps:
            loss.backward()
            optimizer.step()
    return {"name": name, "lr": lr, "momentum": momentum if name in ("momentum", "nesterov") else None,
            "steps_to_tol": reached, "diverged": diverged, "final_loss": losses[-1], "losses": losses,
            "path": torch.stack(path).tolist()}


def _better(a: dict, b: dict | None) -> bool:
    if b is None:
        return True
    if a["steps_to_tol"] is not None or b["steps_to_tol"] is not None:
        return b["steps_to_tol"] is None or (a["steps_to_tol"] is not None and a["steps_to_tol"] < b["steps_to_tol"])
    return not a["diverged"] and (b["diverged"] or a["final_loss"] < b["final_loss"])


def best_run(name: str, *, kappa: float, angle: float, tol: float, max_steps: int, lr: float | None = None) -> dict:
    """`name`'s run at `lr`, or at its best LR of `GRID` ∪ {theory's η} (fewest steps, then lowest f)."""
    known = theory(name, kappa, tol)
    momentum = known["momentum"] if known and name in ("momentum", "nesterov") else None
    lrs = [lr] if lr is not None else sorted(set(GRID + ([known["lr"]] if known else [])), reverse=True)
    best = None
    for candidate in lrs:
        # a run slower than the best so far cannot win: it stops at the best's step count
        limit = best["steps_to_tol"] if best is not None and best["steps_to_tol"] is not None else max_steps
        result = run_optimizer(name, kappa=kappa, angle=angle, lr=candidate, tol=tol, max_steps=limit,
                               momentum=momentum)
        if _better(result, best):
            best = result
    best["grid"] = None if lr is not None else lrs
    best["theory_steps"] = math.ceil(known["steps"]) if known else None
    best["theory"] = known["formula"] if known else None
    best["theory_lr"] = known["lr"] if known else None
    return best


def bowl_experiment(*, kappa: float = 50.0, angle: float = 30.0, tol: float = 1e-6,
                    optimizers: list[str] = ("sgd", "momentum", "nesterov", "rmsprop", "adam"),
                    lrs: dict[str, float] | None = None, max_steps: int | None = None) -> dict:
    """Every optimizer's best run, and gradient descent just past 2/λmax (module docstring)."""
    if not (math.isfinite(kappa) and kappa >= 1):
        raise UserError(f"kappa must be >= 1, got {kappa}", "--kappa", "e.g. --kappa 50")
    if not (0 < tol < 1):
        raise UserError(f"tol must be in (0, 1), got {tol}", "--tol", "e.g. --tol 1e-6")
    if not optimizers:
        raise UserError("no optimizer given", "--optimizers", "e.g. --optimizers sgd,momentum,adam")
    lrs = dict(lrs or {})
    for name, lr in lrs.items():
        if name not in optimizers or not (lr > 0):
            raise UserError(f"--lr {name}={lr}: not a listed optimizer with a positive LR", "--lr",
                            "give NAME=LR pairs for names in --optimizers, e.g. sgd=1.9")
    for name in optimizers:
        optimizer_config(name, lr=1.0, momentum=None)  # an unknown name fails before any run
    gd_steps = theory("sgd", kappa, tol)["steps"]
    max_steps = max_steps if max_steps is not None else max(200, math.ceil(20 * gd_steps))
    if max_steps < 1:
        raise UserError(f"max_steps must be >= 1, got {max_steps}", "--max-steps", "e.g. --max-steps 5000")
    runs = {name: best_run(name, kappa=kappa, angle=angle, tol=tol, max_steps=max_steps, lr=lrs.get(name))
            for name in optimizers}
    threshold = 2.0  # 2/λmax with λ₁ = 1
    past = run_optimizer("sgd", kappa=kappa, angle=angle, lr=PAST_THRESHOLD * threshold, tol=tol,
                         max_steps=max_steps)
    return {"kappa": kappa, "angle": angle, "tol": tol, "eigenvalues": [1.0, 1.0 / kappa],
            "start": Bowl(kappa, angle).start.tolist(), "max_steps": max_steps, "optimizers": runs,
            "divergence": {"threshold_lr": threshold, "lr": past["lr"], "diverged": past["diverged"],
                           "steps_run": len(past["losses"]) - 1, "final_loss": past["final_loss"],
                           "losses": past["losses"], "path": past["path"]}}
