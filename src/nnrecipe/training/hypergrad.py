"""Hypergradient descent: SGD and Adam that learn their own learning rate while training.

Baydin, Cornish, Martínez Rubio, Schmidt & Wood 2018, "Online Learning Rate Adaptation with
Hypergradient Descent" (ICLR). The previous update θ_{t−1} = θ_{t−2} − α·u_{t−1} depends on α, so
∂f(θ_{t−1})/∂α = −g_t·u_{t−1} (g_t = ∇f(θ_{t−1}); u = g for SGD), and a gradient step on α with
step size β (``hypergrad_lr``) gives

    SGD-HD:   α_t = α_{t−1} + β · g_t · g_{t−1},            θ_t = θ_{t−1} − α_t · g_t
    Adam-HD:  α_t = α_{t−1} + β · g_t · u_{t−1},            θ_t = θ_{t−1} − α_t · u_t
              u_t = m̂_t / (√v̂_t + ε),  m̂_t = m_t/(1−β₁ᵗ),  v̂_t = v_t/(1−β₂ᵗ)  (Kingma & Ba 2015)

with the dot products taken over *all* parameters (one α for the whole
model). α grows while successive steps point the same way and shrinks when they flip sign.
u_0 = g_0 = 0, so the first step uses α_0 = the constructor's ``lr``. Coupled weight decay, as in
torch's SGD/Adam: g ← ∇f + λθ in the decayed group, used both in the update and in the
hypergradient (the objective being descended is then f + λ/2·‖θ‖²). α is not clamped (the
paper does not); a β too large for the problem can drive it negative, i.e. ascent.

torch has no hypergradient optimizers, so they are written here, after the paper's Algorithms and
the authors' reference code (gbaydin/hypergradient-descent), with two deliberate differences:
the hypergradient is summed over every parameter before α changes (the reference updates α
parameter by parameter inside the loop), and u_{t−1} is recomputed exactly from the stored
moments with step t−1's bias corrections.

Learning-rate schedules: these optimizers OWN their learning rate. α lives in optimizer state
(``state["hypergrad"]["lr"]``, saved by ``state_dict``) and whatever is written into
``param_groups[i]["lr"]`` before ``step()`` - the training loop writes the schedule's value there
every step - is ignored; after each step the learned α is written back into every group's
``"lr"`` so it can be read and logged. So a schedule (and its warm-up) has no effect: use
``schedule.name=constant``; ``optimizer.lr`` is the initial α_0. (Treating the written value as
a multiplier of α was rejected: a caller that does not rewrite ``"lr"`` every step would then
compound α with itself.) β, like α, is global: it is read from the first parameter group.

Cost: one host sync per step (the scalar hypergradient becomes a Python float, so ``"lr"`` is a
plain number for logs and checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

_STATE_KEY = "hypergrad"  # the global (not per-parameter) entry of `self.state`


class _Hypergradient(torch.optim.Optimizer):
    """Shared bookkeeping: α in ``state["hypergrad"]["lr"]``, mirrored into every group's ``"lr"``."""

    @property
    def learned_lr(self) -> float:
        entry = self.state.get(_STATE_KEY)
        return entry["lr"] if entry is not None else self.defaults["lr"]

    def _set_learned_lr(self, alpha: float) -> None:
        # A fresh dict, not an in-place update: torch's load_state_dict keeps non-parameter state
        # entries by reference, so mutating it would also change a saved or sibling state_dict.
        self.state[_STATE_KEY] = {"lr": alpha}
        for group in self.param_groups:
            group["lr"] = alpha

    def _gradients(self) -> list[tuple[torch.Tensor, torch.Tensor, dict]]:
        """(param, g = ∇f + λθ, group) for every parameter with a gradient."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if group["weight_decay"] == 0 else p.grad.add(p, alpha=group["weight_decay"])
                out.append((p, g, group))
        return out


class SGDHD(_Hypergradient):
    """SGD-HD: α_t = α_{t−1} + β·(g_t·g_{t−1}), θ_t = θ_{t−1} − α_t·g_t."""

    def __init__(self, params: Iterable, *, lr: float = 0.1, hypergrad_lr: float = 1e-4, weight_decay: float = 0.0):
        if lr <= 0 or hypergrad_lr < 0 or weight_decay < 0:
            raise ValueError(f"invalid SGD-HD settings: lr={lr}, hypergrad_lr={hypergrad_lr}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "hypergrad_lr": hypergrad_lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = self._gradients()
        for group in self.param_groups:  # a parameter without a gradient this step has g = 0
            for p in group["params"]:
                if p.grad is None and p in self.state:
                    self.state[p].pop("prev_grad", None)
        h = sum(((g * self.state[p]["prev_grad"]).sum() for p, g, _ in grads if "prev_grad" in self.state[p]),
                torch.zeros(()))
        alpha = self.learned_lr + self.param_groups[0]["hypergrad_lr"] * float(h)
        for p, g, _ in grads:
            self.state[p]["prev_grad"] = g.clone()  # clone: the grad buffer may be zeroed in place
            p.add_(g, alpha=-alpha)
        self._set_learned_lr(alpha)
        return loss


class AdamHD(_Hypergradient):
    """Adam-HD: α_t = α_{t−1} + β·(g_t·u_{t−1}), then Adam's update θ_t = θ_{t−1} − α_t·u_t."""

    def __init__(self, params: Iterable, *, lr: float = 1e-3, hypergrad_lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if lr <= 0 or hypergrad_lr < 0 or weight_decay < 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam-HD settings: lr={lr}, hypergrad_lr={hypergrad_lr}, betas={betas}, "
                             f"eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "hypergrad_lr": hypergrad_lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay})

    @staticmethod
    def _direction(state: dict, group: dict) -> torch.Tensor:
        """u_t = m̂_t / (√v̂_t + ε) from the stored moments at the stored step t (≥ 1)."""
        beta1, beta2 = group["betas"]
        t = state["step"]
        m_hat = state["exp_avg"] / (1 - beta1**t)
        v_hat = state["exp_avg_sq"] / (1 - beta2**t)
        return m_hat / (v_hat.sqrt() + group["eps"])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = self._gradients()
        h = torch.zeros(())
        for p, g, group in grads:
            state = self.state[p]
            if state.get("step", 0) > 0:  # u_{t−1}, before the moments move on
                h = h + (g * self._direction(state, group)).sum()
        alpha = self.learned_lr + self.param_groups[0]["hypergrad_lr"] * float(h)
        for p, g, group in grads:
            state = self.state[p]
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            beta1, beta2 = group["betas"]
            state["step"] += 1
            state["exp_avg"].mul_(beta1).add_(g, alpha=1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.add_(self._direction(state, group), alpha=-alpha)
        self._set_learned_lr(alpha)
        return loss

