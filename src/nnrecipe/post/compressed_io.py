"""Compressed weights on disk: sparse (bitmask + values) and int8 (+ scales, zero points) tensors in
one safetensors file, with a JSON layout in its metadata; and the loader `nnrecipe.load` calls.

Every state-dict entry ``key`` becomes one or more safetensors tensors named ``key::part``; the
layout (metadata ``nnrecipe.layout``) says how to rebuild it:

- ``{"kind": "tensor", "sparse": false}``: a dense tensor, ``key::data``.
- ``{"kind": "tensor", "sparse": true, "shape": [...]}``: ``key::mask`` = the bits of (x ≠ 0) over the
  row-major flattened tensor, packed 8 per byte (⌈n/8⌉ bytes), and ``key::values`` = its nonzero
  entries in order (nnz·b bytes, b bytes per entry). Chosen when smaller than dense by more than
  one header entry: ⌈n/8⌉ + nnz·b < n·b ⇔ density < 1 − 1/(8b), i.e. below 97% for float32 and
  87.5% for int8. A bitmask beats COO/CSR indices (≥ 2 bytes per nonzero) above ~6% density,
  which is where magnitude pruning leaves a network.
- ``{"kind": "qtensor", "qdtype", "qscheme", "axis", "data": <tensor layout>}``: a quantized
  tensor x̂ = (q − zero_point)·scale as its integers q (int8/uint8, dense or sparse as above) plus
  ``key::scale`` and ``key::zero_point`` (scalars per tensor, vectors along ``axis`` per channel).
  Scales are stored as float32 and zero points as int16 when that loses nothing (observers compute
  them in float32), else as float64/int64, so x̂ comes back bit for bit.
- ``{"kind": "tuple", "items": [...]}`` (a dynamic Linear's packed (weight, bias)), items named
  ``key#i``; ``{"kind": "dtype", "value": "qint8"}``; ``{"kind": "none"}``.
- ``{"kind": "rnn_cell", "reduce_range", "items": {"w_ih", "w_hh", "b_ih", "b_hh"}}``: one layer and
  direction of a dynamically quantized LSTM/GRU (a packed TorchScript object in the state dict),
  as its int8 weights (qtensor layouts) and float biases named ``key#w_ih`` etc., re-packed on
  load (`nnrecipe.post.quantized_rnn_io`).

Hand-written because safetensors stores dense tensors only, and torch's sparse and quantized
tensors do not serialize to it.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from nnrecipe.models import build_model
from nnrecipe.post.quantize import quantized_skeleton, quiet_quantization
from nnrecipe.post.quantized_rnn_io import is_cell_params, pack_cell, unpack_cell

LAYOUT_KEY = "nnrecipe.layout"
HEADER_ENTRY_BYTES = 128  # about what one more tensor costs in the safetensors JSON header


def _encode_tensor(key: str, t: torch.Tensor, out: dict[str, torch.Tensor]) -> dict:
    t = t.detach().cpu().contiguous()
    n, itemsize = t.numel(), t.element_size()
    nnz = int(torch.count_nonzero(t)) if n else 0
    sparse_bytes = math.ceil(n / 8) + nnz * itemsize
    if t.dim() == 0 or sparse_bytes + HEADER_ENTRY_BYTES >= n * itemsize:
        out[f"{key}::data"] = t.clone()
        return {"kind": "tensor", "sparse": False}
    flat = t.reshape(-1)
    mask = flat != 0
    out[f"{key}::mask"] = torch.from_numpy(np.packbits(mask.numpy()))
    out[f"{key}::values"] = flat[mask].clone()
    return {"kind": "tensor", "sparse": True, "shape": list(t.shape)}


def _decode_tensor(key: str, spec: dict, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    if not spec["sparse"]:
        return tensors[f"{key}::data"]
    values = tensors[f"{key}::values"]
    n = math.prod(spec["shape"])
    mask = torch.from_numpy(np.unpackbits(tensors[f"{key}::mask"].numpy(), count=n).astype(bool))
    flat = torch.zeros(n, dtype=values.dtype)
    flat[mask] = values
    return flat.reshape(spec["shape"])


def _narrow(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`t` as `dtype` when the round trip is exact, else unchanged."""
    small = t.to(dtype)
    return small.contiguous() if torch.equal(small.to(t.dtype), t) else t.contiguous()


def _encode(key: str, value, out: dict[str, torch.Tensor]) -> dict:
    if value is None:
        return {"kind": "none"}
    if isinstance(value, torch.dtype):
        return {"kind": "dtype", "value": str(value).removeprefix("torch.")}
    if isinstance(value, tuple):
        return {"kind": "tuple", "items": [_encode(f"{key}#{i}", v, out) for i, v in enumerate(value)]}
    if isinstance(value, torch.ScriptObject):  # a packed int8 LSTM/GRU cell; TypeError for anything else
        cell = unpack_cell(value)
        return {"kind": "rnn_cell", "reduce_range": cell.reduce_range,
                "items": {name: _encode(f"{key}#{name}", t, out) for name, t in cell.tensors().items()}}
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"cannot store {key}: {type(value).__name__}")
    if not value.is_quantized:
        return _encode_tensor(key, value, out)
    scheme = value.qscheme()
    spec = {"kind": "qtensor", "qdtype": str(value.dtype).removeprefix("torch."),
            "qscheme": str(scheme).removeprefix("torch.")}
    if scheme == torch.per_tensor_affine:
        scale = torch.tensor(value.q_scale(), dtype=torch.float64)
        zero_point = torch.tensor(value.q_zero_point(), dtype=torch.int64)
    elif scheme == torch.per_channel_affine:
        scale = value.q_per_channel_scales().to(torch.float64)
        zero_point = value.q_per_channel_zero_points().to(torch.int64)
        spec["axis"] = int(value.q_per_channel_axis())
    else:
        raise TypeError(f"cannot store {key}: quantization scheme {scheme}")
    out[f"{key}::scale"] = _narrow(scale, torch.float32)
    out[f"{key}::zero_point"] = _narrow(zero_point, torch.int16)
    spec["data"] = _encode_tensor(key, value.int_repr(), out)
    return spec


def _decode(key: str, spec: dict, tensors: dict[str, torch.Tensor]):
    kind = spec["kind"]
    if kind == "none":
        return None
    if kind == "dtype":
        return getattr(torch, spec["value"])
    if kind == "tuple":
        return tuple(_decode(f"{key}#{i}", s, tensors) for i, s in enumerate(spec["items"]))
    if kind == "tensor":
        return _decode_tensor(key, spec, tensors)
    if kind == "rnn_cell":
        parts = {name: _decode(f"{key}#{name}", s, tensors) for name, s in spec["items"].items()}
        return pack_cell(**parts, reduce_range=spec["reduce_range"])
    q = _decode_tensor(key, spec["data"], tensors)
    scale, zero_point = tensors[f"{key}::scale"].double(), tensors[f"{key}::zero_point"].long()
    # the private constructors take the integers as they are; torch.quantize_per_* would re-round floats
    if spec["qscheme"] == "per_tensor_affine":
        return torch._make_per_tensor_quantized_tensor(q, float(scale), int(zero_point))
    return torch._make_per_channel_quantized_tensor(q, scale, zero_point, spec["axis"])


def encode_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """A state dict → (safetensors-ready tensors, layout)."""
    tensors: dict[str, torch.Tensor] = {}
    layout = {key: _encode(key, value, tensors) for key, value in state.items()}
    return tensors, layout


def decode_state(tensors: dict[str, torch.Tensor], layout: dict) -> dict:
    return {key: _decode(key, spec, tensors) for key, spec in layout.items()}


def save_compressed(model: nn.Module, path: str | Path) -> int:
    """Write `model`'s state dict to `path` in the compressed format; returns the file's bytes."""
    tensors, layout = encode_state(model.state_dict())
    save_file(tensors, str(path), metadata={LAYOUT_KEY: json.dumps(layout, separators=(",", ":"))})
    return Path(path).stat().st_size


def read_compressed(path: str | Path) -> dict:
    """The state dict stored by `save_compressed`."""
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        if LAYOUT_KEY not in meta:
            raise ValueError(f"{path} has no {LAYOUT_KEY} metadata")
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    return decode_state(tensors, json.loads(meta[LAYOUT_KEY]))


def load_compressed_model(run_dir: str | Path, info: dict) -> nn.Module:
    """Rebuild a compressed run's model: build_model(architecture) → the same quantization transform
    (model.json's ``compression.quantized``) → load the stored sparse/int8 state."""
    spec = info["compression"]
    model = build_model(info["architecture"]).eval()
    if spec.get("quantized"):
        model = quantized_skeleton(model, spec["quantized"], spec["example_shape"])
    state = OrderedDict(read_compressed(Path(run_dir) / "model.safetensors"))
    # load_state_dict reads each module's format version from state._metadata (quantized Linear
    # without it expects the version-1 key layout); the skeleton has the very same modules
    state._metadata = getattr(model.state_dict(), "_metadata", None)
    with quiet_quantization():
        model.load_state_dict(state)
    return model.eval()


# .weight/.bias, an RNN's weight_ih_l0/bias_hh_l1_reverse…, a dynamic Linear's or RNN cell's packed params
PARAMETER_KEY = re.compile(r"\.(weight|bias)(_(ih|hh)_l\d+(_reverse)?)?$|_packed_params\._packed_params$"
                           r"|_all_weight_values\.\d+\.param$")


def _is_parameter(key: str) -> bool:
    return PARAMETER_KEY.search(key) is not None


def nonzero_parameters(model: nn.Module) -> int:
    """Nonzero entries of the weights and biases (int8 weights: nonzero integers), not of buffers
    such as batch-norm running statistics or quantization scales."""
    count = 0
    for key, value in model.state_dict().items():
        if not _is_parameter(key):
            continue
        if is_cell_params(value):
            value = tuple(unpack_cell(value).tensors().values())
        for t in value if isinstance(value, tuple) else (value,):
            if isinstance(t, torch.Tensor):
                count += int(torch.count_nonzero(t.int_repr() if t.is_quantized else t))
    return count
