import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.models import build_model
from nnrecipe.models.seq2seq import Seq2Seq, gnmt_length_penalty

SRC_V, TGT_V, BOS, EOS = 13, 9, 1, 2


def _model(attention="additive", cell="gru", **kw):
    spec = {"name": "seq2seq", "src_vocab": SRC_V, "tgt_vocab": TGT_V, "embed_dim": 8, "hidden": 16,
            "attention": attention, "cell": cell, **kw}
    return build_model(spec)


def _batch(g):
    src = torch.randint(3, SRC_V, (3, 6), generator=g)
    lengths = torch.tensor([6, 4, 2])
    src[1, 4:], src[2, 2:] = 0, 0
    tgt_in = torch.cat([torch.full((3, 1), BOS), torch.randint(3, TGT_V, (3, 4), generator=g)], dim=1)
    return src, lengths, tgt_in


@pytest.mark.parametrize("attention", ["additive", "dot", "general", "none"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_shapes_and_head(attention, cell):
    m = _model(attention, cell, num_layers=2)
    src, lengths, tgt_in = _batch(torch.Generator().manual_seed(0))
    logits, attn = m(src, lengths, tgt_in)
    assert logits.shape == (3, 5, TGT_V) and attn.shape == (3, 5, 6)
    assert [x for x in m.modules() if isinstance(x, nn.Linear)][-1] is m.head


@pytest.mark.parametrize("attention", ["additive", "general"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bidirectional_encoder(attention, cell):
    m = _model(attention, cell, bidirectional=True, num_layers=2)
    src, lengths, tgt_in = _batch(torch.Generator().manual_seed(0))
    assert m(src, lengths, tgt_in)[0].shape == (3, 5, TGT_V)


def test_dot_attention_needs_matching_sizes():
    with pytest.raises(ValueError, match="general"):
        _model("dot", bidirectional=True)
    with pytest.raises(ValueError, match="attention"):
        _model("multiplicative")


@pytest.mark.parametrize("attention", ["additive", "dot", "general"])
def test_attention_sums_to_one_over_valid_source_and_is_zero_on_padding(attention):
    m = _model(attention)
    src, lengths, tgt_in = _batch(torch.Generator().manual_seed(0))
    _, attn = m(src, lengths, tgt_in)
    valid = torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)  # [B, S]
    torch.testing.assert_close(attn.sum(dim=-1), torch.ones(3, 5))
    assert torch.all(attn.masked_select(~valid.unsqueeze(1).expand_as(attn)) == 0)
    assert torch.all(attn.masked_select(valid.unsqueeze(1).expand_as(attn)) > 0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_source_padding_never_changes_the_output(cell, bidirectional):
    m = _model("general", cell, bidirectional=bidirectional).double().eval()
    g = torch.Generator().manual_seed(0)
    src = torch.randint(3, SRC_V, (1, 3), generator=g)
    padded = torch.cat([src, torch.randint(3, SRC_V, (1, 4), generator=g)], dim=1)  # garbage, not pad ids
    tgt_in = torch.tensor([[BOS, 4, 5, 6]])
    alone, attn_alone = m(src, torch.tensor([3]), tgt_in)
    out, attn = m(padded, torch.tensor([3]), tgt_in)
    torch.testing.assert_close(out, alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(attn[..., :3], attn_alone, rtol=0, atol=1e-12)


def test_without_teacher_forcing_the_model_feeds_its_own_argmax():
    m = _model().eval()
    src, lengths, tgt_in = _batch(torch.Generator().manual_seed(0))
    logits, _ = m(src, lengths, tgt_in, teacher_forcing=0.0, generator=torch.Generator().manual_seed(0))
    greedy, _ = m.greedy_decode(src, lengths, max_len=5, bos_id=BOS, eos_id=-1)  # -1: never stops early
    assert torch.equal(logits.argmax(dim=-1), greedy)
    forced, _ = m(src, lengths, tgt_in)
    assert not torch.allclose(forced, logits)  # gold inputs do change the later steps
    half = [m(src, lengths, tgt_in, teacher_forcing=0.5, generator=torch.Generator().manual_seed(3))[0]
            for _ in range(2)]
    torch.testing.assert_close(half[0], half[1])  # the coin flips come from the generator


def test_greedy_decode_stops_at_eos():
    m = _model()
    with torch.no_grad():
        m.head.bias[EOS] = 100.0  # <eos> wins at once
    src, lengths, _ = _batch(torch.Generator().manual_seed(0))
    tokens, attn = m.greedy_decode(src, lengths, max_len=10, bos_id=BOS, eos_id=EOS)
    assert tokens.tolist() == [[EOS]] * 3 and attn.shape == (3, 1, 6)
    assert m.training  # the mode is restored


def test_greedy_decode_pads_after_eos():
    torch.manual_seed(0)
    m = _model(hidden=32)
    src = torch.randint(3, SRC_V, (16, 6), generator=torch.Generator().manual_seed(1))
    tokens, _ = m.greedy_decode(src, None, max_len=12, bos_id=BOS, eos_id=3)
    assert tokens.shape[1] <= 12
    for row in tokens.tolist():
        if 3 in row:
            assert all(t == 0 for t in row[row.index(3) + 1:])


@pytest.mark.parametrize("attention", ["additive", "none"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_of_one_is_greedy(attention, cell):
    torch.manual_seed(0)
    m = _model(attention, cell, hidden=32)
    src = torch.randint(3, SRC_V, (8, 6), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([6, 5, 4, 3, 6, 2, 6, 1])
    for eos in (3, 5):  # a token the random model does and does not emit early
        greedy, _ = m.greedy_decode(src, lengths, max_len=10, bos_id=BOS, eos_id=eos)
        beam = m.beam_search(src, lengths, max_len=10, bos_id=BOS, eos_id=eos, beam=1)
        assert torch.equal(beam, greedy)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_a_beam_wide_enough_is_exhaustive_search(alpha):
    """max_len 2 with beam ≥ V·(V−1) never prunes, so beam search must return the argmax over every
    output, [eos], [a, eos] and [a, b], of log P(Y | X) / ((5 + |Y|) / 6)^α (scored teacher-forced)."""
    torch.manual_seed(0)
    m = _model(hidden=32).eval()
    with torch.no_grad():
        m.head.bias[EOS] = -3.0  # so a two-token output wins and the search has work to do
    firsts = [a for a in range(TGT_V) if a != EOS]
    candidates = [[EOS, 0]] + [[a, b] for a in firsts for b in range(TGT_V)]
    tokens = torch.tensor(candidates)
    tgt_in = torch.cat([torch.full((len(candidates), 1), BOS), tokens[:, :1]], dim=1)
    beaten = 0
    for seed in (2, 10, 15):
        src = torch.randint(3, SRC_V, (1, 5), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            logp = m(src.expand(len(candidates), -1), None, tgt_in)[0].log_softmax(-1)
        step = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # [N, 2]
        scores = [step[0, 0].item()] + [(step[i, 0] + step[i, 1]).item() / ((5 + 2) / 6) ** alpha
                                        for i in range(1, len(candidates))]
        best = candidates[max(range(len(candidates)), key=scores.__getitem__)]
        found = m.beam_search(src, None, max_len=2, bos_id=BOS, eos_id=EOS, beam=TGT_V * TGT_V,
                              length_penalty=alpha)
        assert best[0] != EOS and found[0].tolist() == best
        beaten += m.greedy_decode(src, None, max_len=2, bos_id=BOS, eos_id=EOS)[0][0].tolist() != best
    assert beaten >= 1  # these sources include ones where greedy misses the best output


def test_length_penalty_formula():
    assert gnmt_length_penalty(1, 0.6) == 1.0  # ((5 + 1) / 6)^α
    assert gnmt_length_penalty(7, 0.6) == pytest.approx(2.0 ** 0.6)
    assert gnmt_length_penalty(19, 0.0) == 1.0


def test_copy_task_overfits_with_teacher_forcing():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    m = Seq2Seq(src_vocab=10, tgt_vocab=10, embed_dim=16, hidden=48, attention="additive")
    src = torch.randint(3, 10, (20, 5), generator=g)  # ids 0–2 are pad, bos, eos
    tgt_in = torch.cat([torch.full((20, 1), BOS), src], dim=1)
    tgt_out = torch.cat([src, torch.full((20, 1), EOS)], dim=1)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    losses = []
    for _ in range(40):
        logits, _ = m(src, None, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, losses
