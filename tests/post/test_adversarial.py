"""FGSM, PGD, robust accuracy, unit conversion and the adversarial-training hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from nnrecipe.data.transform import InputTransform
from nnrecipe.errors import UserError
from nnrecipe.post.adversarial import (AdversarialAugmenter, eval_mode, fgsm, model_units, pgd,
                                       robust_accuracy)


def _linear(d: int = 5, classes: int = 2) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(d, classes)


def test_fgsm_on_a_binary_linear_model_moves_along_sign_of_w():
    # Logits z = Wx + b with two classes: ∇ₓCE = (p₁ − [y=1])(w₁ − w₀), and p₁ − [y=1] is < 0 for
    # y = 1, > 0 for y = 0, so FGSM moves by ε·sign(w₁ − w₀) away from the true class.
    model = _linear()
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 0, 1, 1, 0])
    w = model.weight[1] - model.weight[0]
    direction = torch.where(y == 1, -1.0, 1.0).unsqueeze(1) * w.sign()
    assert torch.equal(fgsm(model, x, y, 0.3), x + 0.3 * direction)


def test_fgsm_on_a_multiclass_linear_model_matches_the_hand_gradient():
    model = _linear(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        p = torch.softmax(model(x), dim=1)
        grad = (p - F.one_hot(y, 3).float()) @ model.weight  # ∇ₓCE = Wᵀ(p − e_y), by hand
    eps = torch.tensor([0.1, 0.2, 0.3, 0.4])  # per-feature ε
    lower, upper = torch.full((4,), -0.5), torch.full((4,), 0.5)
    expected = torch.clamp(x + eps * grad.sign(), -0.5, 0.5)
    assert torch.equal(fgsm(model, x, y, eps, lower=lower, upper=upper), expected)


def test_pgd_stays_in_the_ball_and_the_valid_range():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.rand(32, 6), torch.randint(0, 3, (32,))
    eps = torch.tensor([0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
    adv = pgd(model, x, y, eps, steps=7, lower=torch.zeros(6), upper=torch.ones(6),
              generator=torch.Generator().manual_seed(0))
    assert ((adv - x).abs() <= eps + 1e-6).all()
    assert (adv >= 0).all() and (adv <= 1).all()
    assert (adv != x).any()
    loss = lambda z: F.cross_entropy(model(z), y).item()  # noqa: E731
    assert loss(adv) > loss(x)


def test_the_attack_leaves_modes_and_parameter_gradients_alone():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.train()
    model[1].eval()  # a frozen norm kept in eval mode by the training loop
    running = model[1].running_mean.clone()
    x, y = torch.randn(10, 4), torch.randint(0, 2, (10,))
    a = pgd(model, x, y, 0.1, steps=3, generator=torch.Generator().manual_seed(0))
    b = pgd(model, x, y, 0.1, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)  # eval mode inside: no dropout noise, deterministic given the seed
    assert [m.training for m in model] == [True, False, True, True]
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model[1].running_mean, running)


def test_eval_mode_restores_modes_after_an_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    with pytest.raises(RuntimeError), eval_mode(model):
        assert not model.training
        raise RuntimeError
    assert model.training and model[1].training


def test_model_units_divide_by_the_stored_std():
    X = np.array([[0.0, 2.0, 5.0], [4.0, 6.0, 5.0], [8.0, 10.0, 5.0]])
    t = InputTransform.fit(X, image_shape=None)  # σ = (3.266, 3.266, 0): column 3 is constant
    u = model_units(t, eps=1.0, step_size=0.5, raw_range=(0.0, 16.0))
    std = X.std(axis=0)
    np.testing.assert_allclose(u["eps"].numpy(), [1 / std[0], 1 / std[1], 1.0], rtol=1e-6)
    np.testing.assert_allclose(u["step_size"].numpy(), [0.5 / std[0], 0.5 / std[1], 0.5], rtol=1e-6)
    np.testing.assert_allclose(u["lower"].numpy(), [(0 - 4) / std[0], (0 - 6) / std[1], 0 - 5.0], rtol=1e-6)
    np.testing.assert_allclose(u["upper"].numpy(), [(16 - 4) / std[0], (16 - 6) / std[1], 16 - 5.0], rtol=1e-6)
    images = InputTransform.fit(np.arange(2 * 2 * 4, dtype=float).reshape(2, 8), image_shape=(2, 2, 2))
    u = model_units(images, eps=2.0)
    assert u["eps"].shape == (2, 1, 1) and u["lower"] is None and u["upper"] is None
    np.testing.assert_allclose(u["eps"].flatten().numpy(), 2.0 / images.channel.std, rtol=1e-6)
    with pytest.raises(UserError, match="whitens"):
        model_units(InputTransform.fit(X[:, :2], image_shape=None, whiten="zca"), eps=1.0)


def test_adversarial_augmenter_attacks_after_the_base_augmenter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)).train()
    units = {"eps": torch.tensor(0.2), "step_size": None, "lower": None, "upper": None}
    shift = lambda x, y, g: (x + 1.0, y)  # noqa: E731 - a stand-in image augmenter
    hook = AdversarialAugmenter(model, method="pgd", units=units, steps=3, base=shift)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    adv, target = hook(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(target, y) and model.training
    assert ((adv - (x + 1.0)).abs() <= 0.2 + 1e-6).all() and (adv != x + 1.0).any()


@pytest.fixture(scope="module")
def digits_model():
    """A small MLP trained on standardized digits (plain torch, a couple of seconds)."""
    X, y = load_digits(return_X_y=True)
    t = InputTransform.fit(X[:1400], image_shape=None)
    Z = torch.as_tensor(t.apply(X), dtype=torch.float32)
    y = torch.as_tensor(y)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        idx = torch.randint(0, 1400, (64,))
        opt.zero_grad()
        F.cross_entropy(model(Z[idx]), y[idx]).backward()
        opt.step()
    return model.eval(), t, Z[1400:], y[1400:]


def test_pgd_is_at_least_as_strong_as_fgsm_on_trained_digits(digits_model):
    model, t, Z, y = digits_model
    clean = robust_accuracy(model, Z, y, 0.0)
    assert clean > 0.9
    for eps in (0.25, 0.5):
        u = model_units(t, eps=eps, raw_range=(0.0, 16.0))
        kw = {"lower": u["lower"], "upper": u["upper"]}
        acc_fgsm = robust_accuracy(model, Z, y, u["eps"], method="fgsm", **kw)
        acc_pgd = robust_accuracy(model, Z, y, u["eps"], method="pgd", steps=10, **kw,
                                  generator=torch.Generator().manual_seed(0))
        assert acc_pgd <= acc_fgsm < clean
