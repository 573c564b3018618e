"""The captioner (Show, Attend and Tell): shapes, attention that sums to one over the grid, the
encoder's grid, teacher forcing, greedy decoding equal to a beam of one, and gradients that reach
the encoder through the attention."""

from __future__ import annotations

import pytest
import torch

from nnrecipe.models import build_model
from nnrecipe.models.beam_search import beam_search_one, gnmt_length_penalty

SPEC = {"name": "captioner", "in_channels": 1, "image_size": [8, 24], "vocab_size": 11, "channels": [8, 16],
        "embed_dim": 8, "hidden": 16, "attention_dim": 8}


def _model(**extra):
    torch.manual_seed(0)
    return build_model({**SPEC, **extra})


@pytest.mark.parametrize("extra", [{}, {"cell": "gru", "gate": False}, {"encoder": "resnet", "widths": [8, 16],
                                                                          "blocks": [1, 1]}])
def test_forward_gives_logits_and_attention_over_the_grid(extra):
    model = _model(**extra)
    images, tgt_in = torch.randn(3, 1, 8, 24), torch.randint(4, 11, (3, 5))
    logits, alpha = model(images, tgt_in)
    h, w = model.grid
    assert logits.shape == (3, 5, 11) and alpha.shape == (3, 5, h * w)
    assert torch.allclose(alpha.sum(-1), torch.ones(3, 5), atol=1e-6) and (alpha >= 0).all()
    assert model.encoder(images).shape[1:] == (16, h, w)


def test_cnn_grid_of_a_digits_canvas_keeps_the_left_right_order():
    assert _model().grid == (2, 6)  # 8×24 pooled twice: six columns along the canvas


def test_gradients_reach_the_encoder_through_the_attention():
    model = _model()
    logits, alpha = model(torch.randn(2, 1, 8, 24), torch.randint(4, 11, (2, 4)))
    (logits.sum() + alpha[..., 0].sum()).backward()
    conv = next(p for n, p in model.named_parameters() if n.startswith("encoder"))
    assert conv.grad is not None and conv.grad.abs().sum() > 0
    assert model.attention.w_q.weight.grad.abs().sum() > 0


def test_teacher_forcing_zero_feeds_back_the_models_own_words():
    model = _model().eval()
    images, tgt_in = torch.randn(2, 1, 8, 24), torch.randint(4, 11, (2, 4))
    forced, _ = model(images, tgt_in)
    free, _ = model(images, tgt_in, teacher_forcing=0.0)
    assert torch.allclose(forced[:, 0], free[:, 0])  # the first step always reads <bos>
    argmax_fed = tgt_in.clone()
    argmax_fed[:, 1:] = free[:, :-1].argmax(-1)
    assert torch.allclose(model(images, argmax_fed)[0], free, atol=1e-6)


def test_greedy_decoding_equals_a_beam_of_one_and_stops_at_eos():
    model = _model().eval()
    images = torch.randn(4, 1, 8, 24)
    greedy = model.greedy_decode(images, max_len=6, bos_id=2, eos_id=3)
    beam = model.beam_search(images, max_len=6, bos_id=2, eos_id=3, beam=1, length_penalty=0.0)
    for g, b in zip(greedy.tolist(), beam.tolist()):
        g = g[:g.index(3) + 1] if 3 in g else g
        assert [t for t in b if t] == [t for t in g if t]


def test_the_shared_beam_search_finds_the_best_sequence_a_greedy_step_misses():
    """A toy decoder whose state is the prefix so far: greedy takes 4 (p 0.6) and ends at 0.6 · 0.4,
    the beam keeps 5 (p 0.3) whose <eos> follows with 0.95: 0.285 > 0.24."""
    probs = {(): [0, 0, 0, 0.1, 0.6, 0.3], (4,): [0, 0, 0, 0.2, 0.4, 0.4], (5,): [0, 0, 0, 0.95, 0.05, 0]}

    def step(y, state, k):
        state = [prefix + ([t] if t != 2 else []) for prefix, t in zip(state, y.tolist())]  # 2 = <bos>
        rows = [probs.get(tuple(prefix), [0, 0, 0, 1.0, 0, 0]) for prefix in state]
        return torch.tensor(rows, dtype=torch.float32).clamp_min(1e-9).log(), state

    def select(state, idx):
        return [state[i] for i in idx.tolist()]

    cpu = torch.device("cpu")
    best = beam_search_one(step, select, [[]], max_len=3, bos_id=2, eos_id=3, beam=2, alpha=0.0, device=cpu,
                           dtype=torch.float32)
    greedy = beam_search_one(step, select, [[]], max_len=3, bos_id=2, eos_id=3, beam=1, alpha=0.0, device=cpu,
                             dtype=torch.float32)
    assert best == [5, 3] and greedy[0] == 4
    assert gnmt_length_penalty(1, 0.6) == 1.0
