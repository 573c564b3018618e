"""Temperature scaling (Guo et al. 2017): p̂ = softmax(z / T), one scalar T > 0.

T is fit on held-out (validation) logits by minimizing the negative log-likelihood
NLL(T) = −(1/N) Σᵢ log softmax(zᵢ/T)_{yᵢ}. We optimize s = log T (so T = eˢ stays positive without
constraints) with torch.optim.LBFGS; NLL(T) is smooth in s and has a single minimum in practice.
Dividing logits by T leaves the argmax, hence accuracy, unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, *, max_iter: int = 200) -> float:
    """Return T minimizing the NLL of softmax(logits / T) on (logits, y)."""
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
    # A degenerate fit (all-correct, separable val set) can push T towards 0; keep it sane.
    return min(max(t, 1e-2), 1e2)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Calibrated probabilities softmax(z / T)."""
    return torch.softmax(logits / temperature, dim=-1)
