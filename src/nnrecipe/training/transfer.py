"""Transfer learning: start from another run's weights, freeze a backbone, fine-tune.

- `load_pretrained(source)`: a run directory (its ``model.safetensors``), a ``.safetensors`` state
  dict, or a foreign ``.pt``/``.pth`` file read with ``torch.load(weights_only=True)`` (tensors and
  plain containers only: a pickle that tries to build any other object is refused, not run).
- `transfer_weights(model, state)`: copy every tensor whose name and shape match; report what
  matched and what is new. The head is always new when the class names differ (same count, other
  classes, e.g. digits 0–4 → 5–9): reusing it would start from the wrong answer.
- Layer groups (`layer_groups`), bottom to top: a conv net's ``features`` stages, then the
  classifier ("head"); an MLP's hidden layers, then "head". ``freeze: backbone`` freezes every
  group but the head (feature-extractor mode); ``freeze: up_to=<group>`` freezes the groups up to
  and including that one. Frozen BatchNorm layers stay in eval mode (the loop sees to it).
- Fine-tuning (Howard & Ruder 2018, ULMFiT): the LR is scaled by ``transfer.lr_factor`` (1/10 by
  default); discriminative LRs give group k below the head η/factor^k; gradual unfreezing thaws
  one group per epoch from the top, starting at ``unfreeze_at`` (`Unfreezer`).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from nnrecipe.errors import UserError
from nnrecipe.training.callbacks import Callback

_FIX = "pass a run directory written by `nnrecipe fit`, a .safetensors file or a .pt state dict"


def load_pretrained(source: str | Path) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """(state dict, class names or None) from a run directory or a weights file."""
    path = Path(source)
    classes = None
    if path.is_dir():
        import json

        try:
            classes = json.loads((path / "model.json").read_text()).get("class_names")
        except (OSError, ValueError):
            classes = None
        path = path / "model.safetensors"
    if not path.is_file():
        raise UserError(f"pretrained weights not found: {path}", "transfer.init_from", _FIX)
    try:
        if path.suffix in (".pt", ".pth", ".bin"):
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
        else:
            state = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise UserError(f"cannot read pretrained weights ({type(exc).__name__})", str(path), _FIX) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError("the file does not hold a state dict of tensors", str(path), _FIX)
    return state, classes


@torch.no_grad()
def transfer_weights(model: nn.Module, state: dict[str, torch.Tensor], *, new_head: bool = False) -> dict:
    """Copy matching tensors (same name and shape) into `model`; returns {"matched", "new", "skipped"}."""
    own = model.state_dict()
    matched, skipped = [], []
    for name, tensor in state.items():
        if new_head and name.startswith("head."):
            skipped.append(f"{name} (new classes)")
        elif name not in own:
            skipped.append(f"{name} (not in this model)")
        elif own[name].shape != tensor.shape:
            skipped.append(f"{name} (shape {tuple(tensor.shape)} vs {tuple(own[name].shape)})")
        else:
            own[name].copy_(tensor)
            matched.append(name)
    if not matched:
        raise UserError("no pretrained weights match this model", "transfer.init_from",
                        "use the same model settings as the pretrained run, e.g. --config RUN/config.yaml")
    new = [name for name in own if name not in matched]
    return {"matched": matched, "new": new, "skipped": skipped}


def layer_groups(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """[(name, parameters)] from the input side to the head."""
    groups: list[tuple[str, list[nn.Parameter]]] = []
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        for name, child in features.named_children():
            groups.append((name, list(child.parameters())))
    elif isinstance(getattr(model, "body", None), nn.Sequential):
        current: list[nn.Parameter] = []
        for child in model.body:
            if isinstance(child, nn.Linear) and current:
                groups.append((f"layer{len(groups) + 1}", current))
                current = []
            current.extend(child.parameters())
        if current:
            groups.append((f"layer{len(groups) + 1}", current))
    else:
        for name, child in model.named_children():
            if name != "head":
                groups.append((name, list(child.parameters())))
    seen = {id(p) for _, ps in groups for p in ps}
    groups.append(("head", [p for p in model.parameters() if id(p) not in seen]))
    return [(n, ps) for n, ps in groups if ps]


def frozen_count(spec: str | None, names: list[str]) -> int:
    """How many groups from the bottom `spec` freezes ("backbone" or "up_to=<group>")."""
    if not spec:
        return 0
    if spec == "backbone":
        return len(names) - 1
    if spec.startswith("up_to=") and spec[6:] in names[:-1]:
        return names.index(spec[6:]) + 1
    raise UserError(f"cannot freeze '{spec}'", "transfer.freeze",
                    f"use 'backbone' or up_to=<group> with a group of {', '.join(names[:-1])}")


def discriminative_scales(groups: list[tuple[str, list[nn.Parameter]]], factor: float) -> dict[int, float]:
    """{id(param): 1/factor^k}, k = number of groups between the parameter's group and the head."""
    top = len(groups) - 1
    return {id(p): factor ** -(top - i) for i, (_, ps) in enumerate(groups) for p in ps}


class Unfreezer(Callback):
    """Freeze the first `n_frozen` groups at fit start; thaw them at epoch `unfreeze_at` (all at
    once, or with `gradual` one group per epoch, top group first)."""

    order = 1

    def __init__(self, groups, n_frozen: int, *, unfreeze_at: int | None, gradual: bool):
        self.groups, self.n_frozen = groups, n_frozen
        self.unfreeze_at, self.gradual = unfreeze_at, gradual
        self.events: list[str] = []
        self.trainable_from = n_frozen  # index of the lowest group that trains

    def _set(self, upto: int, trainable_from: int) -> None:
        for i, (_, params) in enumerate(self.groups[:upto]):
            for p in params:
                p.requires_grad_(i >= trainable_from)
        self.trainable_from = trainable_from

    def on_fit_begin(self, trainer, logs):
        self._set(self.n_frozen, self.n_frozen)

    def on_epoch_begin(self, trainer, logs):
        if self.unfreeze_at is None or logs["epoch"] < self.unfreeze_at or not self.n_frozen:
            return
        steps = logs["epoch"] - self.unfreeze_at + 1
        first = max(0, self.n_frozen - steps) if self.gradual else 0
        if first == self.trainable_from:
            return  # nothing new thaws this epoch: one event per change, not one per epoch
        self._set(self.n_frozen, first)
        self.events.append(f"epoch {logs['epoch']}: training from group '{self.groups[first][0]}' up")
