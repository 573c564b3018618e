"""Autoencoders and VAEs: shapes, the reparameterization gradient, save → load, and the ELBO's
bounds on real digits (trained VAE beats its init; ELBO ≤ IWAE bound; ELBO ≤ −Σ pixel entropies)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from nnrecipe.tasks.autoencoder import evaluate_autoencoder, interpolation_pairs, make_loss, pack_forward
from nnrecipe.metrics.generative import bernoulli_nll
from nnrecipe.models.autoencoder import build_autoencoder, conv_base_size, reparameterize


def _spec(name="vae", arch="mlp", **kw):
    return {"name": name, "arch": arch, "image_shape": [1, 8, 8], "latent_dim": 4, "hidden": [32, 16],
            "channels": [8, 16], **kw}


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("name", ["autoencoder", "vae"])
def test_shapes(name, arch):
    torch.manual_seed(0)
    model = build_autoencoder(_spec(name, arch))
    x = torch.rand(5, 1, 8, 8)
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape and mu.shape == (5, 4)
    assert (logvar is None) == (name == "autoencoder")
    assert model.variational == (name == "vae")
    images = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


def test_conv_needs_sides_divisible_by_two_per_stage():
    assert conv_base_size((1, 8, 8), 2) == (2, 2)
    assert conv_base_size((3, 32, 16), 3) == (4, 2)
    with pytest.raises(ValueError, match="divisible by 8"):
        conv_base_size((1, 8, 12), 3)


def test_reparameterization_gradient_reaches_mu_and_logvar():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.2, -0.4]], requires_grad=True)
    g = torch.Generator().manual_seed(3)
    z = reparameterize(mu, logvar, generator=g)
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(3))
    z.sum().backward()
    # z = μ + exp(½ log σ²) ε: ∂z/∂μ = 1, ∂z/∂log σ² = ½ exp(½ log σ²) ε
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_reparameterized_samples_have_the_posterior_moments():
    mu, logvar = torch.full((20000, 1), 2.0), torch.full((20000, 1), math.log(0.25))
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(2.0, abs=0.02)
    assert z.std().item() == pytest.approx(0.5, abs=0.02)


def test_save_load_gives_the_same_outputs():
    torch.manual_seed(0)
    model = build_autoencoder(_spec(arch="conv"))
    twin = build_autoencoder(_spec(arch="conv"))
    twin.load_state_dict(model.state_dict())
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(model.decode(model.encode(x)[0]), twin.decode(twin.encode(x)[0]))


def test_packed_loss_is_reconstruction_plus_beta_kl():
    torch.manual_seed(0)
    model = build_autoencoder(_spec())
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(1)
    out = pack_forward(model, x)
    torch.manual_seed(1)
    logits, mu, logvar = model(x)
    kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
    for beta in (0.0, 1.0, 4.0):
        expected = (bernoulli_nll(logits, x) + beta * kl).mean()
        torch.testing.assert_close(make_loss(variational=True, beta=beta, recon_loss="bce")(out, x), expected)


def _digits():
    X = torch.as_tensor(load_digits().data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    return X[:1400], X[1400:]


def _iwae_bound(model, x, k: int = 64) -> torch.Tensor:
    """log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x): a lower bound on log p(x), ≥ the ELBO."""
    from torch.distributions import Normal

    mu, logvar = model.encode(x)
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((k,))  # [K, B, d]
    log_px = -bernoulli_nll(model.decode(z.flatten(0, 1)), x.repeat(k, 1, 1, 1)).reshape(k, -1)
    log_w = log_px + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    return torch.logsumexp(log_w, 0) - math.log(k)


def test_trained_vae_beats_its_init_and_respects_the_bounds():
    torch.manual_seed(0)
    train, test = _digits()
    model = build_autoencoder(_spec(hidden=[64], latent_dim=4))
    before = evaluate_autoencoder(model, test, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = make_loss(variational=True, beta=1.0, recon_loss="bce")
    g = torch.Generator().manual_seed(0)
    for _ in range(12):
        for idx in torch.randperm(len(train), generator=g).split(64):
            x = train[idx]
            loss = loss_fn(pack_forward(model, x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = evaluate_autoencoder(model, test, seed=0)
    assert after["elbo"] > before["elbo"] + 10  # nats per image
    assert after["elbo"] == pytest.approx(-(after["reconstruction"] + after["kl"]))
    assert after["kl"] >= 0 and 0 <= after["active_units"] <= 4
    # cross-entropy ≥ entropy per pixel and KL ≥ 0: ELBO ≤ −Σ_pixels H(x)
    p = test.clamp(1e-7, 1 - 1e-7)
    entropy = -(test * p.log() + (1 - test) * (1 - p).log()).flatten(1).sum(1).mean().item()
    assert after["elbo"] <= -entropy
    with torch.no_grad():
        torch.manual_seed(1)
        iwae = _iwae_bound(model, test[:100]).mean().item()
        mu, logvar = model.encode(test[:100])
        elbo_100 = -(bernoulli_nll(model.decode(reparameterize(mu, logvar)), test[:100])
                     + (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1))).mean().item()
    assert iwae >= elbo_100  # log p(x) ≥ IWAE_K ≥ ELBO (in expectation; K = 64 leaves a wide margin)


def test_autoencoder_metrics_and_interpolation_pairs():
    torch.manual_seed(0)
    _, test = _digits()
    model = build_autoencoder(_spec("autoencoder"))
    m = evaluate_autoencoder(model, test[:50], seed=0)
    assert set(m) == {"reconstruction_bce", "reconstruction_mse", "n"}
    x = test[:50]
    with torch.no_grad():
        mse = (torch.sigmoid(model.decode(model.encode(x)[0])) - x).pow(2).mean().item()
    assert m["reconstruction_mse"] == pytest.approx(mse, rel=1e-5)

    class Data:
        X = {"test": test[:30]}
        y = {"test": np.array([i % 3 for i in range(30)])}

    pairs = interpolation_pairs(Data, count=4)
    assert len(pairs) == 3 and all(Data.y["test"][a] != Data.y["test"][b] for a, b in pairs)
