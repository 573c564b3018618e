"""Activation statistics at initialization: is the signal alive through depth?

One forward pass (eval mode) with hooks on every activation module. Per layer: mean, std, the
fraction of exact zeros, the dead fraction (units — features, or channels of a feature map — that
are 0 for every row of the batch: a ReLU layer is about half zeros when healthy, so the per-entry
zero fraction alone would cry wolf), and the fraction saturated (tanh |h| > 0.99; sigmoid
h < 0.01 or h > 0.99). Verdicts (Glorot & Bengio 2010; He et al. 2015):
- collapse: the last layer's std < 0.1 × the first's and < 0.05 (signal vanishing with depth);
- saturation: > 30% of a layer's outputs saturated;
- explosion: std grows > 10× from the first to the last layer, or exceeds 100;
- dead: > 50% exact zeros in a ReLU-family layer.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATION_TYPES = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.ReLU6)
RELU_FAMILY = (nn.ReLU, nn.LeakyReLU, nn.ReLU6)
COLLAPSE_RATIO, COLLAPSE_STD, SATURATED, EXPLODE_RATIO, EXPLODE_STD, DEAD = 0.1, 0.05, 0.3, 10.0, 100.0, 0.5

FIXES = {
    "collapse": "match init to activation (Xavier for tanh/sigmoid, Kaiming for ReLU): the init scale is too small",
    "saturation": "lower the init scale: match init to activation (Xavier for tanh/sigmoid)",
    "explosion": "lower the init scale: match init to activation (Kaiming for ReLU, Xavier for tanh)",
    "dead": "use Kaiming init with zero biases, a lower LR, or leaky_relu",
    "healthy": None,
}


def _saturated(module: nn.Module, h: torch.Tensor) -> float:
    if isinstance(module, nn.Tanh):
        return (h.abs() > 0.99).float().mean().item()
    if isinstance(module, nn.Sigmoid):
        return ((h < 0.01) | (h > 0.99)).float().mean().item()
    return 0.0


@torch.no_grad()
def activation_stats(model: nn.Module, X: torch.Tensor, *, activation: str | None = None) -> list[dict]:
    """Per activation layer: {layer, mean, std, dead_fraction, saturated_fraction, verdict}."""
    del activation  # the module types tell; kept for a stable call signature
    stats: list[dict] = []

    def hook(name):
        def record(module, inputs, output):
            h = output.detach().float()
            zeros = h == 0
            relu = isinstance(module, RELU_FAMILY)
            unit_dead = zeros.transpose(0, 1).reshape(h.shape[1], -1).all(1) if h.ndim > 1 else zeros
            dead = unit_dead.float().mean().item() if relu else 0.0
            sat = _saturated(module, h)
            verdict = "dead" if dead > DEAD else "saturation" if sat > SATURATED else "healthy"
            stats.append({"layer": name, "mean": h.mean().item(), "std": h.std().item(),
                          "zero_fraction": zeros.float().mean().item() if relu else 0.0, "dead_fraction": dead, "saturated_fraction": sat, "verdict": verdict})
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
    if len(stats) >= 2:
        first, last = stats[0]["std"], stats[-1]["std"]
        if last < COLLAPSE_RATIO * first and last < COLLAPSE_STD:
            stats[-1]["verdict"] = "collapse"
        elif last > EXPLODE_RATIO * first or last > EXPLODE_STD:
            stats[-1]["verdict"] = "explosion"
    return stats


def summarize_activations(stats: list[dict]) -> dict:
    """The worst verdict over layers, with its fix."""
    for verdict in ("collapse", "explosion", "saturation", "dead"):
        layers = [s["layer"] for s in stats if s["verdict"] == verdict]
        if layers:
            return {"verdict": verdict, "layers": layers, "fix": FIXES[verdict]}
    return {"verdict": "healthy", "layers": [], "fix": None}
