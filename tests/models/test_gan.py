"""GANs: the loss formulas by hand, shapes of the MLP and DCGAN-style nets, DCGAN init, and a few
epochs of training in which D(G(z)) moves."""

from __future__ import annotations

import math

import pytest
import torch

from nnrecipe.config import resolve_config
from nnrecipe.tasks.gan import COLUMNS, Snapshots, gan_trainer, snapshot_epochs
from nnrecipe.models.gan import build_gan, discriminator_loss, generator_loss, saturating_generator_loss
from nnrecipe.training.callbacks import History


def _spec(arch="mlp"):
    return {"name": "gan", "arch": arch, "image_shape": [1, 8, 8], "latent_dim": 8, "hidden": [32, 16],
            "channels": [64, 128]}


def test_non_saturating_generator_loss_is_minus_log_d_of_g():
    logits = torch.tensor([-6.0, -1.0, 0.0, 2.0])
    d = 1 / (1 + torch.exp(-logits))
    torch.testing.assert_close(generator_loss(logits), -torch.log(d).mean())
    torch.testing.assert_close(saturating_generator_loss(logits), torch.log(1 - d).mean())


def test_non_saturating_gradient_survives_a_confident_discriminator():
    # D rejects the sample (D(G(z)) ≈ 0.0025): the minimax loss's gradient σ(ℓ) nearly vanishes,
    # the non-saturating one's σ(ℓ) − 1 stays near −1
    logit = torch.tensor([-6.0], requires_grad=True)
    generator_loss(logit).backward()
    ns = logit.grad.item()
    logit.grad = None
    saturating_generator_loss(logit).backward()
    sat = logit.grad.item()
    sigma = 1 / (1 + math.exp(6.0))
    assert ns == pytest.approx(sigma - 1, rel=1e-5) and sat == pytest.approx(-sigma, rel=1e-5)
    assert abs(ns) > 100 * abs(sat)


def test_discriminator_loss_with_one_sided_label_smoothing():
    real, fake = torch.tensor([1.5, -0.5]), torch.tensor([0.3, -2.0])
    dr, df = torch.sigmoid(real), torch.sigmoid(fake)
    expected = -(0.9 * torch.log(dr) + 0.1 * torch.log(1 - dr)).mean() - torch.log(1 - df).mean()
    torch.testing.assert_close(discriminator_loss(real, fake), expected)
    plain = -torch.log(dr).mean() - torch.log(1 - df).mean()
    torch.testing.assert_close(discriminator_loss(real, fake, real_label=1.0, fake_label=0.0), plain)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_generator_and_discriminator_shapes(arch):
    torch.manual_seed(0)
    gan = build_gan(_spec(arch))
    images = gan(torch.randn(5, 8))
    assert images.shape == (5, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert gan.discriminator(images).shape == (5, 1)
    assert gan.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 8, 8)
    assert gan.training  # sample() restores the mode


def test_dcgan_generator_goes_through_2x2_and_4x4_and_is_dcgan_initialized():
    torch.manual_seed(0)
    gan = build_gan(_spec("conv"))
    shapes = []
    x = torch.randn(4, 8)
    for layer in gan.generator:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert (128, 2, 2) in shapes and (64, 4, 4) in shapes and shapes[-1] == (1, 8, 8)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in gan.generator)
    assert any(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2 for m in gan.discriminator)
    w = torch.cat([m.weight.flatten() for m in gan.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert w.std().item() == pytest.approx(0.02, rel=0.1) and abs(w.mean().item()) < 0.002


def test_save_load_gives_the_same_samples():
    torch.manual_seed(0)
    gan, twin = build_gan(_spec("conv")), build_gan(_spec("conv"))
    twin.load_state_dict(gan.state_dict())
    a = gan.sample(4, generator=torch.Generator().manual_seed(5))
    b = twin.sample(4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)


def test_a_few_epochs_move_d_of_g_and_log_every_column():
    torch.manual_seed(0)
    # "real" data: bright left half, dark right half, easy for D to tell from G's initial grey
    X = torch.zeros(256, 1, 8, 8)
    X[:, :, :, :4] = 0.9
    cfg = resolve_config(overrides=["model.name=gan", "train.epochs=4", "train.batch_size=32",
                                    "generative.latent_dim=8", "generative.hidden=[32,16]", "optimizer.lr=1e-3"])
    gan = build_gan(_spec())
    history, snapshots = History(), Snapshots(torch.randn(4, 8), epochs=[2, 4])
    history.columns = COLUMNS
    trainer = gan_trainer(gan, cfg, train_rows=len(X), callbacks=[history, snapshots], base_lr=1e-3)
    trainer.fit(X, X, None, None, epochs=4, batch_size=32, generator=torch.Generator().manual_seed(0))
    rows, snaps = history.rows, snapshots.images
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert all(set(COLUMNS) <= set(r) and all(math.isfinite(r[c]) for c in COLUMNS) for r in rows)
    assert sorted(snaps) == [2, 4] and snaps[4].shape == (4, 1, 8, 8)
    d_fake = [r["d_fake"] for r in rows]
    assert d_fake[-1] < d_fake[0] - 0.02  # D learns to reject G's samples: D(G(z)) moves down from ½
    assert rows[-1]["d_real"] > rows[-1]["d_fake"]
    assert all(0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1 for r in rows)
    # G moved toward the data: its samples' left half got brighter than the right half
    img = gan.sample(64, generator=torch.Generator().manual_seed(0))
    assert img[..., :4].mean() > img[..., 4:].mean()


def test_snapshot_epochs_are_evenly_spaced_and_include_the_last():
    assert snapshot_epochs(100, 4) == [1, 34, 67, 100]
    assert snapshot_epochs(3, 10) == [1, 2, 3]
    assert snapshot_epochs(10, 0) == []
