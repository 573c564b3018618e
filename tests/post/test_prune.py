"""Magnitude pruning, the sparsity bisection, and sparse (bitmask + values) storage."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from nnrecipe.post.compressed_io import decode_state, encode_state, save_compressed
from nnrecipe.post.prune import (TOLERANCE, bisect_sparsity, channel_prune, global_magnitude_prune,
                                 output_head, prunable_weights, sparsity)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 6, 3)
        self.body = nn.Linear(24, 32)
        self.head = nn.Linear(32, 3)


def _prunable(model):
    return [model.conv.weight, model.body.weight]


class RecurrentToy(nn.Module):
    """Two stacked bidirectional layers of `cell`, a Linear body and a head."""

    def __init__(self, cell):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = cell(6, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.body = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.relu(self.body(self.rnn(x)[0][:, -1])))


RECURRENT_WEIGHTS = ["weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
                     "weight_ih_l1", "weight_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse"]
CELLS = [nn.RNN, nn.LSTM, nn.GRU]


@pytest.mark.parametrize("limit", [0.0371, 0.5, 0.637, 0.9])
def test_bisection_finds_the_largest_sparsity_within_budget(limit):
    # a metric that falls monotonically with s: within budget exactly when s <= limit
    s, trials = bisect_sparsity(lambda x: x <= limit)
    assert s <= limit  # always a measured, within-budget sparsity ...
    assert limit - s <= TOLERANCE  # ... at most one bracket width below the true limit
    assert (s, True) in trials
    assert len(trials) <= 10  # log2(0.99 / (1/256)) ≈ 8 halvings, plus the first check of s_max
    assert all(ok == (x <= limit) for x, ok in trials)


def test_bisection_edges():
    s, trials = bisect_sparsity(lambda x: True)
    assert s == 0.99 and len(trials) == 1  # everything within budget: no search
    s, trials = bisect_sparsity(lambda x: False)
    assert s == 0.0 and not any(ok for _, ok in trials)


def test_global_pruning_removes_the_smallest_weights_over_all_layers():
    model = Toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = global_magnitude_prune(model, 0.6)
    # the original is untouched, and so are biases and the output head
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(pruned.head.weight, model.head.weight)
    assert torch.equal(pruned.body.bias, model.body.bias) and torch.equal(pruned.conv.bias, model.conv.bias)
    assert output_head(pruned) is pruned.head
    pool = torch.cat([w.detach().flatten() for w in _prunable(model)])
    kept = torch.cat([w.detach().flatten() for w in _prunable(pruned)])
    assert int((kept == 0).sum()) == round(0.6 * pool.numel())
    assert sparsity(pruned) == pytest.approx(0.6, abs=1 / pool.numel())
    # one global threshold: every kept |w| is at least every removed |w|, in whichever layer
    removed = pool[kept == 0].abs()
    assert kept[kept != 0].abs().min() >= removed.max()
    assert torch.equal(kept[kept != 0], pool[kept != 0])  # survivors keep their values


def test_channel_pruning_zeroes_the_lowest_norm_rows_except_the_head():
    model = Toy()
    pruned = channel_prune(model, 0.5)
    for orig, new in ((model.conv.weight, pruned.conv.weight), (model.body.weight, pruned.body.weight)):
        rows = orig.detach().flatten(1)
        zero_rows = (new.detach().flatten(1) == 0).all(dim=1)
        assert int(zero_rows.sum()) == round(0.5 * len(rows))
        norms = rows.norm(dim=1)
        assert norms[~zero_rows].min() >= norms[zero_rows].max()
    assert torch.equal(pruned.head.weight, model.head.weight)


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_weight_matrices_are_prunable_but_not_their_biases(cell):
    model = RecurrentToy(cell)
    assert prunable_weights(model) == [(model.rnn, n) for n in RECURRENT_WEIGHTS] + [(model.body, "weight")]
    assert prunable_weights(model, recurrent=False) == [(model.body, "weight")]


@pytest.mark.parametrize("cell", CELLS)
def test_global_pruning_pools_recurrent_and_linear_weights(cell):
    model = RecurrentToy(cell)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = global_magnitude_prune(model, 0.7)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    weights = RECURRENT_WEIGHTS
    pool = torch.cat([getattr(model.rnn, n).detach().flatten() for n in weights] + [model.body.weight.flatten()])
    kept = torch.cat([getattr(pruned.rnn, n).detach().flatten() for n in weights] + [pruned.body.weight.flatten()])
    assert int((kept == 0).sum()) == round(0.7 * pool.numel())
    assert sparsity(pruned) == pytest.approx(0.7, abs=1 / pool.numel())
    assert kept[kept != 0].abs().min() >= pool[kept == 0].abs().max()  # one threshold over both kinds
    assert torch.equal(kept[kept != 0], pool[kept != 0])
    for key, value in pruned.state_dict().items():  # biases and the head are untouched
        if "bias" in key or key.startswith("head."):
            assert torch.equal(value, before[key])
    assert all(float((getattr(pruned.rnn, n) == 0).double().mean()) > 0 for n in weights)


@pytest.mark.parametrize("cell", CELLS)
def test_pruned_recurrent_layer_is_a_plain_module_that_runs_saves_and_loads(cell, tmp_path):
    model = RecurrentToy(cell)
    pruned = global_magnitude_prune(model, 0.6)
    # prune.remove left no reparametrization behind: same keys, no masks, no hooks
    assert set(pruned.state_dict()) == set(model.state_dict())
    assert not any(k.endswith(("_orig", "_mask")) for k in pruned.state_dict())
    assert not pruned.rnn._forward_pre_hooks
    assert all(isinstance(getattr(pruned.rnn, n), nn.Parameter) for n in RECURRENT_WEIGHTS)
    # the cell computes with the parameters themselves (its flat weight list follows them)
    flat = dict(zip(pruned.rnn._flat_weights_names, pruned.rnn._flat_weights))
    assert all(flat[n] is getattr(pruned.rnn, n) for n in RECURRENT_WEIGHTS)
    x = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = pruned(x)
        assert not torch.allclose(out, model(x))  # pruning changed what the cell computes
        pruned.rnn.flatten_parameters()  # a no-op on the CPU; must not bring old weights back
        assert torch.equal(pruned(x), out)
        save_file({k: v.contiguous() for k, v in pruned.state_dict().items()}, str(tmp_path / "m.safetensors"))
        fresh = RecurrentToy(cell)
        fresh.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
        assert torch.equal(fresh(x), out)


def test_channel_pruning_leaves_recurrent_weights_dense():
    model = RecurrentToy(nn.LSTM)
    pruned = channel_prune(model, 0.5)
    assert all(torch.equal(getattr(pruned.rnn, n), getattr(model.rnn, n)) for n in RECURRENT_WEIGHTS)
    assert int((pruned.body.weight == 0).all(dim=1).sum()) == 8


def test_bitmask_layout_by_hand():
    t = torch.zeros(4096)
    t[1], t[4], t[4095] = 1.5, 2.0, -3.0
    tensors, layout = encode_state({"w": t})
    assert layout["w"] == {"kind": "tensor", "sparse": True, "shape": [4096]}
    mask = tensors["w::mask"]
    assert mask.dtype == torch.uint8 and mask.numel() == 4096 // 8
    assert int(mask[0]) == 0b01001000 and int(mask[-1]) == 0b00000001  # entries 1, 4 and 4095, MSB first
    assert int(mask[1:-1].sum()) == 0
    assert tensors["w::values"].tolist() == [1.5, 2.0, -3.0]


@pytest.mark.parametrize("density", [0.05, 0.3, 0.49])
def test_sparse_storage_round_trips_exactly_and_beats_dense(tmp_path, density):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(256, 128, generator=g)
    w[torch.rand(w.shape, generator=g) > density] = 0
    model = nn.Linear(128, 256)
    with torch.no_grad():
        model.weight.copy_(w)
    state = model.state_dict()
    tensors, layout = encode_state(state)
    assert layout["weight"]["sparse"] and not layout["bias"]["sparse"]
    back = decode_state(tensors, layout)
    assert all(torch.equal(back[k], v) for k, v in state.items())
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "dense.safetensors"))
    dense = (tmp_path / "dense.safetensors").stat().st_size
    sparse = save_compressed(model, tmp_path / "sparse.safetensors")
    assert sparse == (tmp_path / "sparse.safetensors").stat().st_size
    # bitmask (1/8 byte per entry) + 4 bytes per nonzero instead of 4 bytes per entry; the rest
    # of the difference is the headers (tensor names, the layout metadata): well under 2 KB
    nnz = int((w != 0).sum())
    saving = w.numel() * 4 - (w.numel() // 8 + nnz * 4)
    assert abs((dense - sparse) - saving) < 2048
    assert sparse < dense


def test_nearly_dense_tensors_stay_dense():
    w = torch.randn(64, 64)
    w[0, :3] = 0  # 99% dense: a bitmask would cost more than it saves
    tensors, layout = encode_state({"w": w})
    assert layout["w"]["sparse"] is False and torch.equal(tensors["w::data"], w)
