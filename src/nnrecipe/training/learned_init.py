"""Initialization that learns: MetaInit and GradInit rescale the drawn weights on a few batches.

Both keep the direction of every weight tensor W_i (each Linear/Conv kernel, the tensors with
dim ≥ 2, as in both papers' code) from the base draw (``init.name`` ``metainit``/``gradinit`` draw
with ``auto`` first) and learn one positive scale per tensor, W_i ← α_i·W_i, on training batches
of the run's own loss. Biases and norm layers are left alone. Neither exists in torch; both are
written here after the papers' reference algorithms.

MetaInit (Dauphin & Schoenholz 2019, "MetaInit: Initializing learning by learning to
initialize"): the gradient quotient of a batch's loss,

    GQ(θ) = (1/N) Σ_k | (g − H g)_k / g_k − 1 |,   g = ∇L(θ), H g = ∇(½‖g‖²),

measures how far one gradient step is from leaving the gradient unchanged (g(θ − g) ≈ g − Hg);
a good init has GQ small, neither exploding (Hg ≫ g) nor vanishing curvature. The norm of each
W_i moves by signed gradient descent with momentum: m_i ← μ·m_i − η·sign(∂GQ/∂‖W_i‖),
‖W_i‖ ← ‖W_i‖ + m_i (the paper's Algorithm 1 and appendix code, including the ε-signed
denominator g + ε·sign(g)). The model is in eval mode so dropout adds no noise. The signed steps
never shrink, so the norms keep oscillating around the optimum (on a 30-layer ReLU MLP the head's
norm swung between 0.1 and 2.4 while GQ fell from 249 to ≈ 0.8): the scales of the step with the
lowest GQ are kept, not the last step's (a choice made here; the paper returns the last).

GradInit (Zhu, Ni, Xu, Kong, Huang & Goldstein 2021, "GradInit: Learning to initialize neural
networks for stable and efficient training", Algorithm 1): with θ_α = (α_i·W_i), minimize the
loss after one optimizer step of the run's learning rate η on the next batch,

    min_α L(S_{t+1}; θ_α − η·A[g_t]),   g_t = ∇L(S_t; θ_α),   subject to ‖g_t‖_p ≤ γ,

where A[g] = g for SGD-like optimizers (p = 2) and A[g] = g/(|g| + ε), Adam's first step, for the
Adam family (p = 1). When the constraint is violated the step minimizes ‖g_t‖_p instead. α is
updated by Adam with learning rate τ and clamped to α ≥ α_min (0.01). γ: the paper sets it per
model; here, unless given, γ = `GAMMA_GROWTH` (10) × ‖g‖_p at the drawn weights: the gradient may
grow by an order of magnitude but not explode, which needs no tuning across models. (A bound at
the initial norm itself stalls SGD: on a small-init 7-layer MLP its one-step loss went 1.090 →
1.097, against 1.090 → 0.966 unbounded; the objective is measured on a batch other than the one g
came from, so single values are noisy.)

Returned statistics (what `nnrecipe fit` prints and metrics.json keeps under ``init``): the
objective before and after (the gradient quotient; GradInit's one-step loss) on the first
batches, and the scale learned for each tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
MIN_NORM_FACTOR = 1e-3  # MetaInit: a norm never drops below this share of its start (stays positive)
GAMMA_GROWTH = 10.0  # GradInit's default bound: γ = this × ‖g‖_p at the draw


def weight_tensors(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The trainable tensors with dim ≥ 2: what both methods rescale."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]


def gradient_quotient(loss: torch.Tensor, params: list[torch.Tensor], *, eps: float = 1e-5) -> torch.Tensor:
    """GQ = mean_k |(g − Hg)_k / (g_k + ε·sign(g_k)) − 1| over every entry of `params` (differentiable)."""
    grads = torch.autograd.grad(loss, params, create_graph=True)
    hvp = torch.autograd.grad(sum((g**2).sum() / 2 for g in grads), params, create_graph=True)
    total = sum(((g - h) / (g + eps * (2 * (g >= 0).float() - 1).detach()) - 1).abs().sum()
                for g, h in zip(grads, hvp))
    return total / sum(p.numel() for p in params)


def metainit(model: nn.Module, batches: Batches, loss_fn: Callable, *, steps: int, lr: float = 0.1,
             momentum: float = 0.9, eps: float = 1e-5) -> dict:
    """MetaInit in place (module docstring); returns the before/after GQ and the learned scales."""
    named = weight_tensors(model)
    params = [p for _, p in named]
    every = [p for p in model.parameters() if p.requires_grad]
    start = [float(p.detach().norm()) for p in params]
    memory = [0.0] * len(params)
    was_training = model.training
    model.eval()

    def quotient(i: int) -> torch.Tensor:
        x, y = batches[i % len(batches)]
        return gradient_quotient(loss_fn(model(x), y), every, eps=eps)

    try:
        before = float(quotient(0).detach())
        best, best_norms = math.inf, start
        for i in range(steps):
            gq = quotient(i)
            if float(gq.detach()) < best:  # these norms (before this step) are the best seen so far
                best, best_norms = float(gq.detach()), [float(p.detach().norm()) for p in params]
            grads = torch.autograd.grad(gq, params)
            with torch.no_grad():
                for j, (p, g) in enumerate(zip(params, grads)):
                    norm = float(p.norm())
                    direction = float(torch.sign((p * g).sum() / norm))  # sign of ∂GQ/∂‖W‖
                    memory[j] = momentum * memory[j] - lr * direction
                    new = max(norm + memory[j], MIN_NORM_FACTOR * start[j])
                    p.mul_(new / norm)
        with torch.no_grad():
            for p, norm in zip(params, best_norms):
                p.mul_(norm / float(p.norm()))
        after = float(quotient(0).detach())
    finally:
        model.train(was_training)
    scales = {name: float(p.detach().norm()) / s for (name, p), s in zip(named, start)}
    return {"method": "metainit", "steps": steps, "objective": "gradient quotient", "before": before,
            "after": after, "scales": scales}


def _one_step_loss(model, weights: dict, batch, loss_fn, *, lr: float, adam_step: bool, eps: float):
    """(L(θ_α) on `batch`, its gradient g w.r.t. the rescaled weights, kept in the graph)."""
    x, y = batch
    loss = loss_fn(functional_call(model, weights, (x,)), y)
    grads = torch.autograd.grad(loss, list(weights.values()), create_graph=True)
    steps = [g / (g.abs() + eps) if adam_step else g for g in grads]
    stepped = {name: w - lr * s for (name, w), s in zip(weights.items(), steps)}
    return loss, grads, stepped


def gradinit(model: nn.Module, batches: Batches, loss_fn: Callable, *, steps: int, step_lr: float,
             adam_step: bool, lr: float = 1e-2, gamma: float | None = None, min_scale: float = 0.01,
             eps: float = 1e-8) -> dict:
    """GradInit in place (module docstring); returns the one-step loss before/after and the scales."""
    named = weight_tensors(model)
    base = {name: p.detach().clone() for name, p in named}
    alphas = [torch.ones((), device=p.device, requires_grad=True) for _, p in named]
    optimizer = torch.optim.Adam(alphas, lr=lr)
    norm_p = 1 if adam_step else 2
    was_training = model.training
    model.eval()  # no dropout noise in the objective (BatchNorm: its running statistics)

    def objective(t: int) -> tuple[torch.Tensor, torch.Tensor]:
        weights = {name: a * w for a, (name, w) in zip(alphas, base.items())}
        _, grads, stepped = _one_step_loss(model, weights, batches[t % len(batches)], loss_fn, lr=step_lr,
                                           adam_step=adam_step, eps=eps)
        grad_norm = sum(g.abs().pow(norm_p).sum() for g in grads) ** (1 / norm_p)
        x, y = batches[(t + 1) % len(batches)]
        return loss_fn(functional_call(model, stepped, (x,)), y), grad_norm

    try:
        before, start_norm = (float(v.detach()) for v in objective(0))
        bound = gamma if gamma is not None else GAMMA_GROWTH * start_norm
        for t in range(steps):
            after_step, grad_norm = objective(t)
            target = grad_norm if float(grad_norm.detach()) > bound else after_step
            grads = torch.autograd.grad(target, alphas)
            optimizer.zero_grad()
            for a, g in zip(alphas, grads):
                a.grad = g
            optimizer.step()
            with torch.no_grad():
                for a in alphas:
                    a.clamp_(min=min_scale)
        after = float(objective(0)[0].detach())
    finally:
        model.train(was_training)
    with torch.no_grad():
        for a, (name, p) in zip(alphas, named):
            p.copy_(a * base[name])
    scales = {name: float(a) for a, (name, _) in zip(alphas, named)}
    return {"method": "gradinit", "steps": steps, "objective": "loss after one step", "before": before,
            "after": after, "gamma": bound, "scales": scales}


def finite_report(report: dict) -> bool:
    """False when the learned scales or the objective are not finite (the init then failed)."""
    values = [report["before"], report["after"], *report["scales"].values()]
    return all(math.isfinite(v) for v in values)
