"""The transformer encoder with a per-token head (``pool: none``), the tagging family's transformer."""

from __future__ import annotations

import torch

from nnrecipe.models import build_model

V, C = 12, 5
SPEC = {"name": "transformer", "kind": "encoder", "pool": "none", "vocab_size": V, "out_features": C,
        "dim": 16, "heads": 2, "depth": 2, "max_len": 32}


def test_every_position_gets_logits():
    m = build_model(SPEC).eval()
    assert m(torch.randint(1, V, (3, 7))).shape == (3, 7, C)


def test_padding_never_changes_the_real_positions():
    m = build_model(SPEC).double().eval()
    seq = torch.randint(1, V, (1, 4))
    padded = torch.cat([seq, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(m(padded)[:, :4], m(seq), rtol=0, atol=1e-12)


def test_a_token_sees_the_tokens_after_it():
    m = build_model(SPEC).double().eval()
    a = torch.tensor([[1, 2, 3, 4]])
    b = torch.tensor([[1, 2, 3, 5]])
    assert not torch.allclose(m(a)[:, 0], m(b)[:, 0])  # no causal mask: position 0 reads position 3
