"""MetaInit and GradInit: the gradient quotient against its formula on an explicit Hessian, each
method's objective going down with the weights' directions kept, and the fit / CLI paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.training.learned_init import gradient_quotient, gradinit, metainit, weight_tensors


def _data(n=128, d=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()  # a learnable rule over `classes` = 3
    return [(X[i:i + 32], y[i:i + 32]) for i in range(0, n, 32)]


def _deep(depth=6, width=16, std=0.05, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(depth):
        layers += [nn.Linear(6 if i == 0 else width, width), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(width, 3))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)  # too small: the signal shrinks layer by layer
            nn.init.zeros_(m.bias)
    return model


def test_gradient_quotient_matches_the_formula_with_the_explicit_hessian():
    torch.manual_seed(0)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    X, y = torch.randn(20, 5, dtype=torch.float64), torch.randn(20, dtype=torch.float64)

    def loss_of(v):
        return ((torch.tanh(X @ v) - y) ** 2).mean()
    gq = gradient_quotient(loss_of(w), [w], eps=1e-5)
    g = torch.autograd.grad(loss_of(w), w)[0]
    H = torch.autograd.functional.hessian(loss_of, w.detach())
    by_hand = ((g - H @ g) / (g + 1e-5 * torch.sign(g)) - 1).abs().mean()
    assert float(gq) == pytest.approx(float(by_hand), rel=1e-10)


def test_metainit_lowers_the_gradient_quotient_and_keeps_each_direction():
    model, batches = _deep(), _data()
    directions = {n: p.detach() / p.detach().norm() for n, p in weight_tensors(model)}
    report = metainit(model, batches, F.cross_entropy, steps=40)
    assert report["after"] < report["before"]
    assert set(report["scales"]) == set(directions)
    for name, p in weight_tensors(model):
        torch.testing.assert_close(p.detach() / p.detach().norm(), directions[name])
        assert p.detach().norm() / 1 > 0
    hidden = [v for k, v in report["scales"].items() if k != "12.weight"]
    assert min(hidden) > 1  # a too-small draw is scaled up


@pytest.mark.parametrize("adam_step", [True, False])
def test_gradinit_lowers_the_one_step_loss_and_respects_the_scale_floor(adam_step):
    model, batches = _deep(std=0.3), _data(n=32) * 2  # one batch twice: the objective is deterministic
    directions = {n: p.detach() / p.detach().norm() for n, p in weight_tensors(model)}
    # SGD's one-step loss falls by growing the gradient 40×, past the default bound: unbound it here
    report = gradinit(model, batches, F.cross_entropy, steps=60, step_lr=0.1, adam_step=adam_step, lr=0.05,
                      gamma=None if adam_step else 1e9)
    assert report["after"] < report["before"] - 0.05
    assert all(v >= 0.01 for v in report["scales"].values())
    for name, p in weight_tensors(model):
        torch.testing.assert_close(p.detach() / p.detach().norm(), directions[name])
    tight = _deep(std=0.3)
    bounded = gradinit(tight, batches, F.cross_entropy, steps=30, step_lr=1e-2, adam_step=False, lr=0.05,
                       gamma=1e-6)  # the bound is always violated: every step shrinks ‖g‖₂, so α shrinks
    assert bounded["gamma"] == 1e-6 and max(bounded["scales"].values()) < 1


def test_fit_records_the_learned_init_and_refuses_it_where_it_cannot_run(tmp_path, capsys):
    run = nnrecipe.fit("iris", epochs=2, out=tmp_path / "mi",
                       overrides=["init.name=metainit", "init.base=normal", "init.learn_steps=5"])
    init = run.metrics["init"]
    assert init["method"] == "metainit" and init["steps"] == 5 and len(init["scales"]) == 3  # 2 hidden + head
    code = main(["fit", "--data", "seq:memory", "--model", "lstm", "--set", "init.name=gradinit",
                 "--out", str(tmp_path / "seq")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: init.name gradinit") and not (tmp_path / "seq").exists()
    code = main(["fit", "--data", "iris", "--set", "init.name=metainit", "--set", "init.base=lsuv",
                 "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "init.base" in err and not (tmp_path / "bad").exists()


class Users(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_a_users_own_module_keeps_its_draw_and_gets_learned_scales(tmp_path):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(120, 4, generator=g), torch.randint(0, 3, (120,), generator=g)
    run = nnrecipe.fit((X, y), model=Users(), epochs=1, out=tmp_path / "user",
                       overrides=["init.name=gradinit", "init.base=keep", "init.learn_steps=5"])
    assert set(run.metrics["init"]["scales"]) == {"a.weight", "b.weight"}
