"""Activation statistics at initialization: does the signal survive through depth?

Glorot & Bengio 2010 (tanh/sigmoid saturation, Xavier init); He et al. 2015 (ReLU, Kaiming init);
CS231n "Weight initialization". One forward pass in eval mode (no dropout) with a forward hook on
every activation module (ReLU, LeakyReLU, GELU, Tanh, Sigmoid, ReLU6). Per layer h:

- ``mean``, ``std`` of all entries of h;
- ``zero_fraction``: the fraction of entries exactly 0 (ReLU family; 0 otherwise). A healthy ReLU
  layer is ≈ half zeros, so this alone says nothing;
- ``dead_fraction``: the fraction of *units* (features; channels of a feature map) that are 0 for
  every row of the batch (ReLU family): such a unit gets no gradient (ReLU, ReLU6; LeakyReLU and
  GELU are never exactly 0 and report ≈ 0). Judging units rather than entries keeps the
  ``DEAD`` threshold below from firing on every healthy ReLU layer;
- ``saturated_fraction``: tanh |h| > 0.99; sigmoid h < 0.01 or h > 0.99; 0 for other activations.

Verdicts per layer (thresholds are the module constants), the first that applies:

- ``explosion``: std > ``EXPLODE_RATIO`` (10) × the first layer's std, or > ``EXPLODE_STD`` (100);
- ``collapse``: std < ``COLLAPSE_RATIO`` (0.1) × the first layer's std *and* < ``COLLAPSE_STD``
  (0.05): the signal shrinks towards 0 with depth (init too small, e.g. N(0, 0.01²));
- ``saturation``: saturated_fraction > ``SATURATED`` (0.3) (init too large for tanh/sigmoid);
- ``dead``: dead_fraction > ``DEAD`` (0.5);
- otherwise ``healthy``.

`summarize_activations` reports the worst verdict over the layers (priority collapse, explosion,
saturation, dead), the layers concerned, and the fix.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATION_TYPES = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.ReLU6)
RELU_FAMILY = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.GELU)
COLLAPSE_RATIO = 0.1
COLLAPSE_STD = 0.05
SATURATED = 0.3
SATURATION_LEVEL_TANH = 0.99
SATURATION_LEVEL_SIGMOID = 0.01  # h < 0.01 or h > 0.99
EXPLODE_RATIO = 10.0
EXPLODE_STD = 100.0
DEAD = 0.5

PRIORITY = ("collapse", "explosion", "saturation", "dead")
FIXES = {
    "collapse": "match init to activation: Xavier for tanh/sigmoid, Kaiming for ReLU "
                "(the init scale is too small: the signal vanishes with depth)",
    "explosion": "lower the init scale: match init to activation (Kaiming for ReLU, Xavier for tanh/sigmoid)",
    "saturation": "lower the init scale: match init to activation (Xavier for tanh/sigmoid)",
    "dead": "use Kaiming init with zero biases, a lower LR, or leaky_relu",
    "healthy": None,
}


def _saturated_fraction(module: nn.Module, h: torch.Tensor) -> float:
    if isinstance(module, nn.Tanh):
        return (h.abs() > SATURATION_LEVEL_TANH).float().mean().item()
    if isinstance(module, nn.Sigmoid):
        low, high = SATURATION_LEVEL_SIGMOID, 1.0 - SATURATION_LEVEL_SIGMOID
        return ((h < low) | (h > high)).float().mean().item()
    return 0.0


def _layer_stats(name: str, module: nn.Module, h: torch.Tensor) -> dict:
    relu = isinstance(module, RELU_FAMILY)
    zeros = h == 0
    if relu and h.ndim > 1:
        # a unit is dead when it is 0 on every row: units on dim 1 (features / channels)
        dead = zeros.transpose(0, 1).reshape(h.shape[1], -1).all(1).float().mean().item()
    else:
        dead = zeros.float().mean().item() if relu else 0.0
    return {"layer": name, "mean": h.mean().item(), "std": h.std().item() if h.numel() > 1 else 0.0,
            "zero_fraction": zeros.float().mean().item() if relu else 0.0, "dead_fraction": dead,
            "saturated_fraction": _saturated_fraction(module, h)}


def layer_verdict(layer: dict, first_std: float) -> str:
    """The verdict of one layer's stats, given the first activation layer's std."""
    std = layer["std"]
    if std > EXPLODE_STD or (first_std > 0 and std > EXPLODE_RATIO * first_std):
        return "explosion"
    if std < COLLAPSE_RATIO * first_std and std < COLLAPSE_STD:
        return "collapse"
    if layer["saturated_fraction"] > SATURATED:
        return "saturation"
    if layer["dead_fraction"] > DEAD:
        return "dead"
    return "healthy"


@torch.no_grad()
def activation_stats(model: nn.Module, X: torch.Tensor, *, activation: str | None = None) -> list[dict]:
    """Per activation module, in call order: {layer, mean, std, zero_fraction, dead_fraction,
    saturated_fraction, verdict}. The model's mode is restored.

    `activation` (the config's name) is informational: the module types decide the statistics.
    """
    del activation
    outputs: list[tuple[str, nn.Module, torch.Tensor]] = []

    def hook(name):
        def record(module, inputs, output):
            outputs.append((name, module, output.detach().float()))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
    was_training = model.training
    model.eval()
    try:
        model(X)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    stats = [_layer_stats(name, module, h) for name, module, h in outputs]
    for layer in stats:
        layer["verdict"] = layer_verdict(layer, stats[0]["std"])
    return stats


def summarize_activations(stats: list[dict]) -> dict:
    """{"verdict", "layers", "fix"}: the worst verdict over the layers (recomputed from the numbers),
    the layers that have it, and the remedy (None when healthy)."""
    if not stats:
        return {"verdict": "healthy", "layers": [], "fix": None}
    verdicts = [layer_verdict(layer, stats[0]["std"]) for layer in stats]
    for verdict in PRIORITY:
        layers = [layer["layer"] for layer, v in zip(stats, verdicts) if v == verdict]
        if layers:
            return {"verdict": verdict, "layers": layers, "fix": FIXES[verdict]}
    return {"verdict": "healthy", "layers": [], "fix": None}
