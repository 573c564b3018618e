"""Optimizers against their update formulas, written out here by hand on a tiny tensor."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from nnrecipe.config import OptimizerConfig
from nnrecipe.errors import UserError
from nnrecipe.models.mlp import MLP
from nnrecipe.training.lookahead import Lookahead
from nnrecipe.training.optim import OPTIMIZERS, build_optimizer, default_lr

F64 = torch.float64
W0 = [[1.0, -2.0, 0.5]]
GRADS = [[[0.5, -1.0, 2.0]], [[-0.3, 0.8, 1.0]], [[0.2, 0.1, -0.4]]]
LR, MU = 0.1, 0.9


class Tiny(nn.Module):
    """One decayed weight row and one (no-decay) bias."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(W0, dtype=F64))
        self.bias = nn.Parameter(torch.tensor([0.3], dtype=F64))


def _cfg(name: str, **kw) -> OptimizerConfig:
    return OptimizerConfig(name=name, **{"lr": LR, "weight_decay": 0.0, **kw})


def _run(cfg: OptimizerConfig, grads=GRADS, bias_grad: float = 0.0) -> list[torch.Tensor]:
    """Apply the given weight gradients step by step; return the weight after each step."""
    model = Tiny()
    opt = build_optimizer(model, cfg)
    out = []
    for g in grads:
        opt.zero_grad()
        model.weight.grad = torch.tensor(g, dtype=F64)
        model.bias.grad = torch.tensor([bias_grad], dtype=F64)
        opt.step()
        out.append(model.weight.detach().clone())
    return out


def _t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=F64)


# --- SGD -----------------------------------------------------------------------------------------

def test_sgd_classic():
    th, g1, g2 = _t(W0), _t(GRADS[0]), _t(GRADS[1])
    v1 = g1
    th1 = th - LR * v1
    v2 = MU * v1 + g2
    th2 = th1 - LR * v2
    got = _run(_cfg("sgd", momentum=MU), GRADS[:2])
    assert torch.allclose(got[0], th1) and torch.allclose(got[1], th2)


def test_sgd_ema():
    th, g1, g2 = _t(W0), _t(GRADS[0]), _t(GRADS[1])
    v1 = g1  # torch seeds the buffer with the first gradient, undampened
    th1 = th - LR * v1
    v2 = MU * v1 + (1 - MU) * g2
    th2 = th1 - LR * v2
    got = _run(_cfg("sgd", momentum=MU, momentum_style="ema"), GRADS[:2])
    assert torch.allclose(got[0], th1) and torch.allclose(got[1], th2)


def test_sgd_nesterov():
    th, g1, g2 = _t(W0), _t(GRADS[0]), _t(GRADS[1])
    v1 = g1
    th1 = th - LR * (g1 + MU * v1)
    v2 = MU * v1 + g2
    th2 = th1 - LR * (g2 + MU * v2)
    got = _run(_cfg("sgd", momentum=MU, nesterov=True), GRADS[:2])
    assert torch.allclose(got[0], th1) and torch.allclose(got[1], th2)


def test_sgd_coupled_weight_decay():
    th, g1 = _t(W0), _t(GRADS[0])
    got = _run(_cfg("sgd", momentum=0.0, weight_decay=0.1), GRADS[:1])
    assert torch.allclose(got[0], th - LR * (g1 + 0.1 * th))


def test_ema_with_scaled_lr_matches_classic_after_warm_in():
    g = [GRADS[0]] * 150  # μ¹⁵⁰ ≈ 1e-7: the classic sum has converged to g/(1−μ)
    classic = _run(_cfg("sgd", momentum=MU), g)
    ema = _run(_cfg("sgd", momentum=MU, momentum_style="ema", lr=LR / (1 - MU)), g)
    step_classic = classic[-1] - classic[-2]
    step_ema = ema[-1] - ema[-2]
    assert torch.allclose(step_classic, step_ema, rtol=1e-5)
    assert not torch.allclose(classic[1] - classic[0], ema[1] - ema[0])  # but not during warm-in


@pytest.mark.parametrize("kw", [{"momentum_style": "ema"}, {"momentum": 0.0}])
def test_nesterov_needs_classic_momentum(kw):
    with pytest.raises(ValueError, match="nesterov"):
        build_optimizer(Tiny(), _cfg("sgd", nesterov=True, **kw))


# --- adaptive methods ----------------------------------------------------------------------------

def test_rmsprop():
    alpha, eps = 0.9, 1e-8
    th, g1, g2 = _t(W0), _t(GRADS[0]), _t(GRADS[1])
    s1 = (1 - alpha) * g1**2
    th1 = th - LR * g1 / (s1.sqrt() + eps)
    s2 = alpha * s1 + (1 - alpha) * g2**2
    th2 = th1 - LR * g2 / (s2.sqrt() + eps)
    got = _run(_cfg("rmsprop", alpha=alpha, eps=eps), GRADS[:2])
    assert torch.allclose(got[0], th1) and torch.allclose(got[1], th2)


def test_adagrad():
    eps = 1e-8
    th, g1, g2 = _t(W0), _t(GRADS[0]), _t(GRADS[1])
    s1 = g1**2
    th1 = th - LR * g1 / (s1.sqrt() + eps)
    s2 = s1 + g2**2
    th2 = th1 - LR * g2 / (s2.sqrt() + eps)
    got = _run(_cfg("adagrad", eps=eps), GRADS[:2])
    assert torch.allclose(got[0], th1) and torch.allclose(got[1], th2)


def _adam_by_hand(lr: float, decoupled_decay: float = 0.0, steps: int = 2) -> list[torch.Tensor]:
    b1, b2, eps = 0.9, 0.999, 1e-8
    th, m, v, out = _t(W0), torch.zeros(1, 3, dtype=F64), torch.zeros(1, 3, dtype=F64), []
    for t in range(1, steps + 1):
        g = _t(GRADS[t - 1])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        th = th - lr * decoupled_decay * th - lr * m_hat / (v_hat.sqrt() + eps)
        out.append(th)
    return out


def test_adam():
    got = _run(_cfg("adam", lr=0.01), GRADS[:2])
    want = _adam_by_hand(0.01)
    assert torch.allclose(got[0], want[0]) and torch.allclose(got[1], want[1])


def test_adamw_decoupled_decay():
    got = _run(_cfg("adamw", lr=0.01, weight_decay=0.1), GRADS)
    want = _adam_by_hand(0.01, decoupled_decay=0.1, steps=3)
    assert all(torch.allclose(a, b) for a, b in zip(got, want))


def test_adamw_does_not_decay_a_bias_with_zero_grad():
    model = Tiny()
    opt = build_optimizer(model, _cfg("adamw", lr=0.1, weight_decay=0.5))
    for g in GRADS:
        opt.zero_grad()
        model.weight.grad, model.bias.grad = _t(g), torch.zeros(1, dtype=F64)
        opt.step()
    assert model.bias.item() == 0.3
    assert not torch.allclose(model.weight, _t(W0))


def test_decay_groups_exclude_biases_and_norms():
    model = MLP(4, 3, hidden=(8, 8), norm="layer")
    opt = build_optimizer(model, OptimizerConfig(name="adamw", weight_decay=0.05))
    decayed, plain = opt.param_groups
    linear_weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(w) for w in linear_weights}
    others = [p for p in model.parameters() if all(p is not w for w in linear_weights)]
    assert {id(p) for p in plain["params"]} == {id(p) for p in others}
    assert any(isinstance(m, nn.LayerNorm) and m.weight is p for m in model.modules() for p in plain["params"])


# --- Lookahead -----------------------------------------------------------------------------------

def test_lookahead_slow_fast_update():
    k, a = 3, 0.5
    phi = _t(W0)
    theta = phi.clone()
    grads = GRADS * 2
    want = []
    for i, g in enumerate(grads, start=1):
        theta = theta - LR * _t(g)  # inner: plain SGD
        if i % k == 0:
            phi = phi + a * (theta - phi)
            theta = phi.clone()
        want.append(theta)
    got = _run(_cfg("sgd", momentum=0.0, lookahead=True, lookahead_k=k, lookahead_alpha=a), grads)
    assert all(torch.allclose(x, y) for x, y in zip(got, want))


def test_lookahead_shares_the_inner_param_groups():
    model = Tiny()
    opt = build_optimizer(model, _cfg("adam", lookahead=True))
    assert isinstance(opt, Lookahead) and isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups is opt.optimizer.param_groups
    opt.param_groups[0]["lr"] = 0.123
    assert opt.optimizer.param_groups[0]["lr"] == 0.123


# --- hypergradient descent -----------------------------------------------------------------------

def test_sgd_hd_three_steps_by_hand():
    beta, bias_grads = 0.05, [0.4, -0.2, 0.7]
    model = Tiny()
    opt = build_optimizer(model, _cfg("sgd_hd", hypergrad_lr=beta))
    th, b, alpha, prev = _t(W0), 0.3, LR, None
    for g, gb in zip(GRADS, bias_grads):
        g = _t(g)
        if prev is not None:  # dot product over all parameters: weight and bias
            alpha = alpha + beta * (float((g * prev[0]).sum()) + gb * prev[1])
        th, b, prev = th - alpha * g, b - alpha * gb, (g, gb)
        for group in opt.param_groups:
            group["lr"] = 999.0  # what a schedule would write: ignored by design
        opt.zero_grad()
        model.weight.grad, model.bias.grad = g.clone(), torch.tensor([gb], dtype=F64)
        opt.step()
        assert torch.allclose(model.weight, th) and math.isclose(model.bias.item(), b, rel_tol=1e-12)
        assert all(math.isclose(group["lr"], alpha, rel_tol=1e-12) for group in opt.param_groups)
    assert alpha != LR


def test_adam_hd_two_steps_by_hand():
    beta, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    got = _run(_cfg("adam_hd", lr=0.01, hypergrad_lr=beta), GRADS[:2])
    g1, g2 = _t(GRADS[0]), _t(GRADS[1])
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1**2
    u1 = (m1 / (1 - b1)) / ((v1 / (1 - b2)).sqrt() + eps)
    th1 = _t(W0) - 0.01 * u1  # α₁ = α₀: no previous update yet
    alpha2 = 0.01 + beta * float((g2 * u1).sum())
    m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2**2
    u2 = (m2 / (1 - b1**2)) / ((v2 / (1 - b2**2)).sqrt() + eps)
    assert torch.allclose(got[0], th1) and torch.allclose(got[1], th1 - alpha2 * u2)


def _adam_hd_lrs(sign_flips: bool) -> list[float]:
    model = Tiny()
    opt = build_optimizer(model, _cfg("adam_hd", lr=0.01, hypergrad_lr=1e-3))
    lrs = []
    for t in range(10):
        opt.zero_grad()
        model.weight.grad = _t(GRADS[0]) * (-1) ** t if sign_flips else _t(GRADS[0])
        opt.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_adam_hd_lr_rises_when_gradients_agree_and_falls_when_they_flip():
    agree, flip = _adam_hd_lrs(False), _adam_hd_lrs(True)
    assert agree[0] == flip[0] == 0.01
    assert all(b > a for a, b in zip(agree, agree[1:]))
    assert all(b < a for a, b in zip(flip, flip[1:]))


# --- every registry name -------------------------------------------------------------------------

NAMES = sorted(OPTIMIZERS)
VARIANTS = [(name, False) for name in NAMES] + [(name, True) for name in NAMES]


def _regression():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(128, 5, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0]) + 0.5 + 0.1 * torch.randn(128, generator=g)
    return X, y.unsqueeze(1)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))


def _step(model: nn.Module, opt: torch.optim.Optimizer, X, y) -> float:
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.parametrize("name, lookahead", VARIANTS)
def test_reduces_regression_loss_in_50_steps(name, lookahead):
    X, y = _regression()
    model = _model()
    cfg = OptimizerConfig(name=name, lookahead=lookahead, weight_decay=1e-4)
    opt = build_optimizer(model, cfg)
    first = _step(model, opt, X, y)
    for _ in range(49):
        last = _step(model, opt, X, y)
    # At the default LRs; the slow starters are adadelta (steps ≈ √ε at first) and radam (its
    # rectified warm-up), ≈ 3–6 % lower after 50 steps.
    assert last < first, (first, last)


@pytest.mark.parametrize("name, lookahead", VARIANTS)
def test_state_dict_round_trip(name, lookahead):
    X, y = _regression()
    cfg = OptimizerConfig(name=name, lookahead=lookahead, lookahead_k=2, weight_decay=1e-2)
    model = _model()
    opt = build_optimizer(model, cfg)
    for _ in range(3):
        _step(model, opt, X, y)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    fresh = _model()
    fresh.load_state_dict(saved["model"])
    fresh_opt = build_optimizer(fresh, cfg)
    fresh_opt.load_state_dict(saved["opt"])
    assert [g["lr"] for g in fresh_opt.param_groups] == [g["lr"] for g in opt.param_groups]
    _step(model, opt, X, y)  # step 4: Lookahead with k = 2 syncs here, using the restored slow weights
    _step(fresh, fresh_opt, X, y)
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", [n for n in NAMES if not n.endswith("_hd")])
def test_lr_written_into_groups_is_used(name):
    X, y = _regression()
    model = _model()
    opt = build_optimizer(model, OptimizerConfig(name=name, weight_decay=0.0))
    _step(model, opt, X, y)
    before = [p.detach().clone() for p in model.parameters()]
    for group in opt.param_groups:
        group["lr"] = 0.0
    _step(model, opt, X, y)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_default_lr_from_practice():
    assert {n: default_lr(n) for n in NAMES} == {
        "adadelta": 1.0, "adagrad": 1e-2, "adam": 1e-3, "adam_hd": 1e-3, "adamw": 1e-3,
        "radam": 1e-3, "rmsprop": 1e-3, "sgd": 0.1, "sgd_hd": 0.1}
    opt = build_optimizer(Tiny(), OptimizerConfig(name="sgd"))
    assert opt.param_groups[0]["lr"] == 0.1


def test_unknown_name_suggests_closest():
    with pytest.raises(UserError, match="adamw"):
        build_optimizer(Tiny(), OptimizerConfig(name="adamww"))


# --- RAdam and Adadelta: 50 steps against the papers' update equations ---------------------------

def _fifty_gradients() -> list[list[list[float]]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(1, 3, generator=g, dtype=F64) * (1 + 0.1 * t)).tolist() for t in range(50)]


def test_radam_follows_liu_et_al_algorithm_2_for_50_steps():
    """Liu et al. 2020, Algorithm 2: ρ∞ = 2/(1−β₂) − 1, ρ_t = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ); if ρ_t > 5 the step
    is η·r_t·m̂·l_t with r_t = √((ρ_t−4)(ρ_t−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ_t)) and l_t = √(1−β₂ᵗ)/(√v + ε)
    (ε where torch puts it), else the un-adapted η·m̂. β₂ = 0.9 reaches ρ_t > 5 at t = 6, so both
    branches run."""
    b1, b2, eps, lr = 0.9, 0.9, 1e-8, 0.05
    grads = _fifty_gradients()
    rho_inf = 2 / (1 - b2) - 1
    th, m, v, want, adapted = _t(W0), torch.zeros(1, 3, dtype=F64), torch.zeros(1, 3, dtype=F64), [], []
    for t, g in enumerate(map(_t, grads), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            th = th - lr * r * m_hat * math.sqrt(1 - b2**t) / (v.sqrt() + eps)
        else:
            th = th - lr * m_hat
        adapted.append(rho_t > 5)
        want.append(th)
    got = _run(_cfg("radam", lr=lr, betas=(b1, b2), eps=eps), grads)
    assert not adapted[0] and adapted[-1]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_adadelta_follows_zeiler_algorithm_1_for_50_steps():
    """Zeiler 2012, Algorithm 1 (times torch's η): s ← ρs + (1−ρ)g², Δ = √(d + ε)/√(s + ε)·g,
    d ← ρd + (1−ρ)Δ², θ ← θ − ηΔ."""
    rho, eps, lr = 0.9, 1e-6, 1.0
    grads = _fifty_gradients()
    th, s, d, want = _t(W0), torch.zeros(1, 3, dtype=F64), torch.zeros(1, 3, dtype=F64), []
    for g in map(_t, grads):
        s = rho * s + (1 - rho) * g**2
        delta = (d + eps).sqrt() / (s + eps).sqrt() * g
        d = rho * d + (1 - rho) * delta**2
        th = th - lr * delta
        want.append(th)
    got = _run(_cfg("adadelta", lr=lr, rho=rho, eps=eps), grads)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not torch.allclose(want[-1], _t(W0), atol=1e-2)  # it moved: the comparison is not vacuous
