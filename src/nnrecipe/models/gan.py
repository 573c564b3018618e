"""Generative adversarial networks (Goodfellow et al. 2014) on images with pixels in [0, 1].

Minimax game  min_G max_D  E_x[log D(x)] + E_z[log(1 − D(G(z)))],  z ~ N(0, I).

- D minimizes BCE(D(x), r) + BCE(D(G(z)), f) with targets r = 0.9, f = 0 by default (one-sided
  label smoothing, Salimans et al. 2016: softening only the real targets keeps D from
  over-confident gradients without rewarding the generator's mistakes).
- G minimizes the NON-SATURATING loss −log D(G(z)) = softplus(−ℓ) instead of log(1 − D(G(z)))
  = −softplus(ℓ) (ℓ = D's logit): early on D rejects samples (ℓ ≪ 0), where the saturating loss's
  gradient σ(ℓ) vanishes but the non-saturating one's, σ(ℓ) − 1 ≈ −1, does not.

Families (`generative.arch`):
- ``mlp``:  G: z → [Linear → BatchNorm → ReLU] × len(hidden) (widths reversed) → Linear → sigmoid;
  D: flatten → [Linear → LeakyReLU(0.2)] × len(hidden) → Linear(1).
- ``conv`` (DCGAN, Radford et al. 2016): G: z → Linear(c·h·w) → BatchNorm → ReLU → reshape →
  [ConvTranspose 4×4 stride 2 → BatchNorm → ReLU] … → ConvTranspose → sigmoid (8×8 digits with
  channels (64, 128): z → 128·2·2 → 64·4·4 → 1·8·8); D: Conv 4×4 stride 2 → LeakyReLU(0.2), then
  [Conv 4×4 stride 2 → BatchNorm → LeakyReLU(0.2)] … → Linear(1). Weights N(0, 0.02²), BatchNorm
  scales N(1, 0.02²) (DCGAN's init).

G ends in a sigmoid because the data are in [0, 1] (DCGAN's tanh on [−1, 1] is the same map up to
an affine change). A spec is {"name": "gan", "arch", "image_shape", "latent_dim", "hidden",
"channels"}; `build_gan(spec)` rebuilds it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.models.autoencoder import conv_base_size, mlp_stack


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_label: float = 0.9,
                       fake_label: float = 0.0) -> torch.Tensor:
    """BCE(D(x), real_label) + BCE(D(G(z)), fake_label), each a batch mean."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, fake_label))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: mean −log D(G(z)) = mean softplus(−ℓ)."""
    return F.softplus(-fake_logits).mean()


def saturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss: mean log(1 − D(G(z))) = mean −softplus(ℓ) (for comparison)."""
    return -F.softplus(fake_logits).mean()


def _mlp_generator(shape, hidden, k: int) -> nn.Module:
    widths = [k, *reversed(hidden), math.prod(shape)]
    body = mlp_stack(widths[:-1], final_activation=True, norm=True)
    return nn.Sequential(*body, nn.Linear(widths[-2], widths[-1]), nn.Sigmoid(), nn.Unflatten(1, tuple(shape)))


def _mlp_discriminator(shape, hidden) -> nn.Module:
    widths = [math.prod(shape), *hidden]
    return nn.Sequential(nn.Flatten(), *mlp_stack(widths, final_activation=True, act=lambda: nn.LeakyReLU(0.2)),
                         nn.Linear(widths[-1], 1))


def _conv_generator(shape, channels, k: int) -> nn.Module:
    h, w = conv_base_size(shape, len(channels))
    widths = [*reversed(channels), shape[0]]
    layers: list[nn.Module] = [nn.Linear(k, widths[0] * h * w), nn.BatchNorm1d(widths[0] * h * w), nn.ReLU(),
                               nn.Unflatten(1, (widths[0], h, w))]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))
        layers += [nn.BatchNorm2d(b), nn.ReLU()] if i < len(widths) - 2 else [nn.Sigmoid()]
    return nn.Sequential(*layers)


def _conv_discriminator(shape, channels) -> nn.Module:
    h, w = conv_base_size(shape, len(channels))
    layers: list[nn.Module] = []
    width = shape[0]
    for i, c in enumerate(channels):
        layers.append(nn.Conv2d(width, c, 4, stride=2, padding=1))
        if i > 0:  # DCGAN: no BatchNorm on D's input layer
            layers.append(nn.BatchNorm2d(c))
        layers.append(nn.LeakyReLU(0.2))
        width = c
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * h * w, 1))


def dcgan_init(module: nn.Module) -> None:
    """Conv/linear weights N(0, 0.02²), biases 0; BatchNorm scales N(1, 0.02²), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class GAN(nn.Module):
    """A generator and a discriminator kept in one module (one state dict, one model file)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, *, latent_dim: int):
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): images in [0, 1]."""
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images G(z), z ~ N(0, I), with G in eval mode (BatchNorm running statistics)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        images = self.generator(torch.randn(n, self.latent_dim, generator=generator).to(device))
        self.train(was_training)
        return images


def build_gan(spec: dict) -> GAN:
    k, shape = spec["latent_dim"], tuple(spec["image_shape"])
    if spec["arch"] == "conv":
        g, d = _conv_generator(shape, spec["channels"], k), _conv_discriminator(shape, spec["channels"])
    else:
        g, d = _mlp_generator(shape, spec["hidden"], k), _mlp_discriminator(shape, spec["hidden"])
    model = GAN(g, d, latent_dim=k)
    dcgan_init(model)
    return model


BUILDERS = {"gan": build_gan}
