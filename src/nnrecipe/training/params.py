"""Which parameters get weight decay: the one place that decides it.

Biases and normalization weights/shifts (BatchNorm, LayerNorm, GroupNorm, ...) are never decayed:
shrinking a bias or a norm's γ towards 0 does not reduce capacity, it only fights the model.
Every weight matrix / convolution kernel is decayed (and penalized by L1/L2).
"""

from __future__ import annotations

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def split_decay(model: nn.Module, *, include_frozen: bool = False) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Return (decay, no_decay) trainable parameters of `model`, each parameter exactly once
    (`include_frozen`: also those with requires_grad False, for schedules that unfreeze them)."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if (not p.requires_grad and not include_frozen) or id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, _NORM_TYPES) or name.endswith("bias") or p.ndim <= 1:
                no_decay.append(p)
            else:
                decay.append(p)
    return decay, no_decay


def decayed_weights(model: nn.Module) -> list[torch.Tensor]:
    """The parameters that weight decay and L1/L2 penalties apply to."""
    return split_decay(model)[0]
