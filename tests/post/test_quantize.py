"""int8 quantization (dynamic and static) and int8 storage round trips."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nnrecipe.models import build_model
from nnrecipe.post.compressed_io import (decode_state, encode_state, load_compressed_model, nonzero_parameters,
                                         save_compressed)
from nnrecipe.post.prune import global_magnitude_prune
from nnrecipe.post.quantize import quantization_kind, quantize, quantize_dynamic_int8, quantize_static_int8

MLP = {"name": "mlp", "in_features": 12, "out_features": 4, "hidden": [32, 16], "activation": "relu"}
CNN = {"name": "cnn", "in_channels": 1, "image_size": [8, 8], "out_features": 3, "channels": [4, 8],
       "convs_per_stage": 1, "norm": "batch", "activation": "relu"}


def _model(spec, seed=0):
    torch.manual_seed(seed)
    return build_model(spec).eval()


def _qtensors(state):
    """Every quantized tensor of a state dict (packed (weight, bias) tuples included), by key."""
    out = {}
    for k, v in state.items():
        for i, t in enumerate(v if isinstance(v, tuple) else (v,)):
            if isinstance(t, torch.Tensor) and t.is_quantized:
                out[f"{k}#{i}"] = t
    return out


def test_kind_follows_the_architecture():
    assert quantization_kind(_model(MLP)) == "dynamic"
    assert quantization_kind(_model(CNN)) == "static"


def test_dynamic_weights_are_symmetric_per_channel_int8():
    model = _model(MLP)
    q = quantize_dynamic_int8(model)
    assert not any(isinstance(m, nn.Linear) for m in q.modules())  # every Linear replaced
    w_float = model.body[0].weight.detach().double()
    w = q.body[0].weight()
    assert w.dtype == torch.qint8 and w.qscheme() == torch.per_channel_affine
    scale = w.q_per_channel_scales()
    # symmetric: zero point 0, scale = max|W_c| / 127.5, q = clamp(round(W / scale), -128, 127)
    assert torch.all(w.q_per_channel_zero_points() == 0)
    torch.testing.assert_close(scale, w_float.abs().amax(1) / 127.5, rtol=1e-6, atol=0)
    expected = torch.clamp(torch.round(w_float / scale[:, None]), -128, 127)
    assert (w.int_repr().double() - expected).abs().max() <= 1  # float32 vs float64 division at .5 ties
    x = torch.randn(64, 12)
    assert (q(x) - model(x)).abs().max() < 0.05 * model(x).abs().max()


def test_static_quantization_converts_the_convs_and_stays_close():
    model = _model(CNN)
    x = torch.randn(128, 1, 8, 8)
    with torch.no_grad():
        model.train()
        model(x)  # give batch norm non-trivial running statistics
    model.eval()
    q = quantize_static_int8(model, list(x.split(32)))
    assert not any(type(m) is nn.Conv2d for m in q.modules())
    qconvs = [t for t in _qtensors(q.state_dict()).values() if t.dim() == 4]
    assert len(qconvs) == 2 and all(t.dtype == torch.qint8 for t in qconvs)
    ref = model(x)
    assert (q(x) - ref).abs().max() < 0.1 * ref.abs().max()


@pytest.mark.parametrize("spec", [MLP, CNN], ids=["dynamic", "static"])
def test_int8_storage_round_trips(spec):
    model = _model(spec)
    q = quantize(model, quantization_kind(model), [torch.randn(32, 1, 8, 8)] if spec is CNN else None)
    state = q.state_dict()
    tensors, layout = encode_state(state)
    assert any(t.dtype == torch.int8 for t in tensors.values())
    back = decode_state(tensors, layout)
    assert back.keys() == state.keys()
    before, after = _qtensors(state), _qtensors(back)
    assert before.keys() == after.keys() and before
    for k, t in before.items():
        u = after[k]
        assert u.qscheme() == t.qscheme() and u.dtype == t.dtype
        assert torch.equal(u.int_repr(), t.int_repr())
        assert torch.equal(u.dequantize(), t.dequantize())  # the weights the kernels use, bit for bit
    for k, v in state.items():
        if isinstance(v, torch.Tensor) and not v.is_quantized:
            assert torch.equal(back[k], v)


@pytest.mark.parametrize("spec", [MLP, CNN], ids=["dynamic", "static"])
def test_pruned_int8_model_reloads_with_the_same_outputs(tmp_path, spec):
    model = _model(spec)
    example = [1, 1, 8, 8] if spec is CNN else [1, 12]
    x = torch.randn(64, *example[1:])
    kind = quantization_kind(model)
    q = quantize(global_magnitude_prune(model, 0.8), kind, list(x.split(16)))
    size = save_compressed(q, tmp_path / "model.safetensors")
    info = {"architecture": spec, "compression": {"quantized": kind, "example_shape": example}}
    (tmp_path / "model.json").write_text(json.dumps(info))
    loaded = load_compressed_model(tmp_path, info)
    assert torch.equal(loaded(x), q(x))
    assert nonzero_parameters(loaded) == nonzero_parameters(q) < nonzero_parameters(model)
    # 80% zeros: a bitmask + the nonzero int8 values beat one byte per weight
    assert size < save_compressed(quantize(model, kind, list(x.split(16))), tmp_path / "dense.safetensors")
