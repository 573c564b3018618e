"""L1/L2 penalties against their formulas, L1's sparsity, and torch's inverted dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnrecipe.training.regularization import penalty


def _small_model() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        model[3].weight.copy_(torch.tensor([[-4.0, 2.0]]))
        # Huge biases and norm parameters: they must not contribute.
        model[0].bias.fill_(1e6)
        model[3].bias.fill_(-1e6)
        model[1].weight.fill_(1e6)
        model[1].bias.fill_(1e6)
    return model


# Σw² = 1+4+0.25+0+9+1 + 16+4 = 35.25 ; Σ|w| = 1+2+0.5+0+3+1 + 4+2 = 13.5
SUM_SQ, SUM_ABS = 35.25, 13.5


def test_zero_coefficients_return_none():
    assert penalty(_small_model(), l1=0.0, l2=0.0) is None


def test_l2_value_is_half_lambda_sum_squares():
    out = penalty(_small_model(), l1=0.0, l2=0.1)
    assert out.ndim == 0
    assert out.item() == pytest.approx(0.1 / 2 * SUM_SQ)


def test_l1_value_is_lambda_sum_abs():
    assert penalty(_small_model(), l1=0.01, l2=0.0).item() == pytest.approx(0.01 * SUM_ABS)


def test_l1_plus_l2():
    out = penalty(_small_model(), l1=0.01, l2=0.1)
    assert out.item() == pytest.approx(0.01 * SUM_ABS + 0.05 * SUM_SQ)


def test_l2_gradient_is_lambda_w_and_biases_get_none():
    model, lam = _small_model(), 0.3
    penalty(model, l1=0.0, l2=lam).backward()
    for layer in (model[0], model[3]):
        torch.testing.assert_close(layer.weight.grad, lam * layer.weight.detach())
        assert layer.bias.grad is None
    assert model[1].weight.grad is None and model[1].bias.grad is None


def test_l1_gradient_is_lambda_sign_w():
    model, lam = _small_model(), 0.2
    penalty(model, l1=lam, l2=0.0).backward()
    w = model[0].weight.detach()
    torch.testing.assert_close(model[0].weight.grad, lam * torch.sign(w))


def test_negative_coefficient_rejected():
    with pytest.raises(ValueError):
        penalty(_small_model(), l1=-1.0, l2=0.0)


def _fit_sparse_problem(l1: float, *, steps: int = 1500, lr: float = 0.05) -> torch.Tensor:
    """y = X·w* + noise, w* with 3 non-zeros among 50 features; full-batch SGD, LR decayed linearly."""
    gen = torch.Generator().manual_seed(0)
    n, d = 100, 50
    x = torch.randn(n, d, generator=gen)
    w_star = torch.zeros(d)
    w_star[:3] = torch.tensor([3.0, -2.0, 1.5])
    y = x @ w_star + 0.5 * torch.randn(n, generator=gen)
    torch.manual_seed(0)
    model = nn.Linear(d, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    # Decaying η shrinks the subgradient's oscillation around 0 (amplitude ≈ η·λ₁).
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x).squeeze(1), y)
        reg = penalty(model, l1=l1, l2=0.0)
        if reg is not None:
            loss = loss + reg
        loss.backward()
        opt.step()
        schedule.step()
    return model.weight.detach()[0]


def test_l1_drives_irrelevant_weights_to_zero():
    with_l1 = _fit_sparse_problem(l1=0.15)
    without = _fit_sparse_problem(l1=0.0)
    near_zero_l1 = int((with_l1[3:].abs() < 1e-2).sum())
    near_zero_plain = int((without[3:].abs() < 1e-2).sum())
    assert near_zero_l1 >= 30, near_zero_l1
    assert near_zero_plain <= 15, near_zero_plain
    assert near_zero_l1 >= near_zero_plain + 20
    # The relevant weights survive (shrunk by about λ₁/2 each, the lasso bias, here).
    assert (with_l1[:3].abs() > 1.0).all()
    torch.testing.assert_close(with_l1[:3], torch.tensor([3.0, -2.0, 1.5]), atol=0.3, rtol=0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_is_inverted(p):
    """Train mode: kept units scaled by 1/(1−p), so E[output] = input; eval mode: identity."""
    torch.manual_seed(0)
    drop = nn.Dropout(p)
    x = torch.rand(200_000) + 0.5
    drop.train()
    y = drop(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    assert float(kept.float().mean()) == pytest.approx(1 - p, abs=0.01)
    assert float(y.mean()) == pytest.approx(float(x.mean()), rel=0.02)
    drop.eval()
    assert torch.equal(drop(x), x)
