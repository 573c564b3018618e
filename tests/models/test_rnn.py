import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.models import build_model
from nnrecipe.models.rnn import RecurrentNet, detach_state, early_step_grad_norms, sequence_mask
from nnrecipe.training.init import init_recurrent
from nnrecipe.config import build_config
from nnrecipe.training.init import initialize
from nnrecipe.tasks import task_for_config

CELLS = ["rnn", "lstm", "gru"]
B, T, D, V, C = 3, 7, 5, 11, 4


def _net(cell, pattern, *, tokens, bidirectional=False, **kw):
    spec = {"name": cell, "out_features": C, "hidden": 8, "embed_dim": 6, "pattern": pattern,
            "bidirectional": bidirectional, **kw}
    spec.update({"vocab_size": V} if tokens else {"input_size": D})
    return build_model(spec)


def _inputs(shape_bt, tokens, g):
    if tokens:
        return torch.randint(1, V, shape_bt, generator=g)
    return torch.randn(*shape_bt, D, generator=g)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("tokens", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_for_every_pattern(cell, tokens, bidirectional):
    g = torch.Generator().manual_seed(0)
    m = _net(cell, "one_to_one", tokens=tokens, bidirectional=bidirectional)
    assert m(_inputs((B,), tokens, g)).shape == (B, C)
    m = _net(cell, "many_to_one", tokens=tokens, bidirectional=bidirectional, num_layers=2)
    assert m(_inputs((B, T), tokens, g)).shape == (B, C)
    m = _net(cell, "many_to_many", tokens=tokens, bidirectional=bidirectional, num_layers=2)
    assert m(_inputs((B, T), tokens, g), torch.tensor([7, 3, 5])).shape == (B, T, C)
    if bidirectional:
        with pytest.raises(ValueError, match="bidirectional"):
            _net(cell, "one_to_many", tokens=tokens, bidirectional=True, out_steps=4)
    else:
        m = _net(cell, "one_to_many", tokens=tokens, out_steps=9, num_layers=2)
        assert m(_inputs((B,), tokens, g)).shape == (B, 9, C)


def test_head_is_the_last_linear_and_parameter_count():
    m = _net("rnn", "one_to_many", tokens=False, out_steps=3)
    assert [x for x in m.modules() if isinstance(x, nn.Linear)][-1] is m.head
    m = _net("gru", "many_to_one", tokens=True, bidirectional=True)
    E, H = 6, 8
    gru = 2 * 3 * (H * E + H * H + 2 * H)  # two directions, three gates each
    assert sum(p.numel() for p in m.parameters()) == V * E + gru + (2 * H * C + C)


def test_lstm_forget_gate_bias_is_one_and_recurrent_blocks_are_orthogonal():
    m = _net("lstm", "many_to_one", tokens=True, num_layers=2, bidirectional=True)
    for name, p in m.rnn.named_parameters():
        if name.startswith("bias_ih"):
            i, f, g, o = p.chunk(4)
            assert torch.all(f == 1) and torch.all(torch.cat([i, g, o]) == 0)
        elif name.startswith("bias_hh"):
            assert torch.all(p == 0)
        elif name.startswith("weight_hh"):
            for block in p.chunk(4):
                torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)


def test_one_to_one_is_the_elman_formula():
    m = _net("rnn", "one_to_one", tokens=False)
    x = torch.randn(B, D)
    r = m.rnn
    h = torch.tanh(x @ r.weight_ih_l0.T + r.bias_ih_l0 + r.bias_hh_l0)  # h_0 = 0, so W_hh·h_0 drops out
    torch.testing.assert_close(m(x), m.head(h))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pattern", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("tokens", [True, False])
def test_padding_never_changes_a_sequence_result(cell, pattern, bidirectional, tokens):
    torch.manual_seed(0)
    m = _net(cell, pattern, tokens=tokens, bidirectional=bidirectional, num_layers=2).double().eval()
    g = torch.Generator().manual_seed(1)
    short, other = _inputs((1, 4), tokens, g), _inputs((1, T), tokens, g)
    garbage = _inputs((1, T - 4), tokens, g)
    if not tokens:
        short, other, garbage = short.double(), other.double(), garbage.double() * 100
    batch = torch.cat([other, torch.cat([short, garbage], dim=1)])
    out = m(batch, torch.tensor([T, 4]))
    alone, other_alone = m(short), m(other)
    if pattern == "many_to_many":
        torch.testing.assert_close(out[1, :4], alone[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(out[0], other_alone[0], rtol=0, atol=1e-12)
    else:
        torch.testing.assert_close(out[1], alone[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(out[0], other_alone[0], rtol=0, atol=1e-12)


def test_sequence_mask():
    mask = sequence_mask(torch.tensor([3, 0, 5]), 5)
    assert mask.tolist() == [[True] * 3 + [False] * 2, [False] * 5, [True] * 5]


@pytest.mark.parametrize("cell", CELLS)
def test_truncated_bptt_chunks_equal_the_whole_sequence(cell):
    m = _net(cell, "many_to_many", tokens=True, num_layers=2).double()
    x = torch.randint(1, V, (B, 10))
    whole, _ = m.forward_with_state(x, state=m.init_state(B, dtype=torch.float64))
    torch.testing.assert_close(whole, m(x))
    first, state = m.forward_with_state(x[:, :6])
    state = detach_state(state)
    for s in state if isinstance(state, tuple) else (state,):
        assert s.grad_fn is None and not s.requires_grad
    second, _ = m.forward_with_state(x[:, 6:], state=state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


def test_early_step_grad_norms_match_autograd_and_respect_causality():
    m = _net("gru", "many_to_many", tokens=True)
    x, y = torch.randint(1, V, (B, T)), torch.randint(0, C, (B, T))
    norms = early_step_grad_norms(m, x, y, lambda z, t: F.cross_entropy(z.flatten(0, 1), t.flatten()))
    e = m.embed(x).detach().requires_grad_(True)
    F.cross_entropy(m.head(m.rnn(e)[0]).flatten(0, 1), y.flatten()).backward()
    assert norms == pytest.approx([e.grad[:, t].norm().item() for t in range(T)], rel=1e-5)
    # A loss on the first step only: a unidirectional net's later inputs cannot affect it.
    first = early_step_grad_norms(m, x, y, lambda z, t: F.cross_entropy(z[:, 0], t[:, 0]))
    assert first[0] > 0 and all(n == 0 for n in first[1:])


def test_gradients_vanish_through_a_plain_rnn_but_not_an_lstm():
    x, y = torch.randint(1, V, (16, 60), generator=torch.Generator().manual_seed(0)), torch.zeros(16, dtype=torch.long)
    ratios = {}
    for cell in ("rnn", "lstm"):
        torch.manual_seed(0)
        m = build_model({"name": cell, "vocab_size": V, "out_features": C, "hidden": 64})
        norms = early_step_grad_norms(m, x, y, F.cross_entropy)
        ratios[cell] = norms[0] / norms[-1]  # ‖∂L/∂x_0‖ / ‖∂L/∂x_59‖
    assert ratios["lstm"] > 1e3 * ratios["rnn"], ratios


def test_one_to_many_gradient_reaches_the_input_vector():
    m = _net("lstm", "one_to_many", tokens=False, out_steps=5)
    x = torch.randn(B, D, requires_grad=True)
    m(x)[:, -1].sum().backward()  # the last step depends on x only through h₀ and the feedback chain
    assert x.grad.abs().sum() > 0


def test_bad_specs():
    with pytest.raises(ValueError, match="exactly one"):
        RecurrentNet(out_features=2, vocab_size=5, input_size=3)
    with pytest.raises(ValueError, match="pattern"):
        _net("gru", "many_to_few", tokens=True)
    with pytest.raises(ValueError, match="out_steps"):
        _net("gru", "one_to_many", tokens=True)
    with pytest.raises(ValueError, match="sequence"):
        _net("gru", "one_to_one", tokens=True).forward_with_state(torch.ones(2, 1, dtype=torch.long))


def test_chrono_init_spreads_gate_time_constants_up_to_t_max():
    """Tallec & Ollivier 2018: LSTM b_f = log u, b_i = −b_f; GRU b_z = log u; u ~ U(1, T_max − 1)."""
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 200, num_layers=2, bidirectional=True)
    init_recurrent(lstm, gate_bias="chrono", chrono_max=60)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            i, f, g, o = p.chunk(4)
            u = f.exp()
            assert u.min() >= 1 and u.max() <= 59 and u.max() > 50 and u.min() < 2  # spread over [1, 59]
            assert torch.equal(i, -f) and torch.all(torch.cat([g, o]) == 0)
        elif name.startswith("bias_hh"):
            assert torch.all(p == 0)
    gru = nn.GRU(4, 200)
    init_recurrent(gru, gate_bias="chrono", chrono_max=20)
    r, z, n = gru.bias_ih_l0.chunk(3)
    assert z.exp().min() >= 1 and z.exp().max() <= 19 and torch.all(torch.cat([r, n]) == 0)
    # a unit with forget bias log u (and nothing else) keeps a cell ≈ u steps: σ(log u) = u / (1 + u)
    keep = torch.sigmoid(torch.log(torch.tensor(59.0)))
    assert keep ** 59 > 0.3 > torch.sigmoid(torch.tensor(1.0)) ** 59
    rnn = nn.RNN(4, 8)
    init_recurrent(rnn, gate_bias="chrono", chrono_max=20)  # no gates: biases stay 0
    assert torch.all(rnn.bias_ih_l0 == 0)
    with pytest.raises(ValueError, match="chrono_max"):
        init_recurrent(nn.LSTM(4, 8), gate_bias="chrono", chrono_max=None)


def test_initialize_takes_chrono_span_from_the_input_length_and_text_classifiers_default_to_it():
    cfg = build_config({"init": {"gate_bias": "chrono"}})
    m = _net("lstm", "many_to_one", tokens=True)
    initialize(m, cfg.init, activation="tanh", data=torch.randint(1, V, (B, 40)))
    f = m.rnn.bias_ih_l0.chunk(4)[1]
    assert f.exp().max() <= 39 and f.exp().max() > 10
    initialize(m, build_config({"init": {"gate_bias": "chrono", "chrono_max": 5}}).init, activation="tanh",
               data=torch.randint(1, V, (B, 40)))
    assert m.rnn.bias_ih_l0.chunk(4)[1].exp().max() <= 4
    resolved = {src: task_for_config(c).resolve(c).init.gate_bias
                for src, c in ((s, build_config({"data": {"source": s}})) for s in ("seq:memory", "seq:reverse"))}
    assert resolved == {"seq:memory": "chrono", "seq:reverse": "one"}
