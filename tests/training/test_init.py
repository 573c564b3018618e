"""Initializers against their formulas (written out here), and the behaviour each one is for."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnrecipe.config import InitConfig
from nnrecipe.errors import UserError
from nnrecipe.models.mlp import MLP
from nnrecipe.training.init import HEAD_GAIN, INITIALIZERS, initialize, zero_init_residual_branches
from nnrecipe.config import build_config

N_IN, N_OUT = 1000, 1000
REL = 0.03  # empirical std of 10⁶ draws is within ~0.1% of σ; 3% leaves room


def _weight(name: str, *, activation: str = "relu", n_out: int = N_OUT, n_in: int = N_IN, **cfg) -> torch.Tensor:
    torch.manual_seed(0)
    layer = nn.Linear(n_in, n_out)
    initialize(layer, InitConfig(name=name, **cfg), activation=activation)
    return layer.weight.detach()


def _close(actual: float, expected: float, rel: float = REL) -> bool:
    return abs(actual - expected) <= rel * expected


def _uniform_bound_ok(w: torch.Tensor, bound: float) -> bool:
    """U(±a): every |w| ≤ a, the extremes reach ≈ a, and std = a/√3."""
    top = float(w.abs().max())
    return 0.99 * bound < top <= bound and _close(float(w.std()), bound / math.sqrt(3))


# --- each initializer's statistics --------------------------------------------------------------

@pytest.mark.parametrize("activation, gain", [("tanh", 5 / 3), ("relu", math.sqrt(2)), ("sigmoid", 1.0)])
def test_xavier_uniform_bound(activation, gain):
    w = _weight("xavier_uniform", activation=activation)
    assert _uniform_bound_ok(w, gain * math.sqrt(6 / (N_IN + N_OUT)))


def test_xavier_explicit_gain_wins():
    w = _weight("xavier_uniform", activation="relu", gain=0.5)
    assert _uniform_bound_ok(w, 0.5 * math.sqrt(6 / (N_IN + N_OUT)))


def test_xavier_normal_std():
    w = _weight("xavier_normal", activation="tanh")
    assert _close(float(w.std()), 5 / 3 * math.sqrt(2 / (N_IN + N_OUT)))
    assert abs(float(w.mean())) < 1e-3


@pytest.mark.parametrize("activation, slope", [("relu", 0.0), ("relu6", 0.0), ("gelu", 0.0), ("leaky_relu", 0.2)])
def test_kaiming_normal_fan_in(activation, slope):
    torch.manual_seed(0)
    layer = nn.Linear(500, 1000)  # n_in = 500, n_out = 1000
    initialize(layer, InitConfig(name="kaiming_normal"), activation=activation, negative_slope=slope)
    assert _close(float(layer.weight.detach().std()), math.sqrt(2 / ((1 + slope**2) * 500)))


def test_kaiming_normal_fan_out():
    w = _weight("kaiming_normal", n_out=1000, n_in=500, mode="fan_out")
    assert _close(float(w.std()), math.sqrt(2 / 1000))


def test_kaiming_uniform_bound():
    w = _weight("kaiming_uniform")
    assert _uniform_bound_ok(w, math.sqrt(3) * math.sqrt(2 / N_IN))  # U(±√(6/n_in))


def test_kaiming_on_conv_uses_receptive_field():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 256, kernel_size=3)  # n_in = 64·3·3
    initialize(conv, InitConfig(name="kaiming_normal"), activation="relu")
    assert _close(float(conv.weight.detach().std()), math.sqrt(2 / (64 * 9)))


def test_normal_std():
    w = _weight("normal", std=0.05)
    assert _close(float(w.std()), 0.05)
    assert abs(float(w.mean())) < 1e-3


def test_zeros():
    assert float(_weight("zeros").abs().max()) == 0.0


@pytest.mark.parametrize("shape", [(256, 256), (300, 200), (200, 300)])
def test_orthogonal(shape):
    w = _weight("orthogonal", n_out=shape[0], n_in=shape[1], gain=1.0).double()
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T  # the smaller Gram matrix is the identity
    assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)


def test_orthogonal_default_gain_from_activation():
    w = _weight("orthogonal", n_out=128, n_in=128, activation="tanh").double()
    assert torch.allclose(w.T @ w, (5 / 3) ** 2 * torch.eye(128, dtype=torch.float64), atol=1e-5)


# --- auto: the statistics of the choice, and the head rule ----------------------------------------

def _auto_net(activation: str, slope: float = 0.01) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(N_IN, N_OUT), nn.Identity(), nn.Linear(N_OUT, 10))
    initialize(net, InitConfig(name="auto"), activation=activation, negative_slope=slope)
    return net


@pytest.mark.parametrize("activation, slope", [("relu", 0.0), ("gelu", 0.0), ("relu6", 0.0), ("leaky_relu", 0.3)])
def test_auto_relu_family_is_kaiming_normal(activation, slope):
    w = _auto_net(activation, slope)[0].weight.detach()
    std = math.sqrt(2 / ((1 + slope**2) * N_IN))
    assert _close(float(w.std()), std)
    # Gaussian, not uniform: the tails pass the uniform bound √3·σ (excess kurtosis ≈ 0, not −1.2).
    assert float(w.abs().max()) > 1.5 * math.sqrt(3) * std
    z = w / w.std()
    assert abs(float((z**4).mean()) - 3.0) < 0.1


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_auto_tanh_sigmoid_is_xavier_uniform_gain_1(activation):
    w = _auto_net(activation)[0].weight.detach()
    assert _uniform_bound_ok(w, math.sqrt(6 / (N_IN + N_OUT)))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_auto_head_is_small_xavier_uniform(activation):
    head = _auto_net(activation)[2].weight.detach()
    bound = HEAD_GAIN * math.sqrt(6 / (N_OUT + 10))
    assert float(head.abs().max()) <= bound
    assert _close(float(head.std()), bound / math.sqrt(3), rel=0.05)  # 10⁴ draws


def test_auto_head_logits_small_and_loss_near_log_classes():
    torch.manual_seed(0)
    model = MLP(20, 10, hidden=(256, 256), activation="relu")
    initialize(model, InitConfig(name="auto"), activation="relu")
    x, y = torch.randn(4096, 20), torch.randint(0, 10, (4096,))
    with torch.no_grad():
        h = model.body(x)
        logits = model.head(h)
    # Var(logit) = n_in · Var(W) · E[h²] with Var(W) = a²/3 = g²·2/(n_in + n_out), g = HEAD_GAIN.
    expected_var = HEAD_GAIN**2 * 256 * 2 / (256 + 10) * float((h**2).mean())
    assert _close(float(logits.var()), expected_var, rel=0.1)
    loss = nn.functional.cross_entropy(logits, y).item()
    assert abs(loss - math.log(10)) < 0.05  # ln C plus ≈ Var(logit)/2 ≈ 0.01


# --- biases, norms, recurrent layers --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(set(INITIALIZERS) - {"torch"}))  # torch: its own biases (tested below)
def test_biases_zero_and_norms_identity(name):
    torch.manual_seed(0)
    model = MLP(8, 3, hidden=(16, 16), activation="relu", norm="layer")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    initialize(model, InitConfig(name=name), activation="relu", data=torch.randn(64, 8))
    for module in model.modules():
        if isinstance(module, nn.Linear):
            assert torch.all(module.bias == 0)
        if isinstance(module, nn.LayerNorm):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def test_recurrent_recipe():
    torch.manual_seed(0)
    lstm, gru = nn.LSTM(10, 32, num_layers=2), nn.GRU(10, 32)
    model = nn.ModuleList([lstm, gru])
    initialize(model, InitConfig(name="normal"), activation="tanh")
    eye = torch.eye(32)
    for rnn, gates in ((lstm, 4), (gru, 3)):
        for name, p in rnn.named_parameters():
            p = p.detach()
            if name.startswith("weight_hh"):
                for block in p.chunk(gates):
                    assert torch.allclose(block.T @ block, eye, atol=1e-5)
            elif name.startswith("weight_ih"):
                bound = math.sqrt(6 / (p.shape[0] + p.shape[1]))
                assert float(p.abs().max()) <= bound and float(p.std()) > 0.5 * bound / math.sqrt(3)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            i, f, g, o = p.detach().chunk(4)
            assert torch.all(f == 1) and torch.all(i == 0) and torch.all(g == 0) and torch.all(o == 0)
        elif name.startswith("bias_hh"):
            assert torch.all(p == 0)
    assert all(torch.all(p == 0) for n, p in gru.named_parameters() if n.startswith("bias"))


# --- residual blocks start as the identity --------------------------------------------------------

class ResidualBlock(nn.Module):
    def __init__(self, width: int, *, last: str):
        super().__init__()
        self.fc1, self.fc2, self.norm = nn.Linear(width, width), nn.Linear(width, width), nn.BatchNorm1d(width)
        self.residual_last = self.norm if last == "norm" else self.fc2

    def forward(self, x):
        h = self.fc2(torch.relu(self.fc1(x)))
        return x + (self.norm(h) if self.residual_last is self.norm else h)


@pytest.mark.parametrize("last", ["norm", "linear"])
def test_zero_init_residual_makes_blocks_identity(last):
    torch.manual_seed(0)
    model = nn.Sequential(ResidualBlock(16, last=last), ResidualBlock(16, last=last))
    x = torch.randn(32, 16)
    initialize(model, InitConfig(name="kaiming_normal"), activation="relu")
    assert torch.allclose(model(x), x)
    initialize(model, InitConfig(name="kaiming_normal", zero_init_residual=False), activation="relu")
    assert not torch.allclose(model(x), x)
    assert zero_init_residual_branches(model) == 2
    assert torch.allclose(model(x), x)


# --- why initialization matters -------------------------------------------------------------------

def test_zeros_keeps_hidden_units_identical_random_breaks_symmetry():
    # Sigmoid, so zero pre-activations still give σ(0) = ½ and gradients flow; with ReLU or tanh an
    # all-zero net outputs 0 everywhere and its hidden weights get no gradient at all.
    def train(name: str) -> tuple[MLP, float]:
        torch.manual_seed(0)
        model = MLP(6, 1, hidden=(8, 8), activation="sigmoid")
        initialize(model, InitConfig(name=name), activation="sigmoid")
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(64, 6) + 1.0
        y = x.sum(1, keepdim=True)
        for _ in range(100):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        return model, loss.item()

    model, zeros_loss = train("zeros")
    for layer in (m for m in model.body if isinstance(m, nn.Linear)):
        w = layer.weight.detach()
        assert float(w.abs().max()) > 0.1  # the weights did move ...
        assert torch.allclose(w, w[0].expand_as(w), atol=1e-6)  # ... but every unit's row is the same
    model, random_loss = train("xavier_uniform")
    for layer in (m for m in model.body if isinstance(m, nn.Linear)):
        w = layer.weight.detach()
        assert float((w - w[0]).abs().max()) > 0.1
    assert random_loss < 0.5 * zeros_loss  # 8 identical units are worth one


def _deep_output_std(name: str, activation: str, **cfg) -> tuple[float, float]:
    torch.manual_seed(0)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    net = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(512, 512), act())])
    initialize(net, InitConfig(name=name, **cfg), activation=activation)
    x = torch.randn(1000, 512)
    with torch.no_grad():
        return float(x.std()), float(net(x).std())


@pytest.mark.parametrize("name, activation", [("kaiming_normal", "relu"), ("xavier_uniform", "tanh")])
def test_variance_preserved_through_10_layers(name, activation):
    x_std, y_std = _deep_output_std(name, activation)
    assert x_std / 2 < y_std < 2 * x_std


def test_small_fixed_normal_collapses_with_tanh():
    x_std, y_std = _deep_output_std("normal", "tanh", std=0.01)
    assert y_std < 1e-3 * x_std


def test_lsuv_unit_variance_per_layer():
    torch.manual_seed(0)
    model = MLP(20, 5, hidden=(64, 64, 64), activation="tanh", norm="none")
    data = 3.0 * torch.randn(256, 20) + 1.0
    cfg = InitConfig(name="lsuv", lsuv_tol=0.05)
    initialize(model, cfg, activation="tanh", data=data)
    outputs = []
    hooks = [m.register_forward_hook(lambda mod, i, o: outputs.append(o)) for m in model.modules()
             if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model.eval()(data)
    for h in hooks:
        h.remove()
    assert len(outputs) == 4
    for out in outputs:
        assert abs(float(out.var()) - 1.0) < cfg.lsuv_tol


def test_lsuv_needs_data():
    with pytest.raises(ValueError, match="data"):
        initialize(MLP(4, 2, hidden=(8,)), InitConfig(name="lsuv"), activation="relu")


def test_unknown_name_suggests_closest():
    with pytest.raises(UserError, match="kaiming_normal"):
        initialize(MLP(4, 2, hidden=(8,)), InitConfig(name="kaiming_norml"), activation="relu")


def test_torch_init_is_each_layers_own_reset_parameters():
    """``torch``: W, b ~ U(±1/√n_in) (nn.Linear/Conv's reset_parameters), the head included."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 200), nn.ReLU(), nn.Linear(200, 7))
    initialize(model, build_config({"init": {"name": "torch"}}).init, activation="relu")
    for layer, n_in in ((model[0], 300), (model[2], 200)):
        bound = 1 / math.sqrt(n_in)
        for p in (layer.weight, layer.bias):
            assert p.abs().max() <= bound and p.abs().max() > 0.9 * bound  # uniform over the whole range
        assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.1 * bound


def test_torch_init_resets_recurrent_layers_too_without_the_gate_bias_rule():
    """``torch`` on a GRU/LSTM: every weight and bias ~ U(±1/√H) (their reset_parameters), not the
    orthogonal/Xavier/zero-bias recurrent init, whatever ``init.gate_bias`` says."""
    torch.manual_seed(0)
    for rnn in (nn.GRU(40, 64, bidirectional=True), nn.LSTM(40, 64)):
        initialize(rnn, build_config({"init": {"name": "torch", "gate_bias": "chrono"}}).init, activation="tanh")
        bound = 1 / math.sqrt(64)
        for name, p in rnn.named_parameters():
            assert p.abs().max() <= bound and p.abs().max() > 0.9 * bound, name
            assert abs(p.std().item() - bound / math.sqrt(3)) < 0.15 * bound, name
