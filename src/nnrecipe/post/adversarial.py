"""Adversarial examples, robust accuracy and adversarial training (an L∞ threat model).

- FGSM (Goodfellow et al. 2015):  x' = Π(x + ε·sign(∇ₓ L(f(x), y)))
- PGD (Madry et al. 2018): x⁰ = Π(x + u), u ~ U[−ε, ε] elementwise (random start), then k steps
  xᵗ⁺¹ = Π(xᵗ + α·sign(∇ₓ L(f(xᵗ), y))), Π = projection onto {x' : |x' − x|∞ ≤ ε} ∩ [lo, hi]
  (elementwise clamps); α defaults to 2.5·ε/k, Madry et al.'s choice, so k steps can cross the
  ball and back.
- Robust accuracy: the accuracy on the attacked inputs; clean accuracy: on the inputs as given.
- Adversarial training (Madry et al.'s min–max): every training batch is replaced by its attack
  against the current weights (`AdversarialAugmenter`, the Trainer's ``augment`` hook; the image
  augmenter, if any, runs first).

L is cross-entropy without label smoothing (soft mixup/cutmix targets are accepted). The model is
put in eval mode while it is attacked (no dropout noise, BatchNorm running statistics), and every
module's own mode is restored afterwards (frozen BatchNorms stay in eval). Gradients are taken with
``torch.autograd.grad`` for the input only, so parameter ``.grad`` is never touched.

Units. ε, α and the valid range are in raw input units (what the user's data holds: digits' pixel
values 0–16). The model sees z = (x − μ)/σ per feature (vectors) or per channel (images), so the raw
ball |x' − x|∞ ≤ ε is the box |z' − z| ≤ ε/σ, and [lo, hi] is [(lo − μ)/σ, (hi − μ)/σ] (σ = 1 for a
constant column, which the transform only centres). `model_units` does this conversion. Whitened
inputs (PCA/ZCA/patch ZCA) are not elementwise functions of the raw input, so they are refused. The
valid range defaults to [0, 16] for the bundled digits and to no clamp otherwise (``raw_range``).

Hand-written: the attacks are a few lines on top of autograd (torchattacks/ART would add large
dependencies for two formulas), and the unit conversion is specific to this package's transforms.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.errors import UserError

KNOWN_RANGES = {"digits": (0.0, 16.0)}  # raw value range of bundled data sets


@contextmanager
def eval_mode(model: nn.Module):
    """model.eval() inside the block; each module's own train/eval flag restored after it."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _clamp(x: torch.Tensor, lower, upper) -> torch.Tensor:
    if lower is not None:
        x = torch.maximum(x, lower)
    if upper is not None:
        x = torch.minimum(x, upper)
    return x


def input_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """∇ₓ Σ_i CE(f(x_i), y_i) (summed, so each row's gradient is its own, not divided by the batch)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), target, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, *, lower=None, upper=None) -> torch.Tensor:
    """x + ε·sign(∇ₓL), clamped to [lower, upper]; ε a number or a tensor broadcast over x."""
    with eval_mode(model):
        grad = input_gradient(model, x, y)
    return _clamp(x.detach() + eps * grad.sign(), lower, upper).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, *, steps: int = 10, step_size=None,
        lower=None, upper=None, random_start: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient ascent on L in the L∞ ε-ball around x (∩ [lower, upper])."""
    x = x.detach()
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    lo, hi = x - eps, x + eps
    adv = x
    if random_start:  # drawn on the CPU so a CPU generator works for any device
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        adv = _clamp(x + (2 * u - 1) * eps, lower, upper)
    with eval_mode(model):
        for _ in range(steps):
            adv = adv + alpha * input_gradient(model, adv, y).sign()
            adv = _clamp(torch.minimum(torch.maximum(adv, lo), hi), lower, upper).detach()
    return adv


def attack_batch(model, x, y, eps, *, method: str, steps: int = 10, step_size=None, lower=None, upper=None,
                 generator=None) -> torch.Tensor:
    if method == "fgsm":
        return fgsm(model, x, y, eps, lower=lower, upper=upper)
    if method == "pgd":
        return pgd(model, x, y, eps, steps=steps, step_size=step_size, lower=lower, upper=upper,
                   generator=generator)
    raise UserError(f"unknown attack '{method}'", "--method", "use fgsm or pgd")


def robust_accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, eps, *, method: str = "pgd",
                    steps: int = 10, step_size=None, lower=None, upper=None, batch_size: int = 512,
                    generator: torch.Generator | None = None) -> float:
    """Accuracy of argmax f(x') over the rows of X, x' the attack of each row (ε = 0: clean accuracy).
    X may be a `DatasetBatches` (a data.lazy run's images), which slices like a tensor."""
    correct = 0
    for i in range(0, len(X), batch_size):  # a DatasetBatches reads each slice's rows only
        xb, yb = X[i:i + batch_size], y[i:i + batch_size]
        adv = attack_batch(model, xb, yb, eps, method=method, steps=steps, step_size=step_size, lower=lower,
                           upper=upper, generator=generator) if _positive(eps) else xb
        with torch.no_grad(), eval_mode(model):
            correct += int((model(adv).argmax(-1) == yb).sum())
    return correct / max(len(X), 1)


def _positive(eps) -> bool:
    return bool((torch.as_tensor(eps) > 0).any())


def default_range(data_name: str | None, raw_range=None) -> tuple[float, float] | None:
    """The valid raw range: `raw_range` if given, else the bundled data set's, else None (no clamp)."""
    if raw_range is not None:
        lo, hi = (float(v) for v in raw_range)
        if not lo < hi:
            raise UserError(f"empty input range [{lo}, {hi}]", "adversarial.raw_range", "give LO < HI")
        return lo, hi
    return KNOWN_RANGES.get(data_name or "")


def model_units(transform, *, eps: float, step_size: float | None = None, raw_range=None,
                device=None) -> dict:
    """ε, α and [lo, hi] given in raw input units → float32 tensors in model-input units, each shaped
    to broadcast over one input ([D] for vectors, [C, 1, 1] for images): ε/σ, α/σ, (lo − μ)/σ, (hi − μ)/σ."""
    if transform is None or transform.whitener is not None or transform.patch is not None:
        raise UserError("the attack radius is defined on standardized inputs; this run whitens them",
                        "data.whiten", "attack a run trained with data.whiten=none")
    stats = transform.standardizer if transform.standardizer is not None else transform.channel
    mean, std = np.asarray(stats.mean, dtype=np.float64), np.asarray(stats.std, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)  # a constant column is only centred: z moves as x does
    if transform.standardizer is None:
        mean, std = mean[:, None, None], std[:, None, None]

    def tensor(v):
        if v is None:
            return None
        return torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=torch.float32, device=device)

    lo_hi = default_range(None, raw_range)
    return {"eps": tensor(eps / std), "step_size": tensor(step_size / std if step_size is not None else None),
            "lower": tensor((lo_hi[0] - mean) / std) if lo_hi else None,
            "upper": tensor((lo_hi[1] - mean) / std) if lo_hi else None}


class AdversarialAugmenter:
    """The Trainer's augment hook for adversarial training: (x, y, generator) → (attack(x), target)."""

    def __init__(self, model: nn.Module, *, method: str, units: dict, steps: int, base=None):
        self.model, self.method, self.units, self.steps, self.base = model, method, units, steps, base

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        target = y
        if self.base is not None:
            x, target = self.base(x, y, generator)
        u = self.units
        adv = attack_batch(self.model, x, target, u["eps"], method=self.method, steps=self.steps,
                           step_size=u["step_size"], lower=u["lower"], upper=u["upper"], generator=generator)
        return adv, target


def adversarial_augmenter(cfg, model: nn.Module, *, transform, data_name: str, task: str, device, base=None):
    """`base` unchanged when ``cfg.method`` is none; otherwise an `AdversarialAugmenter` around it."""
    if cfg.method == "none":
        return base
    if task != "classification":
        raise UserError("adversarial training needs a classification task", "adversarial.method",
                        "set adversarial.method=none for regression")
    units = model_units(transform, eps=cfg.eps, step_size=cfg.step_size,
                        raw_range=default_range(data_name, cfg.raw_range), device=device)
    return AdversarialAugmenter(model, method=cfg.method, units=units, steps=cfg.steps, base=base)


def robust_report(cfg, model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, transform, data_name: str,
                  clean_accuracy: float) -> dict:
    """metrics.json's ``adversarial`` block after adversarial training: clean and PGD accuracy on (X, y)."""
    lo_hi = default_range(data_name, cfg.raw_range)
    units = model_units(transform, eps=cfg.eps, raw_range=lo_hi, device=X.device)
    robust = robust_accuracy(model, X, y, units["eps"], method="pgd", steps=cfg.eval_steps, lower=units["lower"],
                             upper=units["upper"], generator=torch.Generator().manual_seed(0))
    return {"method": cfg.method, "eps": cfg.eps, "eps_units": "raw input units", "train_steps": cfg.steps,
            "range": list(lo_hi) if lo_hi else None, "clean_accuracy": clean_accuracy,
            "robust_accuracy": robust, "robust_attack": f"pgd, {cfg.eval_steps} steps, step 2.5·eps/steps"}
