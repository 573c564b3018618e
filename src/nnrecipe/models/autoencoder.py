"""Autoencoders and variational autoencoders on images with pixels in [0, 1].

    autoencoder:  z = enc(x),                       x̂ = sigmoid(dec(z))
    vae:          (μ, log σ²) = enc(x),  z = μ + σ ⊙ ε,  ε ~ N(0, I)   (reparameterization trick,
                  Kingma & Welling 2014: the sample is a differentiable function of μ and σ),
                  prior p(z) = N(0, I), p(x|z) = Bernoulli(sigmoid(dec(z))) per pixel.

The decoder returns logits; the losses (`nnrecipe.metrics.generative`) take logits so that
saturated pixels stay finite, and images are sigmoid(logits).

Families (`generative.arch`):
- ``mlp``:  flatten → [Linear → ReLU] × len(hidden) → Linear(k or 2k); the decoder mirrors it.
- ``conv``: [Conv 4×4 stride 2 → ReLU] per width in ``channels`` (each halves H and W, so H and W
  must be divisible by 2^stages: 8×8 digits → 2×2 with two stages) → Linear(k or 2k); the decoder
  is Linear → reshape → [ConvTranspose 4×4 stride 2] per stage, widths reversed (DCGAN's shapes).

A spec (the ``architecture`` block of model.json) is {"name": "autoencoder" | "vae", "arch",
"image_shape": [C, H, W], "latent_dim", "hidden", "channels"}; `build_autoencoder(spec)` rebuilds it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + exp(½ log σ²) ⊙ ε with ε ~ N(0, I): gradients reach μ and log σ², not ε."""
    if generator is None:
        eps = torch.randn_like(mu)
    else:  # a seeded CPU generator: draw on the CPU, then move (works for any device)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def conv_base_size(image_shape: tuple[int, int, int], stages: int) -> tuple[int, int]:
    """(H, W) after `stages` stride-2 convolutions; ValueError unless H and W divide by 2^stages."""
    _, h, w = image_shape
    f = 2 ** stages
    if h % f or w % f:
        raise ValueError(f"a conv with {stages} stride-2 stages needs H and W divisible by {f}, got {h}×{w}")
    return h // f, w // f


def mlp_stack(widths: list[int], *, final_activation: bool = False, act=nn.ReLU,
              norm: bool = False) -> list[nn.Module]:
    """Linear layers through `widths`, an activation (and optional BatchNorm) between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or final_activation:
            if norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(act())
    return layers


def mlp_encoder(image_shape, hidden, out: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), *mlp_stack([math.prod(image_shape), *hidden, out]))


def mlp_decoder(image_shape, hidden, latent_dim: int) -> nn.Module:
    widths = [latent_dim, *reversed(hidden), math.prod(image_shape)]
    return nn.Sequential(*mlp_stack(widths), nn.Unflatten(1, tuple(image_shape)))


def conv_encoder(image_shape, channels, out: int) -> nn.Module:
    h, w = conv_base_size(image_shape, len(channels))
    layers: list[nn.Module] = []
    width = image_shape[0]
    for c in channels:
        layers += [nn.Conv2d(width, c, 4, stride=2, padding=1), nn.ReLU()]
        width = c
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * h * w, out))


def conv_decoder(image_shape, channels, latent_dim: int) -> nn.Module:
    h, w = conv_base_size(image_shape, len(channels))
    widths = [*reversed(channels), image_shape[0]]
    layers: list[nn.Module] = [nn.Linear(latent_dim, widths[0] * h * w), nn.ReLU(),
                               nn.Unflatten(1, (widths[0], h, w))]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))  # doubles H and W
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    """Encoder → z → decoder logits; ``variational`` makes the encoder emit (μ, log σ²)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, latent_dim: int, variational: bool):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.variational = latent_dim, variational

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(μ, log σ²) for a VAE, (z, None) for an autoencoder."""
        h = self.encoder(x)
        if self.variational:
            mu, logvar = h.chunk(2, dim=-1)
            return mu, logvar
        return h, None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits [B, C, H, W]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor):
        """(logits, μ, log σ²): a VAE decodes a sample z ~ q(z|x) (also in eval mode, so a
        validation ELBO is the same estimator); an autoencoder decodes z = μ (log σ² is None)."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.variational else mu
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images from the prior: sigmoid(dec(z)), z ~ N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return torch.sigmoid(self.decode(z))


def build_autoencoder(spec: dict) -> AutoEncoder:
    variational = spec["name"] == "vae"
    k, shape = spec["latent_dim"], tuple(spec["image_shape"])
    out = 2 * k if variational else k
    if spec["arch"] == "conv":
        encoder, decoder = conv_encoder(shape, spec["channels"], out), conv_decoder(shape, spec["channels"], k)
    else:
        encoder, decoder = mlp_encoder(shape, spec["hidden"], out), mlp_decoder(shape, spec["hidden"], k)
    return AutoEncoder(encoder, decoder, latent_dim=k, variational=variational)


BUILDERS = {"autoencoder": build_autoencoder, "vae": build_autoencoder}
