"""Batched image augmentation for training batches: `Augmenter(cfg, num_classes=...)(x, y, generator)`.

Input x is [B, C, H, W], already normalized per channel (≈ zero mean, unit std), so 0 is the
channel mean: padding, rotation corners and erased boxes are filled with 0 (the "mean" fill of
Cutout / Random Erasing). Every op draws one small parameter tensor per batch on the CPU from the
caller's ``torch.Generator`` (reproducible runs), moves it to x's device and acts on the whole
batch at once: there is no Python loop over images. Applied in this order:

1. Geometric
   - horizontal flip: x ← flip_W(x) where m_b ~ Bernoulli(½), via ``torch.where``.
   - random crop with padding p: zero-pad by p, crop H×W at a per-image integer offset in
     [0, 2p]² - a shift by (dy, dx) ∈ [−p, p]². Done by gathering with integer indices, so the
     kept pixels are copied exactly (no interpolation).
   - random resized crop (area fraction s ~ U(s_min, 1), aspect r log-uniform in [¾, 4/3];
     box w = W·√(s·r), h = H·√(s/r), each ≤ the image, placed uniformly inside it) and rotation
     θ ~ U(−θ_max, θ_max), composed into one affine map per image and sampled once with
     ``affine_grid`` + bilinear ``grid_sample`` (zero fill) - one interpolation, not two. In the
     [−1, 1] coordinates of ``affine_grid`` the map is  p_in = D⁻¹·R(θ)·D·S·p_out + t,
     D = diag(W, H)/2 (rotation in pixel units, so non-square images are not sheared),
     S = diag(w/W, h/H), t = the box centre.
   Bilinear weights are convex and the fill is 0, so no output leaves [min(x, 0), max(x, 0)].
2. Colour jitter (in units of the channel std): brightness x ← x + β_b, β_b ~ b·U(−1, 1);
   contrast x ← (x − x̄_b)·γ_b + x̄_b, γ_b ~ U(1 − c, 1 + c), x̄_b the image's mean; then each
   channel is clamped to the batch input's [min, max] for that channel so values stay in the
   data's range.
3. Erasing (Random Erasing, Zhong et al. 2017; Cutout, DeVries & Taylor 2017): with probability
   p_e per image a box of area fraction U(min(0.02, s_e), s_e) and aspect log-uniform in
   [0.3, 1/0.3], clipped to the image and placed uniformly, is set to 0 (the mean fill; Zhong et
   al. also try random values).
4. Mixing, on a batch with probability ``mix_prob`` (one of the two per batch, each with
   probability ½ when both are on), with λ ~ Beta(α, α) and a random permutation π of the batch:
   - mixup (Zhang et al. 2018): x ← λ·x + (1 − λ)·x_π.
   - cutmix (Yun et al. 2019): one box of size ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ centred at a uniform
     pixel, clipped to the image, is pasted from x_π; λ is then recomputed as the exact kept
     fraction 1 − (box area)/(H·W).
   The target becomes the soft labels λ·onehot(y) + (1 − λ)·onehot(y_π), so cross-entropy with
   probability targets equals λ·CE(y) + (1 − λ)·CE(y_π) exactly. λ and π are kept in
   ``last_lambda`` / ``last_perm`` (None when the batch was not mixed).

λ is drawn by NumPy's Beta sampler seeded from the torch generator, since torch's Beta
distribution takes no generator. Evaluation never sees this class: the training loop applies
it to training batches only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from nnrecipe.errors import UserError

_ERASE_MIN_AREA = 0.02  # Zhong et al. 2017: s_l = 0.02
_ERASE_ASPECT = 0.3  # Zhong et al. 2017: r_1 = 0.3, r_2 = 1/r_1
_CROP_ASPECT = (3 / 4, 4 / 3)  # torchvision RandomResizedCrop default (Szegedy et al. 2015)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (high - low) + low


def _log_uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return _uniform(n, math.log(low), math.log(high), g).exp()


def _box_mask(top: torch.Tensor, left: torch.Tensor, h: torch.Tensor, w: torch.Tensor,
              H: int, W: int) -> torch.Tensor:
    """[B, 1, H, W] bool: True inside each image's box [top, top+h) × [left, left+w)."""
    rows = torch.arange(H, device=top.device)
    cols = torch.arange(W, device=top.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def affine_resample(x: torch.Tensor, *, angle: torch.Tensor, scale_x: torch.Tensor,
                    scale_y: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor) -> torch.Tensor:
    """Resample each image of x [B, C, H, W] at p_in = D⁻¹·R(angle)·D·diag(scale)·p_out + shift.

    All parameters are [B] tensors; angle in degrees, scale and shift in the [−1, 1] coordinates of
    ``affine_grid`` (scale 1, shift 0: the whole image). Bilinear, zero outside the image.
    """
    B, _, H, W = x.shape
    theta = torch.deg2rad(angle)
    cos, sin = theta.cos(), theta.sin()
    # D⁻¹RD with D = diag(W, H)/2: the rotation acts on pixel units, so non-square images keep
    # their angles (a rotation in normalized units would shear them).
    A = torch.stack([torch.stack([cos * scale_x, -sin * scale_y * H / W, shift_x], 1),
                     torch.stack([sin * scale_x * W / H, cos * scale_y, shift_y], 1)], 1)  # [B, 2, 3]
    grid = F.affine_grid(A.to(x.device, x.dtype), [B, *x.shape[1:]], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class Augmenter:
    def __init__(self, cfg, *, num_classes: int | None):
        self.cfg = cfg
        self.num_classes = num_classes
        if (cfg.mixup > 0 or cfg.cutmix > 0) and num_classes is None:
            raise UserError("mixup/cutmix need class labels, but this task is a regression",
                            "augment.mixup / augment.cutmix", "set both to 0")
        self.last_lambda: float | None = None
        self.last_perm: torch.Tensor | None = None

    @property
    def _mixing(self) -> bool:
        return (self.cfg.mixup > 0 or self.cfg.cutmix > 0) and self.cfg.mix_prob > 0

    @property
    def active(self) -> bool:
        c = self.cfg
        return bool(c.hflip or c.crop_padding > 0 or c.resized_crop_scale < 1 or c.rotation > 0
                    or c.brightness > 0 or c.contrast > 0 or c.erasing > 0 or self._mixing)

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4:
            raise ValueError(f"Augmenter needs images [B, C, H, W], got shape {tuple(x.shape)}")
        c, g = self.cfg, generator
        self.last_lambda, self.last_perm = None, None
        # Per-channel range of the input batch, before anything moves or fills pixels.
        lo, hi = x.amin(dim=(0, 2, 3), keepdim=True), x.amax(dim=(0, 2, 3), keepdim=True)
        if c.hflip:
            x = self._hflip(x, g)
        if c.crop_padding > 0:
            x = self._padded_crop(x, c.crop_padding, g)
        if c.resized_crop_scale < 1 or c.rotation > 0:
            x = self._affine(x, g)
        if c.brightness > 0 or c.contrast > 0:
            x = self._jitter(x, g).clamp(lo, hi)
        if c.erasing > 0:
            x = self._erase(x, g)
        if self._mixing and torch.rand(1, generator=g).item() < c.mix_prob:
            use_cutmix = c.cutmix > 0 and (c.mixup == 0 or torch.rand(1, generator=g).item() < 0.5)
            return self._mix(x, y, g, cutmix=use_cutmix)
        return x, y

    # -- geometric ----------------------------------------------------------------------------
    def _hflip(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        flip = (torch.rand(len(x), generator=g) < 0.5).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(3), x)

    def _padded_crop(self, x: torch.Tensor, p: int, g: torch.Generator) -> torch.Tensor:
        B, _, H, W = x.shape
        off = torch.randint(0, 2 * p + 1, (2, B), generator=g).to(x.device)
        padded = F.pad(x, (p, p, p, p))  # zero = the channel mean of normalized data
        rows = off[0][:, None] + torch.arange(H, device=x.device)  # [B, H]
        cols = off[1][:, None] + torch.arange(W, device=x.device)  # [B, W]
        b = torch.arange(B, device=x.device)[:, None, None]
        # Advanced indices around a slice: the result is [B, H, W, C].
        return padded[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()

    def _affine(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        B, _, H, W = x.shape
        s_min = self.cfg.resized_crop_scale
        area = _uniform(B, s_min, 1.0, g) if s_min < 1 else torch.ones(B)
        aspect = _log_uniform(B, *_CROP_ASPECT, g) if s_min < 1 else torch.ones(B)
        sx = (area * aspect).sqrt().clamp(max=1.0)  # box width / W
        sy = (area / aspect).sqrt().clamp(max=1.0)  # box height / H
        tx = (1 - sx) * _uniform(B, -1.0, 1.0, g)  # box centre, keeping the box inside
        ty = (1 - sy) * _uniform(B, -1.0, 1.0, g)
        angle = _uniform(B, -self.cfg.rotation, self.cfg.rotation, g)
        return affine_resample(x, angle=angle, scale_x=sx, scale_y=sy, shift_x=tx, shift_y=ty)

    # -- photometric --------------------------------------------------------------------------
    def _jitter(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        B = len(x)
        b, c = self.cfg.brightness, self.cfg.contrast
        if b > 0:
            x = x + _uniform(B, -b, b, g).to(x.device, x.dtype)[:, None, None, None]
        if c > 0:
            gamma = _uniform(B, 1 - c, 1 + c, g).to(x.device, x.dtype)[:, None, None, None]
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * gamma + mean
        return x

    def _erase(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        B, _, H, W = x.shape
        s_max = self.cfg.erasing_scale
        apply = torch.rand(B, generator=g) < self.cfg.erasing
        area = _uniform(B, min(_ERASE_MIN_AREA, s_max), s_max, g) * H * W
        aspect = _log_uniform(B, _ERASE_ASPECT, 1 / _ERASE_ASPECT, g)
        h = (area * aspect).sqrt().round().clamp(1, H).long()
        w = (area / aspect).sqrt().round().clamp(1, W).long()
        top = (torch.rand(B, generator=g) * (H - h + 1)).long()
        left = (torch.rand(B, generator=g) * (W - w + 1)).long()
        mask = _box_mask(top, left, h, w, H, W).to(x.device) & apply.to(x.device)[:, None, None, None]
        return x.masked_fill(mask, 0.0)

    # -- mixing -------------------------------------------------------------------------------
    def _mix(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator,
             *, cutmix: bool) -> tuple[torch.Tensor, torch.Tensor]:
        B, _, H, W = x.shape
        alpha = self.cfg.cutmix if cutmix else self.cfg.mixup
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        lam = float(np.random.default_rng(seed).beta(alpha, alpha))
        perm = torch.randperm(B, generator=g).to(x.device)
        if cutmix:
            cut_h, cut_w = int(H * math.sqrt(1 - lam)), int(W * math.sqrt(1 - lam))
            cy = int(torch.randint(0, H, (1,), generator=g))
            cx = int(torch.randint(0, W, (1,), generator=g))
            y0, y1 = max(cy - cut_h // 2, 0), min(cy - cut_h // 2 + cut_h, H)
            x0, x1 = max(cx - cut_w // 2, 0), min(cx - cut_w // 2 + cut_w, W)
            x = x.clone()  # never write into the caller's batch
            x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (H * W)
        else:
            x = lam * x + (1 - lam) * x[perm]
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)
        target = lam * onehot + (1 - lam) * onehot[perm]
        self.last_lambda, self.last_perm = lam, perm
        return x, target


def make_augmenter(cfg, *, num_classes: int | None) -> Augmenter | None:
    """An `Augmenter` for ``cfg``, or None when every option is off (the loop then skips it)."""
    aug = Augmenter(cfg, num_classes=num_classes)
    return aug if aug.active else None
