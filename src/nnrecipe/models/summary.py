"""Per-layer model summary: output shape, parameters and multiply-accumulates (MACs) of each layer.

`summarize(model, input_shape)` runs one dummy batch of that shape (zeros, eval mode, no grad)
with forward hooks and returns a row per layer in the order the forward pass reaches it. A "layer"
is a leaf module, or any module that owns parameters directly (a ViT's class token), so that
every parameter is counted exactly once: Σ row params = Σ p.numel() over model.parameters()
(a parameter shared by two modules counts at the first). Modules with parameters the forward never
calls come last, without an output shape. Output shapes drop the leading (batch) dimension.

MACs per input sample (one multiply and one add each; FLOPs ≈ 2·MACs):

- Conv{1,2,3}d:  K_h·K_w·(C_in/groups)·C_out·H_out·W_out  (`shapes.conv_macs`; = weight
  numel × output positions, so 1-d and 3-d convs follow the same rule);
- Linear:        in·out per output row, × the rows excluding the batch (e.g. tokens);
- everything else 0: norms, activations, pooling and dropout (elementwise, negligible next to the
  matrix products), embeddings (a lookup), and what runs inside non-leaf modules (recurrent layers,
  attention's QKᵀ and AV matrix products, which are not nn modules) is not counted.

A module called several times in one forward (a shared layer, a decoder step) adds its MACs each
time. torch has no per-layer summary (torchinfo / fvcore are not dependencies), hence this file.
"""

from __future__ import annotations

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _first_tensor(output) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one call of `module` per sample of the batch, from its output (see the module docstring)."""
    batch = output.shape[0] if output.dim() > 1 else 1
    if isinstance(module, _CONVS):
        positions = output.numel() // (batch * module.out_channels)
        return module.weight.numel() * positions
    if isinstance(module, nn.Linear):
        rows = output.numel() // (batch * module.out_features) if output.dim() > 1 else 1
        return module.in_features * module.out_features * rows
    return 0


def _is_layer(module: nn.Module) -> bool:
    leaf = next(module.children(), None) is None
    return leaf or next(module.parameters(recurse=False), None) is not None


@torch.no_grad()
def summarize(model: nn.Module, input_shape: tuple[int, ...], *, dtype: torch.dtype = torch.float32) -> dict:
    """{"layers": [{"name", "type", "output_shape", "params", "macs"}], "total_params",
    "trainable_params", "total_macs"} for one batch of `input_shape` (batch dimension included,
    e.g. (1, 3, 32, 32) or (1, 64); integer `dtype` for token ids)."""
    names = {module: name for name, module in model.named_modules()}
    calls: dict[nn.Module, dict] = {}  # insertion order = order of the first call

    def pre(module: nn.Module, inputs) -> None:
        calls.setdefault(module, {"output_shape": None, "macs": 0})

    def post(module: nn.Module, inputs, output) -> None:
        out = _first_tensor(output)
        if out is not None:
            calls[module]["output_shape"] = tuple(out.shape[1:])
            calls[module]["macs"] += layer_macs(module, out)

    layers = [m for m in names if _is_layer(m)]
    hooks = [h for m in layers for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    model.eval()  # dropout off, batch norm on running statistics: a batch of 1 is fine
    try:
        model(torch.zeros(input_shape, dtype=dtype, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)

    order = list(calls) + [m for m in layers if m not in calls and next(m.parameters(recurse=False), None) is not None]
    seen: set[int] = set()
    rows = []
    for module in order:
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        info = calls.get(module, {"output_shape": None, "macs": 0})
        rows.append({"name": names[module], "type": type(module).__name__, "output_shape": info["output_shape"],
                     "params": sum(p.numel() for p in own), "macs": info["macs"]})
    return {"layers": rows,
            "total_params": sum(p.numel() for p in model.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total_macs": sum(r["macs"] for r in rows)}


def human(n: float) -> str:
    """3 significant digits with a K/M/G suffix: 1234567 → "1.23 M"."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {suffix}"
    return str(int(n))
