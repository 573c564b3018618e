"""Curvature of a training loss: Hessian-vector products, Lanczos, Hutchinson and SLQ (PyHessian's set,
Yao et al. 2020).

H = ∇²L(θ) of the mean loss L(θ) = (1/N) Σᵢ ℓ(f(xᵢ; θ), yᵢ) over a stated sample of N rows, θ the
trainable parameters (``requires_grad``), n = dim θ. The model is put in eval mode while H is
measured: dropout off, batch norm on its running statistics, so H is the curvature of the function
that is evaluated (penalties and weight decay are not part of L).

- Hv exactly (Pearlmutter 1994), the directional derivative of the gradient: by double backward,
  Hv = ∇_θ(gᵀv) with g = ∇L built once with its graph (or forward-over-reverse with `torch.func`,
  ``method="torch.func"``); a large sample is taken in chunks of `chunk` rows, L = Σ_c (N_c/N)·L_c.
- Lanczos with full reorthogonalization (Lanczos 1950; Golub & Van Loan, Matrix Computations §10.1):
  m products build an orthonormal Q and the tridiagonal T = QᵀHQ; T's eigenvalues (Ritz values)
  converge to the ends of the spectrum first. The top k are the eigenvalue estimates, each with its
  residual ‖Hq̃ − θq̃‖ = |β_m·s_mi|, a bound on its distance to an eigenvalue of H in exact
  arithmetic (the products' own rounding, ~1e-7 relative in float32, is not in it). Reorthogonalizing
  against every earlier direction is what PyHessian's power iteration does by deflation; when the
  Krylov space is exhausted (β ≈ 0) the iteration restarts on a random direction orthogonal to Q,
  so m = n gives T similar to H: every eigenvalue exactly.
- λmin (most negative): the smallest Ritz value of the same run. Lanczos is shift-invariant
  (K_m(H − σI, v) = K_m(H, v)), so it is what a shifted iteration on σI − H would find, from the
  same products.
- κ = λmax / λmin⁺, λmin⁺ the smallest Ritz value above `POSITIVE` · λmax (the numerical null
  space of an over-parameterized net counts as zero): exact when m = n, an estimate otherwise
  (interior Ritz values converge last) — the result says which.
- trace by Hutchinson's estimator (Hutchinson 1989): tr H = E[vᵀHv] for Rademacher v; the mean of p
  probes with standard error sd/√p.
- density by stochastic Lanczos quadrature (Lin, Saad & Yang 2016; Ghorbani et al. 2019): for p unit
  probes v, an m-step Lanczos gives T = S diag(θ) Sᵀ; nodes θⱼ with weights τⱼ = S₁ⱼ² (Σⱼ τⱼ = 1)
  make φ(t) = (1/p) Σ_probes Σⱼ τⱼ·N(t; θⱼ, σ²), which integrates to 1 and whose mean estimates
  tr H / n.

Hand-written because no maintained library does this for an arbitrary torch module: scipy's
``eigsh`` (ARPACK) gives the extreme eigenvalues but not the tridiagonal T and its eigenvectors'
first components that SLQ needs, and PyHessian is an unmaintained research script; one Lanczos
serves all, and the tests check it against ``torch.autograd.functional.hessian`` eigenvalues.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call, grad, jvp

from nnrecipe.training.loop import call_model, num_rows, take

POSITIVE = 1e-6  # Ritz values below POSITIVE·λmax count as zero for κ
BREAKDOWN = 1e-10  # β below BREAKDOWN·‖H‖ estimate: the Krylov space is invariant (exhausted)
GRID_POINTS = 200


METHODS = ("double_backward", "torch.func")


class HessianOperator:
    """v ↦ Hv (float64, flat) for the mean `loss` of `model` over (X, y); counts its products.

    ``double_backward`` (default): g = ∇L built with its graph once, Hv = ∇_θ(gᵀv) per product, the
    graph kept while the sample is one chunk (then a product is one backward pass: 3.4 ms on the
    digits MLP over 1024 rows here, against 6.6 ms rebuilding g for two chunks of 512 and 8.4 ms for
    ``torch.func``, forward-over-reverse ``jvp(grad(L), θ, v)``, which keeps nothing)."""

    def __init__(self, model: nn.Module, loss: Callable, X, y: torch.Tensor, *, chunk: int = 1024,
                 method: str = "double_backward"):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.model, self.loss, self.method = model, loss, method
        named = dict(model.named_parameters())
        self.names = [k for k, p in named.items() if p.requires_grad]
        self.params = [named[k] for k in self.names]
        self.fixed = {**{k: p.detach() for k, p in named.items() if not p.requires_grad},
                      **dict(model.named_buffers())}
        self.n = sum(p.numel() for p in self.params)
        self.device = self.params[0].device
        rows = num_rows(X)
        self.chunks = [(min(rows, start + chunk) - start, torch.arange(start, min(rows, start + chunk)))
                       for start in range(0, rows, chunk)]
        self.X, self.y, self.rows = X, y, rows
        self.products = 0
        self._kept: tuple | None = None  # ∇L with its graph, for a one-chunk sample

    def _rows(self, idx: torch.Tensor):
        first = self.X[0] if isinstance(self.X, tuple) else self.X
        return take(self.X, idx.to(first.device)), self.y[idx.to(self.y.device)]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.products += 1
        total = torch.zeros(self.n, dtype=torch.float64, device=v.device)
        pieces = self._pieces(v)
        for size, idx in self.chunks:
            product = self._func_product if self.method == "torch.func" else self._double_backward
            total += (size / self.rows) * product(idx, pieces)
        return total

    def _pieces(self, v: torch.Tensor) -> list[torch.Tensor]:
        pieces, offset = [], 0
        for p in self.params:
            pieces.append(v[offset:offset + p.numel()].view_as(p).to(p.dtype))
            offset += p.numel()
        return pieces

    def _func_product(self, idx: torch.Tensor, pieces: list[torch.Tensor]) -> torch.Tensor:
        xb, yb = self._rows(idx)

        def mean_loss(values: dict) -> torch.Tensor:
            out = functional_call(self.model, {**values, **self.fixed}, xb if isinstance(xb, tuple) else (xb,))
            return self.loss(out[0] if isinstance(out, tuple) else out, yb)

        primals = {k: p.detach() for k, p in zip(self.names, self.params)}
        hv = jvp(grad(mean_loss), (primals,), (dict(zip(self.names, pieces)),))[1]
        return torch.cat([hv[k].reshape(-1) for k in self.names]).to(torch.float64)

    def _double_backward(self, idx: torch.Tensor, pieces: list[torch.Tensor]) -> torch.Tensor:
        keep = len(self.chunks) == 1
        grads = self._kept
        if grads is None:
            xb, yb = self._rows(idx)
            value = self.loss(call_model(self.model, xb), yb)
            grads = torch.autograd.grad(value, self.params, create_graph=True, allow_unused=True)
            self._kept = grads if keep else None
        # a gradient that does not depend on θ (e.g. an unused parameter) has no second derivative
        live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        out = [torch.zeros_like(p) for p in self.params]
        if live:
            hv = torch.autograd.grad([grads[i] for i in live], self.params, grad_outputs=[pieces[i] for i in live],
                                     retain_graph=keep, allow_unused=True)
            out = [h if h is not None else z for h, z in zip(hv, out)]
        return torch.cat([h.reshape(-1) for h in out]).to(torch.float64)


@contextmanager
def evaluated(model: nn.Module):
    """The model in eval mode for the measurement, its mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def lanczos(operator: Callable, n: int, steps: int, *, generator: torch.Generator,
            start: torch.Tensor | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """m = `steps` Lanczos steps with full reorthogonalization: (α [m], β [m−1], β_m), T = tridiag(β, α, β).

    On breakdown (β ≈ 0, an invariant subspace found) the next direction is random and orthogonal
    to the basis, its β set to 0 (module docstring)."""
    steps = min(steps, n)
    q = _unit(start.to(torch.float64) if start is not None else _normal(n, generator, device))
    basis = torch.zeros(steps, n, dtype=torch.float64, device=q.device)
    alphas, betas, scale, last = [], [], 0.0, 0.0
    for j in range(steps):
        basis[j] = q
        w = operator(q)
        alpha = float(w @ q)
        alphas.append(alpha)
        for _ in range(2):  # twice is enough (Kahan–Parlett "twice is enough")
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(w.norm())
        scale = max(scale, abs(alpha), beta)
        if j == steps - 1:
            last = beta
            break
        if beta <= BREAKDOWN * max(scale, 1e-300):
            betas.append(0.0)
            q = _restart(basis[: j + 1], n, generator)
        else:
            betas.append(beta)
            q = w / beta
    return torch.tensor(alphas, dtype=torch.float64), torch.tensor(betas, dtype=torch.float64), last


def _normal(n: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randn(n, generator=generator, dtype=torch.float64).to(device or "cpu")


def _restart(basis: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    v = _normal(n, generator, basis.device)
    for _ in range(2):
        v = v - basis.T @ (basis @ v)
    return _unit(v)


def ritz(alphas: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of the tridiagonal T."""
    T = torch.diag(alphas) + torch.diag(betas, 1) + torch.diag(betas, -1)
    return torch.linalg.eigh(T)


def extreme_eigenvalues(operator: Callable, n: int, *, top_k: int, steps: int, generator: torch.Generator,
                        device=None) -> dict:
    """Top-k (descending) and the smallest eigenvalue of H from one Lanczos run, with residuals and κ."""
    alphas, betas, last = lanczos(operator, n, steps, generator=generator, device=device)
    values, vectors = ritz(alphas, betas)
    m = len(alphas)
    residuals = (last * vectors[-1].abs()).tolist()
    order = list(range(m - 1, -1, -1))[:top_k]
    lam_max = float(values[-1])
    positive = [float(v) for v in values if v > POSITIVE * lam_max] if lam_max > 0 else []
    exact = m == n
    return {"eigenvalues": [float(values[i]) for i in order], "residuals": [residuals[i] for i in order],
            "lambda_min": float(values[0]), "lambda_min_residual": residuals[0],
            "lambda_min_positive": min(positive) if positive else None,
            "condition_number": lam_max / min(positive) if positive else None,
            "condition_estimate": (f"λmax / smallest Ritz value above {POSITIVE:g}·λmax of a {m}-step Lanczos run "
                                   + ("(m = n: exact)" if exact else f"over n = {n} parameters (an estimate: "
                                      "interior Ritz values converge last)")),
            "lanczos_steps": m, "exact": exact}


def rademacher(n: int, generator: torch.Generator, device=None) -> torch.Tensor:
    return (torch.randint(0, 2, (n,), generator=generator, dtype=torch.int64) * 2 - 1).to(
        device=device or "cpu", dtype=torch.float64)


def hutchinson_trace(operator: Callable, n: int, *, probes: int, generator: torch.Generator, device=None) -> dict:
    """tr H ≈ mean of vᵀHv over `probes` Rademacher v, with its standard error sd/√p."""
    samples = []
    for _ in range(probes):
        v = rademacher(n, generator, device)
        samples.append(float(v @ operator(v)))
    values = torch.tensor(samples, dtype=torch.float64)
    stderr = float(values.std(unbiased=True) / math.sqrt(probes)) if probes > 1 else math.nan
    return {"trace": float(values.mean()), "trace_stderr": stderr, "trace_probes": probes}


def slq_density(operator: Callable, n: int, *, probes: int, steps: int, generator: torch.Generator,
                device=None, sigma: float | None = None) -> dict:
    """Stochastic Lanczos quadrature: nodes/weights per probe and φ(t) on a grid (module docstring)."""
    nodes, weights = [], []
    for _ in range(probes):
        alphas, betas, _ = lanczos(operator, n, steps, generator=generator,
                                   start=rademacher(n, generator, device), device=device)
        values, vectors = ritz(alphas, betas)
        nodes.append(values)
        weights.append(vectors[0] ** 2)
    theta, tau = torch.cat(nodes), torch.cat(weights) / probes
    lo, hi = float(theta.min()), float(theta.max())
    sigma = sigma if sigma is not None else max(hi - lo, abs(hi), 1e-12) / 100
    grid = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, GRID_POINTS, dtype=torch.float64)
    kernel = torch.exp(-0.5 * ((grid[:, None] - theta[None, :].cpu()) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    density = kernel @ tau.cpu()
    mean = float((theta * tau).sum())
    return {"grid": grid.tolist(), "density": density.tolist(), "sigma": sigma, "probes": probes,
            "steps": min(steps, n), "nodes": theta.tolist(), "weights": tau.tolist(), "mean": mean,
            "trace": mean * n}


def hessian_spectrum(operator: HessianOperator, *, top_k: int = 3, steps: int | None = None,
                     trace_probes: int = 100, density_probes: int = 5, seed: int = 0) -> dict:
    """Top-k eigenvalues, λmin, κ, Hutchinson trace and the SLQ density of `operator`'s H, with the
    products used and the seconds taken; ``steps`` defaults to min(n, max(40, 3k))."""
    n, device = operator.n, operator.device
    steps = min(n, steps if steps is not None else max(40, 3 * top_k))
    generator = torch.Generator().manual_seed(seed)
    started, before = time.perf_counter(), operator.products
    result = extreme_eigenvalues(operator, n, top_k=top_k, steps=steps, generator=generator, device=device)
    result["hvps_eigenvalues"] = operator.products - before
    mark = operator.products
    result.update(hutchinson_trace(operator, n, probes=trace_probes, generator=generator, device=device))
    result["hvps_trace"] = operator.products - mark
    mark = operator.products
    result["density"] = slq_density(operator, n, probes=density_probes, steps=steps, generator=generator,
                                    device=device)
    result["hvps_density"] = operator.products - mark
    result.update(hvps=operator.products - before, seconds=time.perf_counter() - started, parameters=n,
                  hvp_method=operator.method)
    return result


def sharpness(model: nn.Module, loss: Callable, X, y: torch.Tensor, *, steps: int = 20, probes: int = 10,
              seed: int = 0) -> dict:
    """λmax (a `steps`-step Lanczos) and the Hutchinson trace (`probes`) on (X, y): the cheap pair
    tracked during `fit`."""
    with evaluated(model):
        operator = HessianOperator(model, loss, X, y)
        generator = torch.Generator().manual_seed(seed)
        top = extreme_eigenvalues(operator, operator.n, top_k=1, steps=steps, generator=generator,
                                  device=operator.device)
        trace = hutchinson_trace(operator, operator.n, probes=probes, generator=generator, device=operator.device)
    return {"lambda_max": top["eigenvalues"][0], "trace": trace["trace"], "trace_stderr": trace["trace_stderr"],
            "hvps": operator.products}
