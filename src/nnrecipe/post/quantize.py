"""Post-training int8 quantization with `torch.ao.quantization` (CPU kernels: fbgemm/x86, qnnpack).

Affine quantization maps a float x to q = clamp(round(x / scale) + zero_point, q_min, q_max) and back
to x̂ = (q − zero_point) · scale. Weights are int8 and symmetric (zero_point = 0), one scale per
output channel, scale_c = max|W_c| / 127.5 (half the width of [−128, 127]; Krishnamoorthi 2018,
Jacob et al. 2018):

- dynamic (`quantize_dynamic`): Linear/LSTM/GRU weights are int8 ahead of time; each activation
  batch is quantized on the fly from its own min/max. Needs no calibration data: for MLPs and
  recurrent nets, whose cost is the weight matrices.
- static (`prepare_fx` → calibration → `convert_fx`): activation scales/zero points are fixed from
  min/max or histogram observers run over calibration batches (training rows), conv + batch norm
  (+ ReLU) are fused first (BN folded into W and b), and the whole conv net runs in int8. FX graph
  mode traces the model, so no QuantStub/DeQuantStub has to be inserted by hand; ops without an
  int8 kernel (e.g. flatten) run in float between a dequantize and a quantize.

torch.ao.quantization is deprecated in favour of torchao but still ships with torch (2.13 here) and
is the only CPU int8 path without another dependency; its deprecation warnings are silenced here.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager

import torch
from torch import nn

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
KINDS = ("dynamic", "static")


@contextmanager
def quiet_quantization():
    """Silence torch.ao's deprecation notices (several per quantized model, none actionable here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=".*quantiz", category=UserWarning)
        yield


def quantization_kind(model: nn.Module) -> str:
    """"static" for conv nets (their cost is in the convs, which only static int8 covers), else "dynamic"."""
    return "static" if any(isinstance(m, CONV) for m in model.modules()) else "dynamic"


def engine() -> str:
    return torch.backends.quantized.engine


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` with Linear (per-channel int8) and LSTM/GRU (per-tensor int8) weights."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    spec = {nn.Linear: per_channel_dynamic_qconfig, nn.LSTM: default_dynamic_qconfig, nn.GRU: default_dynamic_qconfig}
    with quiet_quantization():
        return quantize_dynamic(copy.deepcopy(model).eval(), spec, dtype=torch.qint8)


def quantize_static_int8(model: nn.Module, calibration: list[torch.Tensor]) -> nn.Module:
    """A copy of `model` fused and converted to int8, activation ranges observed on `calibration`."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with quiet_quantization(), torch.no_grad():
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(engine()),
                              (calibration[0],))
        for batch in calibration:
            prepared(batch)
        return convert_fx(prepared)


def quantize(model: nn.Module, kind: str, calibration: list[torch.Tensor] | None = None) -> nn.Module:
    if kind == "dynamic":
        return quantize_dynamic_int8(model)
    if kind == "static":
        return quantize_static_int8(model, calibration)
    raise ValueError(f"unknown quantization '{kind}'; choose one of {', '.join(KINDS)}")


def quantized_skeleton(model: nn.Module, kind: str, example_shape: list[int]) -> nn.Module:
    """The module structure `quantize` produces for this architecture, with placeholder values
    (static: observers calibrated on one zero batch) for `load_state_dict` to overwrite."""
    return quantize(model, kind, [torch.zeros(example_shape)])
