"""Packed int8 LSTM/GRU cells (torch.ao dynamic quantization) taken apart into tensors and rebuilt.

`quantize_dynamic` replaces an nn.LSTM/GRU by a module whose state dict holds one TorchScript object
per layer and direction, ``…_all_weight_values.<i>.param`` (a ``CellParamsBase``), instead of
tensors. Its ``__getstate__()`` is

    (("quantized_dynamic", [b_ih, b_hh], [], [reduce_range], [packed W_ih, packed W_hh]), type name)

where each packed weight (``LinearPackedParamsBase``, the fbgemm/qnnpack layout) unpacks with
``torch.ops.quantized.linear_unpack`` to (W int8 per-tensor qtensor, b) with b the same float bias.
`unpack_cell` returns W_ih, W_hh (qtensors), b_ih, b_hh (float) and reduce_range; `pack_cell`
rebuilds the object with the calls torch.ao's own ``RNNBase.from_float`` makes:

    make_quantized_cell_params_dynamic(linear_prepack(W_ih, b_ih), linear_prepack(W_hh, b_hh),
                                       b_ih, b_hh, reduce_range)

The kernels then see the same integers, scales, zero points and biases, so outputs are bit for bit
those of the in-memory quantized model. Hand-written because torch serializes these objects only
by pickling (``torch.save``), which safetensors files exclude.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CELL_TYPE = "__torch__.torch.classes.rnn.CellParamsBase"
DYNAMIC = "quantized_dynamic"  # int8 weights; fp16 cells ("quantized_dynamic_fp16") are not produced here


@dataclass
class CellTensors:
    w_ih: torch.Tensor  # int8 qtensor [gates·H, input]
    w_hh: torch.Tensor  # int8 qtensor [gates·H, H]
    b_ih: torch.Tensor
    b_hh: torch.Tensor
    reduce_range: bool  # activations quantized to 7 bits (fbgemm's overflow guard), as at quantization time

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"w_ih": self.w_ih, "w_hh": self.w_hh, "b_ih": self.b_ih, "b_hh": self.b_hh}


def is_cell_params(value) -> bool:
    return isinstance(value, torch.ScriptObject) and value._type().qualified_name() == CELL_TYPE


def unpack_cell(value: torch.ScriptObject) -> CellTensors:
    """The tensors of a dynamically quantized LSTM/GRU cell; TypeError for any other object."""
    if not is_cell_params(value):
        name = value._type().qualified_name() if isinstance(value, torch.ScriptObject) else type(value).__name__
        raise TypeError(f"not a quantized RNN cell: {name}")
    state = value.__getstate__()[0]
    if state[0] != DYNAMIC:
        raise TypeError(f"cannot store a '{state[0]}' RNN cell (only int8 '{DYNAMIC}')")
    _, (b_ih, b_hh), _, longs, (packed_ih, packed_hh) = state
    w_ih, packed_b_ih = torch.ops.quantized.linear_unpack(packed_ih)
    w_hh, packed_b_hh = torch.ops.quantized.linear_unpack(packed_hh)
    # one copy of each bias is stored; the packed weights must carry the very same ones
    for packed_b, b in ((packed_b_ih, b_ih), (packed_b_hh, b_hh)):
        if packed_b is None or not torch.equal(packed_b, b):
            raise TypeError("a quantized RNN cell whose packed and separate biases differ")
    return CellTensors(w_ih, w_hh, b_ih.detach(), b_hh.detach(), bool(longs[0]) if longs else False)


def pack_cell(w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor, *,
              reduce_range: bool) -> torch.ScriptObject:
    """The ``CellParamsBase`` object `quantize_dynamic` would hold for these tensors."""
    packed_ih = torch.ops.quantized.linear_prepack(w_ih, b_ih)
    packed_hh = torch.ops.quantized.linear_prepack(w_hh, b_hh)
    return torch.ops.quantized.make_quantized_cell_params_dynamic(packed_ih, packed_hh, b_ih, b_hh, reduce_range)
