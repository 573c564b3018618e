"""int8 LSTM/GRU cells: unpacked into tensors, stored in the compressed format, re-packed bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nnrecipe.models import build_model
from nnrecipe.post.compressed_io import (decode_state, encode_state, load_compressed_model, nonzero_parameters,
                                         save_compressed)
from nnrecipe.post.quantize import quantize_dynamic_int8, quiet_quantization
from nnrecipe.post.quantized_rnn_io import is_cell_params, pack_cell, unpack_cell

VOCAB, STEPS = 20, 9


def _arch(cell: str, layers: int, bidirectional: bool) -> dict:
    return {"name": cell, "vocab_size": VOCAB, "out_features": 3, "pattern": "many_to_one", "embed_dim": 8,
            "hidden": 6, "num_layers": layers, "bidirectional": bidirectional, "dropout": 0.0}


def _model(arch: dict) -> nn.Module:
    torch.manual_seed(0)
    return build_model(arch).eval()


def _ids() -> torch.Tensor:
    """Token ids [16, STEPS], most rows right-padded (the packed-sequence path)."""
    x = torch.randint(1, VOCAB, (16, STEPS), generator=torch.Generator().manual_seed(1))
    for i in range(16):
        x[i, 1 + i % STEPS:] = 0
    return x


CASES = [(cell, layers, bi) for cell in ("lstm", "gru") for layers in (1, 2) for bi in (False, True)]


@pytest.mark.parametrize("cell,layers,bidirectional", CASES)
def test_quantized_rnn_reloads_with_bit_identical_logits(tmp_path, cell, layers, bidirectional):
    arch = _arch(cell, layers, bidirectional)
    model = _model(arch)
    q = quantize_dynamic_int8(model)
    cells = [v for v in q.state_dict().values() if is_cell_params(v)]
    assert len(cells) == layers * (2 if bidirectional else 1)  # one packed object per layer and direction
    save_compressed(q, tmp_path / "model.safetensors")
    info = {"architecture": arch, "compression": {"quantized": "dynamic", "example_shape": [1, STEPS]}}
    loaded = load_compressed_model(tmp_path, info)
    x = _ids()
    with torch.no_grad():
        assert torch.equal(loaded(x), q(x))
        assert not torch.equal(q(x), model(x))  # int8 really changed the arithmetic
    assert nonzero_parameters(loaded) == nonzero_parameters(q)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cell_tensors_survive_the_state_round_trip(cell):
    q = quantize_dynamic_int8(_model(_arch(cell, 2, True)))
    state = q.state_dict()
    tensors, layout = encode_state(state)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())  # safetensors-ready: no script objects
    assert sum(t.numel() for t in tensors.values() if t.dtype == torch.int8) > 0
    back = decode_state(tensors, layout)
    for key, value in state.items():
        if not is_cell_params(value):
            continue
        assert layout[key]["kind"] == "rnn_cell"
        before, after = unpack_cell(value), unpack_cell(back[key])
        assert after.reduce_range == before.reduce_range
        for name, t in before.tensors().items():
            u = after.tensors()[name]
            if t.is_quantized:
                assert u.qscheme() == t.qscheme() and u.q_scale() == t.q_scale()
                assert u.q_zero_point() == t.q_zero_point() and torch.equal(u.int_repr(), t.int_repr())
            else:
                assert torch.equal(u, t)


def test_unpacked_weights_are_the_symmetric_int8_of_the_float_ones():
    model = _model(_arch("lstm", 1, False))
    cell = unpack_cell(quantize_dynamic_int8(model).rnn._all_weight_values[0].param)
    for q, w in ((cell.w_ih, model.rnn.weight_ih_l0), (cell.w_hh, model.rnn.weight_hh_l0)):
        w = w.detach().double()
        # per-tensor symmetric int8: zero point 0, scale = max|W| / 127.5, q = round(W / scale)
        assert q.dtype == torch.qint8 and q.qscheme() == torch.per_tensor_affine and q.q_zero_point() == 0
        assert q.q_scale() == pytest.approx(float(w.abs().max()) / 127.5, rel=1e-6)
        assert (q.int_repr().double() - torch.round(w / q.q_scale())).abs().max() <= 1  # float32 ties
    assert torch.equal(cell.b_ih, model.rnn.bias_ih_l0.detach()) and torch.equal(cell.b_hh, model.rnn.bias_hh_l0)


def test_pack_cell_rebuilds_a_working_cell():
    q = quantize_dynamic_int8(_model(_arch("gru", 1, False)))
    x = _ids()
    with torch.no_grad():
        expected = q(x)
        rebuilt = copy.deepcopy(q)
        cell = unpack_cell(q.rnn._all_weight_values[0].param)
        rebuilt.rnn._all_weight_values[0].param = pack_cell(**cell.tensors(), reduce_range=cell.reduce_range)
        assert torch.equal(rebuilt(x), expected)


def test_nonzero_parameters_counts_recurrent_weights():
    model = _model(_arch("lstm", 2, True))
    with torch.no_grad():
        model.rnn.weight_hh_l1_reverse[:2] = 0  # zeros in a recurrent matrix must not be counted
    assert nonzero_parameters(model) == sum(int(torch.count_nonzero(p)) for p in model.parameters())


def test_other_script_objects_and_fp16_cells_are_refused(tmp_path):
    q = quantize_dynamic_int8(_model(_arch("lstm", 1, False)))
    linear_packed = torch.ops.quantized.linear_prepack(q.head.weight(), q.head.bias())
    with pytest.raises(TypeError, match="not a quantized RNN cell"):
        unpack_cell(linear_packed)
    from torch.ao.quantization import quantize_dynamic
    with quiet_quantization():
        fp16 = quantize_dynamic(_model(_arch("lstm", 1, False)), {nn.LSTM}, dtype=torch.float16)
    with pytest.raises(TypeError, match="fp16"):
        save_compressed(fp16, tmp_path / "fp16.safetensors")
