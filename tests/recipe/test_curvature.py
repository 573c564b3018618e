"""The curvature instruments against exact answers: 2XᵀX/N for least squares, the dense Hessian of a
tiny MLP (`torch.autograd.functional.hessian`), the exact trace within Hutchinson's error, SLQ's
density integrating to 1 with mean tr H / n."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from nnrecipe.recipe.curvature import (HessianOperator, extreme_eigenvalues, hessian_spectrum, hutchinson_trace,
                                       sharpness, slq_density)


def mse(out, y):
    return ((out.squeeze(-1) - y) ** 2).mean()


def least_squares(n: int = 300, d: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0.5, -1.5, d, dtype=torch.float64)  # a spread spectrum, κ ≈ 10⁴
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    y = torch.randn(n, generator=g, dtype=torch.float64)
    model = nn.Linear(d, 1, bias=True).double()
    return model, X, y


def dense_hessian(model: nn.Module, loss, X, y) -> torch.Tensor:
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(theta):
        values, offset = {}, 0
        for name, shape in zip(names, shapes):
            values[name] = theta[offset:offset + shape.numel()].view(shape)
            offset += shape.numel()
        return loss(functional_call(model, values, (X,)), y)

    return torch.autograd.functional.hessian(f, flat)


def tiny_mlp(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(60, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (60,), generator=g)
    return model, X, y


def test_least_squares_eigenvalues_are_those_of_2XtX_over_N():
    model, X, y = least_squares()
    operator = HessianOperator(model, mse, X, y)
    r = hessian_spectrum(operator, top_k=3, trace_probes=20, density_probes=2)
    Xb = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)  # the bias is a column of ones
    exact = torch.linalg.eigvalsh(2 * Xb.T @ Xb / len(X))
    assert r["exact"] and r["lanczos_steps"] == operator.n == 8
    assert r["eigenvalues"] == pytest.approx(exact.flip(0)[:3].tolist(), rel=1e-9)
    assert r["lambda_min"] == pytest.approx(float(exact[0]), rel=1e-7)
    assert r["condition_number"] == pytest.approx(float(exact[-1] / exact[0]), rel=1e-6)
    assert r["hvps"] == r["hvps_eigenvalues"] + r["hvps_trace"] + r["hvps_density"] == 8 + 20 + 2 * 8


def test_tiny_mlp_matches_the_dense_hessian():
    model, X, y = tiny_mlp()
    loss = nn.CrossEntropyLoss()
    H = dense_hessian(model, loss, X, y)
    exact = torch.linalg.eigvalsh(H)
    operator = HessianOperator(model, loss, X, y)
    top = extreme_eigenvalues(operator, operator.n, top_k=4, steps=operator.n, generator=torch.Generator().manual_seed(1))
    assert top["eigenvalues"] == pytest.approx(exact.flip(0)[:4].tolist(), abs=1e-9 * float(exact.abs().max()))
    assert exact[0] < 0 and top["lambda_min"] == pytest.approx(float(exact[0]), abs=1e-9)
    v = torch.randn(operator.n, dtype=torch.float64)
    assert torch.allclose(operator(v), H @ v, atol=1e-12)


def test_fewer_steps_than_parameters_still_find_the_top_and_bound_their_error():
    model, X, y = tiny_mlp(seed=3)
    loss = nn.CrossEntropyLoss()
    exact = torch.linalg.eigvalsh(dense_hessian(model, loss, X, y))
    operator = HessianOperator(model, loss, X, y)
    top = extreme_eigenvalues(operator, operator.n, top_k=1, steps=20, generator=torch.Generator().manual_seed(0))
    assert not top["exact"] and top["lanczos_steps"] == 20 < operator.n
    # the residual bounds the distance from the Ritz value to an eigenvalue of H
    assert abs(top["eigenvalues"][0] - float(exact[-1])) <= top["residuals"][0] + 1e-10


def test_hutchinson_trace_is_within_its_standard_error_and_the_error_is_the_theoretical_one():
    model, X, y = tiny_mlp(seed=1)
    loss = nn.CrossEntropyLoss()
    H = dense_hessian(model, loss, X, y)
    operator = HessianOperator(model, loss, X, y)
    probes = 400
    r = hutchinson_trace(operator, operator.n, probes=probes, generator=torch.Generator().manual_seed(0))
    assert abs(r["trace"] - float(H.trace())) < 4 * r["trace_stderr"]
    # Var(vᵀHv) = 2 Σ_{i≠j} H_ij² for Rademacher v
    sd = math.sqrt(2 * float((H ** 2).sum() - (H.diagonal() ** 2).sum()))
    assert r["trace_stderr"] == pytest.approx(sd / math.sqrt(probes), rel=0.25)


def test_slq_density_integrates_to_one_and_its_mean_is_trace_over_n():
    model, X, y = tiny_mlp(seed=2)
    loss = nn.CrossEntropyLoss()
    H = dense_hessian(model, loss, X, y)
    operator = HessianOperator(model, loss, X, y)
    n = operator.n
    d = slq_density(operator, n, probes=30, steps=12, generator=torch.Generator().manual_seed(0))
    grid, density = torch.tensor(d["grid"]), torch.tensor(d["density"])
    assert float(torch.trapezoid(density, grid)) == pytest.approx(1.0, abs=1e-3)
    assert float(torch.trapezoid(grid * density, grid)) == pytest.approx(d["mean"], abs=1e-3 * abs(d["mean"]) + 1e-9)
    assert sum(d["weights"]) == pytest.approx(1.0)
    # each probe's quadrature gives vᵀHv/‖v‖² exactly: the mean is a Hutchinson estimate of tr H / n
    sd = math.sqrt(2 * float((H ** 2).sum() - (H.diagonal() ** 2).sum())) / n
    assert abs(d["mean"] - float(H.trace()) / n) < 4 * sd / math.sqrt(30)


def test_chunks_average_the_loss_and_the_model_mode_is_restored():
    model, X, y = least_squares(n=250)
    v = torch.randn(8, dtype=torch.float64)
    whole = HessianOperator(model, mse, X, y)(v)
    chunked = HessianOperator(model, mse, X, y, chunk=64)(v)
    assert torch.allclose(whole, chunked, atol=1e-12)
    model.train()
    s = sharpness(model, mse, X, y, steps=8, probes=4)
    assert model.training and s["hvps"] == 8 + 4
    Xb = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)
    assert s["lambda_max"] == pytest.approx(float(torch.linalg.eigvalsh(2 * Xb.T @ Xb / len(X))[-1]), rel=1e-9)


def test_frozen_parameters_are_left_out_and_torch_func_agrees():
    model, X, y = tiny_mlp()
    model[0].weight.requires_grad_(False)
    operator = HessianOperator(model, nn.CrossEntropyLoss(), X, y)
    assert operator.n == 5 + 5 * 3 + 3
    v = torch.randn(operator.n, dtype=torch.float64)
    double_backward = operator(v)
    forward_over_reverse = HessianOperator(model, nn.CrossEntropyLoss(), X, y, method="torch.func")(v)
    assert torch.allclose(forward_over_reverse, double_backward, atol=1e-12)
    # chunked (the graph rebuilt per chunk) and the kept graph agree, product after product
    chunked = HessianOperator(model, nn.CrossEntropyLoss(), X, y, chunk=16)
    assert torch.allclose(chunked(v), double_backward, atol=1e-12) and torch.allclose(operator(v), double_backward)


def test_batch_norm_is_measured_on_its_running_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).double()
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    X = torch.randn(40, 1, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    loss = nn.CrossEntropyLoss()
    model.eval()
    exact = torch.linalg.eigvalsh(dense_hessian(model, loss, X, y))
    model.train()
    s = sharpness(model, loss, X, y, steps=200, probes=2)  # steps capped at n: exact
    assert model.training and s["lambda_max"] == pytest.approx(float(exact[-1]), rel=1e-9)
    assert model[1].num_batches_tracked == 0  # nothing ran in training mode
