import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.models import build_model
from nnrecipe.models.attention import (MultiHeadAttention, PositionEncoding, TransformerBlock, attention_mask,
                                       explicit_attention, sinusoidal_positions)

V = 17


def _spec(kind, **kw):
    base = {"name": "transformer", "kind": kind, "dim": 16, "heads": 4, "depth": 2, "mlp_ratio": 2}
    if kind == "encoder":
        base |= {"vocab_size": V, "out_features": 3}
    elif kind == "decoder":
        base |= {"vocab_size": V}
    else:
        base |= {"src_vocab": V, "tgt_vocab": 11}
    return base | kw


def test_sinusoidal_positions_match_the_formula():
    table = sinusoidal_positions(20, 8)
    for pos in range(20):
        for i in range(4):
            angle = pos / 10000 ** (2 * i / 8)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_learned_positions_are_a_parameter_table():
    p = PositionEncoding(16, kind="learned", max_len=30)
    assert [x.shape for x in p.parameters()] == [(30, 16)]
    assert sum(x.numel() for x in PositionEncoding(16, kind="sinusoidal").parameters()) == 0
    with pytest.raises(ValueError, match="max_len"):
        p(torch.zeros(1, 31, 16))


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_equals_the_explicit_formula(causal):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g, dtype=torch.float64) for _ in range(3))
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    mask = attention_mask(5, 5, key_padding_mask=pad, causal=causal)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out, w = explicit_attention(q, k, v, mask)
    scores = (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(~mask, float("-inf"))  # the oracle
    torch.testing.assert_close(out, scores.softmax(-1) @ v, rtol=0, atol=1e-12)
    torch.testing.assert_close(fused, out, rtol=0, atol=1e-6)
    assert torch.all(w[1, :, :, 3:] == 0)
    if causal:
        assert torch.all(w.triu(diagonal=1) == 0)


@pytest.mark.parametrize("causal", [False, True])
def test_mha_weights_path_equals_fused_path(causal):
    mha = MultiHeadAttention(16, 4).double()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    for mask in (None, pad):
        fused, none = mha(x, key_padding_mask=mask, causal=causal)
        explicit, w = mha(x, key_padding_mask=mask, causal=causal, need_weights=True)
        assert none is None and w.shape == (2, 4, 6, 6)
        torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-6)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 6, dtype=torch.float64))


def test_block_parameter_count():
    d, r = 16, 2
    block = TransformerBlock(d, 4, mlp_ratio=r)
    expected = 4 * (d * d + d) + 2 * (2 * d) + (d * r * d + r * d) + (r * d * d + d)  # MHA, 2 LNs, MLP
    assert sum(p.numel() for p in block.parameters()) == expected


@pytest.mark.parametrize("kind", ["encoder", "decoder", "encoder_decoder"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_shapes_and_head(kind, positions):
    m = build_model(_spec(kind, positions=positions))
    x = torch.randint(1, V, (2, 7))
    if kind == "encoder":
        assert m(x).shape == (2, 3)
    elif kind == "decoder":
        assert m(x).shape == (2, 7, V)
    else:
        assert m(x, None, torch.randint(1, 11, (2, 5))).shape == (2, 5, 11)
    assert [x for x in m.modules() if isinstance(x, nn.Linear)][-1] is m.head


def test_float_feature_encoder_and_cls_pooling():
    m = build_model({"name": "transformer", "kind": "encoder", "input_size": 5, "out_features": 2,
                     "dim": 16, "depth": 1, "pool": "cls"})
    assert m(torch.randn(3, 9, 5)).shape == (3, 2)


def test_bad_specs():
    with pytest.raises(ValueError, match="divisible"):
        build_model(_spec("encoder", dim=18, heads=4))
    with pytest.raises(ValueError, match="kind"):
        build_model(_spec("encoder") | {"kind": "bert"})
    with pytest.raises(ValueError, match="positions"):
        build_model(_spec("decoder", positions="rotary"))


def test_causal_mask_future_tokens_never_change_earlier_outputs():
    m = build_model(_spec("decoder")).double().eval()
    x = torch.randint(1, V, (2, 8))
    changed = x.clone()
    changed[:, 5:] = torch.randint(1, V, (2, 3))
    a, b = m(x), m(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-12)
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    s2s = build_model(_spec("encoder_decoder", tgt_vocab=V)).double().eval()
    src = torch.randint(1, V, (2, 4))
    a, b = s2s(src, None, x), s2s(src, None, changed)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-12)


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_padding_never_changes_the_classifier(pool):
    m = build_model(_spec("encoder", pool=pool)).double().eval()
    seq = torch.randint(1, V, (1, 4))
    garbage = torch.cat([seq, torch.randint(1, V, (1, 3))], dim=1)
    zeros = torch.cat([seq, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    alone = m(seq)
    torch.testing.assert_close(m(garbage, torch.tensor([4])), alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(m(zeros), alone, rtol=0, atol=1e-12)  # pad id 0 is masked without lengths
    assert not torch.allclose(m(garbage), alone)  # garbage is seen when nobody says it is padding


def test_padding_never_changes_the_translation():
    m = build_model(_spec("encoder_decoder")).double().eval()
    src = torch.randint(1, V, (1, 3))
    padded = torch.cat([src, torch.randint(1, V, (1, 4))], dim=1)
    tgt = torch.randint(1, 11, (1, 5))
    torch.testing.assert_close(m(padded, torch.tensor([3]), tgt), m(src, None, tgt), rtol=0, atol=1e-12)


def test_attention_maps_are_distributions_over_valid_tokens():
    m = build_model(_spec("encoder"))
    maps = m.attention_maps(torch.tensor([[3, 4, 5, 0, 0]]))
    assert len(maps) == 2 and maps[0].shape == (1, 4, 5, 5)
    for w in maps:
        torch.testing.assert_close(w.sum(-1), torch.ones(1, 4, 5))
        assert torch.all(w[..., 3:] == 0)


def test_generate_greedy_and_sampled():
    torch.manual_seed(0)
    m = build_model(_spec("decoder", max_len=6))
    prefix = torch.randint(1, V, (2, 3))
    greedy = m.generate(prefix, 5, temperature=0)
    assert greedy.shape == (2, 8) and torch.equal(greedy[:, :3], prefix)
    for t in range(3, 8):  # each greedy token is the argmax given the (cropped) context before it
        assert torch.equal(greedy[:, t], m(greedy[:, max(0, t - 6):t])[:, -1].argmax(-1))
    draws = [m.generate(prefix, 5, temperature=1.0, generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    assert torch.equal(draws[0], draws[1])
    assert m.training


def test_encoder_decoder_greedy_decode_stops_at_eos():
    m = build_model(_spec("encoder_decoder"))
    src = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    tokens, attn = m.greedy_decode(src, None, max_len=6, bos_id=1, eos_id=2)
    assert tokens.shape[1] <= 6 and attn.shape == (2, tokens.shape[1], 4)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, tokens.shape[1]))
    assert torch.all(attn[1, :, 2:] == 0)
    with torch.no_grad():
        m.head.bias[2] = 100.0
    tokens, _ = m.greedy_decode(src, None, max_len=6, bos_id=1, eos_id=2)
    assert tokens.tolist() == [[2], [2]]
