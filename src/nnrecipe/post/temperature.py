"""Temperature scaling (Guo et al. 2017): p̂ = softmax(z / T), one scalar T > 0.

T is fit on held-out (validation) logits by minimizing the negative log-likelihood
NLL(T) = −(1/N) Σᵢ log softmax(zᵢ/T)_{yᵢ}. We optimize s = log T (so T = eˢ stays positive without
constraints) with torch.optim.LBFGS; NLL(T) is smooth in s and has a single minimum in practice.
Dividing logits by T leaves the argmax, hence accuracy, unchanged.

Degenerate case: when every validation example is classified correctly, NLL(T) decreases
monotonically as T → 0 and has no minimum; the "fit" would push probabilities to 0/1 and make any
later mistake catastrophically confident. `fit_temperature` then returns T = 1 (no rescaling) and
says so through `temperature_fit`'s `degenerate` flag.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


T_MIN, T_MAX = 0.05, 20.0


def temperature_fit(logits: torch.Tensor, y: torch.Tensor, *, max_iter: int = 200) -> dict:
    """{"temperature": T, "degenerate": bool}: T minimizing NLL, or 1 when no minimum exists."""
    if bool((logits.argmax(-1) == y).all()):
        return {"temperature": 1.0, "degenerate": True, "reason": "separated"}
    t = fit_temperature(logits, y, max_iter=max_iter)
    if t <= T_MIN or t >= T_MAX:  # the optimum ran off to a boundary: no interior minimum
        return {"temperature": 1.0, "degenerate": True, "reason": "boundary"}
    return {"temperature": t, "degenerate": False}


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, *, max_iter: int = 200) -> float:
    """Return T minimizing the NLL of softmax(logits / T) on (logits, y), clamped to [T_MIN, T_MAX]."""
    logits = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return min(max(t, T_MIN), T_MAX)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Calibrated probabilities softmax(z / T)."""
    return torch.softmax(logits / temperature, dim=-1)
