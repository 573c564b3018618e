"""Optimizers: `build_optimizer(model, cfg)` looks ``cfg.name`` up in the `OPTIMIZERS` registry.

Two parameter groups, decided by `nnrecipe.training.params.split_decay`: group 0 the weight
matrices/kernels with ``weight_decay = cfg.weight_decay``, group 1 biases and norm parameters
with 0. Decay is coupled (g ← g + λθ, torch's ``weight_decay``) everywhere except ``adamw``.
g is the gradient, η the learning rate (``group["lr"]``, rewritten by the training loop before
every step), λ the weight decay.

- ``sgd``      - torch SGD. ``momentum_style: classic``: v ← μv + g, θ ← θ − ηv (dampening 0;
  Polyak 1964 / Sutskever et al. 2013). ``ema``: v ← μv + (1−μ)g (dampening μ), an average of
  gradients rather than a sum; on a steady gradient classic steps are 1/(1−μ) times larger
  (10× for μ = 0.9), so ema with η/(1−μ) matches classic with η. torch starts the buffer at
  v₁ = g₁ in both styles. ``nesterov``: θ ← θ − η(g + μv) (classic only: torch's Nesterov has
  no dampening, and it needs μ > 0).
- ``rmsprop``  - torch RMSprop (Tieleman & Hinton 2012): s ← αs + (1−α)g², θ ← θ − ηg/(√s + ε),
  α = ``cfg.alpha`` (0.9 as in Hinton's lecture; torch's default is 0.99); no momentum.
- ``adagrad``  - torch Adagrad (Duchi et al. 2011): s ← s + g², θ ← θ − ηg/(√s + ε).
- ``adadelta`` - torch Adadelta (Zeiler 2012): s ← ρs + (1−ρ)g², Δ = √(d + ε)/√(s + ε)·g,
  d ← ρd + (1−ρ)Δ², θ ← θ − ηΔ. ε sets the size of the first steps (≈ √ε); Zeiler used 1e-6.
- ``adam``     - torch Adam (Kingma & Ba 2015): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
  θ ← θ − η·m̂/(√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ); decay coupled into g.
- ``adamw``    - torch AdamW (Loshchilov & Hutter 2019): θ ← θ − ηλθ − η·m̂/(√v̂ + ε); the decay
  bypasses the adaptive scaling, so every weight shrinks at the same rate.
- ``radam``    - torch RAdam (Liu et al. 2020): Adam whose adaptive term is switched in only
  once the variance of v̂ is tractable (ρ_t > 5), with the rectification factor r_t; before
  that, SGD with momentum m̂. A built-in warm-up.
- ``sgd_hd`` / ``adam_hd`` - hypergradient descent (Baydin et al. 2018), `nnrecipe.training.hypergrad`:
  they learn η (β = ``cfg.hypergrad_lr``) and ignore the LR written by the schedule.

``cfg.lookahead`` wraps any of them in `Lookahead` (Zhang et al. 2019, k = ``lookahead_k``,
α = ``lookahead_alpha``). `Optimizers` bundles several (a GAN's G and D) for a custom train step.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch
from torch import nn

from nnrecipe.config import OptimizerConfig
from nnrecipe.errors import UserError
from nnrecipe.training.hypergrad import SGDHD, AdamHD
from nnrecipe.training.lookahead import Lookahead
from nnrecipe.training.params import split_decay

ParamGroups = list[dict]
Builder = Callable[[ParamGroups, OptimizerConfig, float], torch.optim.Optimizer]


class OptimizerConfigError(UserError, ValueError):
    """An inconsistent optimizer setting (a ValueError for the API, a UserError for the CLI)."""


def _sgd(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    if cfg.nesterov and cfg.momentum_style != "classic":
        raise OptimizerConfigError("optimizer.nesterov requires optimizer.momentum_style=classic",
                                   "optimizer.momentum_style",
                                   "Nesterov's look-ahead is defined for v = μv + g: set momentum_style=classic")
    if cfg.nesterov and cfg.momentum == 0:
        raise OptimizerConfigError("optimizer.nesterov requires momentum > 0", "optimizer.momentum",
                                   "set optimizer.momentum=0.9, or nesterov=false")
    dampening = cfg.momentum if cfg.momentum_style == "ema" else 0.0
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, dampening=dampening, nesterov=cfg.nesterov)


def _rmsprop(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(groups, lr=lr, alpha=cfg.alpha, eps=cfg.eps)


def _adagrad(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(groups, lr=lr, eps=cfg.eps)


def _adadelta(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(groups, lr=lr, rho=cfg.rho, eps=cfg.eps)


def _adam(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=lr, betas=cfg.betas, eps=cfg.eps)


def _adamw(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, eps=cfg.eps)


def _radam(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.RAdam(groups, lr=lr, betas=cfg.betas, eps=cfg.eps)


def _sgd_hd(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return SGDHD(groups, lr=lr, hypergrad_lr=cfg.hypergrad_lr)


def _adam_hd(groups: ParamGroups, cfg: OptimizerConfig, lr: float) -> torch.optim.Optimizer:
    return AdamHD(groups, lr=lr, hypergrad_lr=cfg.hypergrad_lr, betas=cfg.betas, eps=cfg.eps)


OPTIMIZERS: dict[str, Builder] = {
    "sgd": _sgd,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
    "adadelta": _adadelta,
    "adam": _adam,
    "adamw": _adamw,
    "radam": _radam,
    "sgd_hd": _sgd_hd,
    "adam_hd": _adam_hd,
}

# Learning rates from practice, used when cfg.lr is None.
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1, "sgd_hd": 0.1,
    "rmsprop": 1e-3,
    "adagrad": 1e-2,
    "adadelta": 1.0,  # Adadelta's η only scales its self-sized step; Zeiler's method has none
    "adam": 1e-3, "adamw": 1e-3, "radam": 1e-3, "adam_hd": 1e-3,
}


def _check_name(name: str) -> None:
    if name not in OPTIMIZERS:
        match = difflib.get_close_matches(name, list(OPTIMIZERS), n=1)
        raise UserError(f"unknown optimizer '{name}'", "optimizer.name",
                        f"did you mean '{match[0]}'?" if match else f"choose one of {', '.join(OPTIMIZERS)}")


def default_lr(name: str) -> float:
    """The learning rate `build_optimizer` uses for `name` when ``cfg.lr`` is None."""
    _check_name(name)
    return DEFAULT_LR[name]


def param_groups(model: nn.Module, *, weight_decay: float,
                 lr_scales: dict[int, float] | None = None) -> ParamGroups:
    """[decayed weights with `weight_decay`, biases and norm parameters with 0] (`split_decay`).

    With `lr_scales` ({id(param): scale}, discriminative fine-tuning) each (decay, scale) pair
    gets its own group carrying ``lr_scale``, which the training loop multiplies into the LR.
    """
    decay, no_decay = split_decay(model, include_frozen=lr_scales is not None)
    if lr_scales is None:
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups: dict[tuple[float, float], list] = {}
    for wd, params in ((weight_decay, decay), (0.0, no_decay)):
        for p in params:
            groups.setdefault((wd, lr_scales.get(id(p), 1.0)), []).append(p)
    return [{"params": ps, "weight_decay": wd, "lr_scale": scale} for (wd, scale), ps in groups.items()]


def build_optimizer(model: nn.Module, cfg: OptimizerConfig, *,
                    lr_scales: dict[int, float] | None = None) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over `model`'s decay groups, wrapped in Lookahead if asked.

    `lr_scales` also makes frozen parameters (requires_grad False) part of the groups, so they
    train once a fine-tuning schedule unfreezes them."""
    _check_name(cfg.name)
    lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.name]
    groups = param_groups(model, weight_decay=cfg.weight_decay, lr_scales=lr_scales)
    optimizer = OPTIMIZERS[cfg.name](groups, cfg, lr)
    if cfg.lookahead:
        optimizer = Lookahead(optimizer, k=cfg.lookahead_k, alpha=cfg.lookahead_alpha)
    return optimizer


class Optimizers:
    """Several optimizers, each stepped by a custom train step (a GAN's ``g`` and ``d``), that the
    Trainer and the checkpoint treat as one: ``param_groups`` lists every group (the scheduled LR
    is written into each), ``zero_grad`` clears all, ``state_dict`` is ``{name: state}``."""

    def __init__(self, **optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        return self.optimizers[name]

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers.values() for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.optimizers):
            raise KeyError(f"optimizer states for {sorted(state)}, expected {sorted(self.optimizers)}")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
