from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import AugmentConfig
from nnrecipe.data.augment import Augmenter, affine_resample, make_augmenter
from nnrecipe.errors import UserError
from nnrecipe.training.loop import Trainer

OFF = dict(hflip=False, crop_padding=0, resized_crop_scale=1.0, rotation=0.0, brightness=0.0,
           contrast=0.0, erasing=0.0, mixup=0.0, cutmix=0.0)
ALL = dict(hflip=True, crop_padding=4, resized_crop_scale=0.5, rotation=15.0, brightness=0.4,
           contrast=0.4, erasing=0.5, mixup=0.4, cutmix=1.0, mix_prob=1.0)
SINGLE = {"hflip": dict(hflip=True), "crop": dict(crop_padding=3),
          "resized_crop": dict(resized_crop_scale=0.3), "rotation": dict(rotation=30.0),
          "brightness": dict(brightness=0.5), "contrast": dict(contrast=0.5),
          "erasing": dict(erasing=1.0), "geometric": dict(hflip=True, crop_padding=2,
                                                          resized_crop_scale=0.5, rotation=20.0)}


def cfg(**kw) -> AugmentConfig:
    return AugmentConfig(**{**OFF, **kw})


def batch(b: int = 16, c: int = 3, h: int = 12, w: int = 10, *, dtype=torch.float32, seed: int = 0):
    """Normalized-looking images (0 inside every channel's range, channels on different scales)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype) * torch.linspace(0.5, 2.0, c, dtype=dtype)[:, None, None]
    return x, torch.randint(0, 5, (b,), generator=g)


def run(aug: Augmenter, x, y, seed: int = 1):
    return aug(x, y, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(SINGLE))
def test_each_op_keeps_shape_labels_and_range_and_changes_the_batch(name, dtype):
    x, y = batch(dtype=dtype)
    x_before = x.clone()
    aug = Augmenter(cfg(**SINGLE[name]), num_classes=5)
    assert aug.active
    out, target = run(aug, x, y)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert target is y and aug.last_lambda is None
    assert torch.equal(x, x_before)  # the caller's batch is not written into
    assert not torch.equal(out, x)
    lo = x.amin(dim=(0, 2, 3), keepdim=True).clamp(max=0)
    hi = x.amax(dim=(0, 2, 3), keepdim=True).clamp(min=0)
    eps = 1e-6 * float(hi.max())  # bilinear weights sum to 1 up to rounding
    assert (out >= lo - eps).all() and (out <= hi + eps).all()


def test_jitter_clamps_to_the_batch_per_channel_range():
    x, y = batch()
    out, _ = run(Augmenter(cfg(brightness=3.0, contrast=0.9), num_classes=5), x, y)
    lo, hi = x.amin(dim=(0, 2, 3), keepdim=True), x.amax(dim=(0, 2, 3), keepdim=True)
    assert (out >= lo).all() and (out <= hi).all()
    assert ((out == lo) | (out == hi)).any()  # a shift of up to 3 std must hit the bounds


def test_hflip_flips_each_image_or_leaves_it():
    x, y = batch(b=64)
    out, _ = run(Augmenter(cfg(hflip=True), num_classes=5), x, y)
    flipped = torch.tensor([torch.equal(o, f) for o, f in zip(out, torch.flip(x, dims=[3]))])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert (flipped | kept).all()
    assert 10 < int(flipped.sum()) < 54  # Bernoulli(½) over 64 images


def test_padded_crop_is_an_integer_shift_of_the_zero_padded_image():
    p = 3
    x, y = batch(b=24)
    out, _ = run(Augmenter(cfg(crop_padding=p), num_classes=5), x, y)
    padded = F.pad(x, (p, p, p, p))
    H, W = x.shape[2:]
    shifts = []
    for b in range(len(x)):
        found = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                 if torch.equal(out[b], padded[b, :, dy:dy + H, dx:dx + W])]
        assert found, f"image {b} is not a crop of its padded version"
        shifts.append(found[0])
    assert len(set(shifts)) > 5


def test_all_off_is_identity_and_make_augmenter_returns_none():
    x, y = batch()
    aug = Augmenter(cfg(), num_classes=5)
    assert not aug.active
    out, target = run(aug, x, y)
    assert torch.equal(out, x) and target is y
    assert make_augmenter(cfg(), num_classes=5) is None
    assert make_augmenter(cfg(mixup=0.2, mix_prob=0.0), num_classes=5) is None  # never mixes
    assert isinstance(make_augmenter(cfg(rotation=5.0), num_classes=5), Augmenter)


def test_affine_resample_rotates_scales_and_shifts_in_pixel_units():
    # Bilinear interpolation reproduces a linear function exactly, so every output pixel whose
    # source lies inside the image must equal the function at the source point, here computed in
    # pixel units: src = centre + R(θ)·(S·d) + shift·(W, H)/2. A shear from treating a non-square
    # image as square would break this.
    B, H, W = 6, 12, 20
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(B, generator=g, dtype=torch.float64) * 360 - 180
    sx, sy = (0.4 + 0.6 * torch.rand(B, generator=g, dtype=torch.float64) for _ in range(2))
    tx, ty = ((torch.rand(B, generator=g, dtype=torch.float64) - 0.5) * 0.4 for _ in range(2))
    ii, jj = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64),
                            indexing="ij")
    x = (0.3 * jj - 0.7 * ii + 1.0).expand(B, 1, H, W)
    out = affine_resample(x, angle=angle, scale_x=sx, scale_y=sy, shift_x=tx, shift_y=ty)
    cx, cy = (W - 1) / 2, (H - 1) / 2
    t = torch.deg2rad(angle)[:, None, None]
    dj, di = sx[:, None, None] * (jj - cx), sy[:, None, None] * (ii - cy)
    j_src = cx + torch.cos(t) * dj - torch.sin(t) * di + tx[:, None, None] * W / 2
    i_src = cy + torch.sin(t) * dj + torch.cos(t) * di + ty[:, None, None] * H / 2
    inside = (j_src >= 0) & (j_src <= W - 1) & (i_src >= 0) & (i_src <= H - 1)
    assert inside.sum() > B * H * W // 4
    expected = 0.3 * j_src - 0.7 * i_src + 1.0
    torch.testing.assert_close(out[:, 0][inside], expected[inside], atol=1e-9, rtol=0)


def test_erasing_zeroes_one_rectangle_per_image_within_the_max_area():
    x, y = batch(b=32, h=16, w=16)
    scale = 0.25
    out, _ = run(Augmenter(cfg(erasing=1.0, erasing_scale=scale), num_classes=5), x, y)
    erased = (out == 0).all(dim=1) & (x != 0).all(dim=1)  # [B, H, W]
    assert torch.equal(out[~erased.unsqueeze(1).expand_as(x)], x[~erased.unsqueeze(1).expand_as(x)])
    for m in erased:
        rows, cols = m.any(1).nonzero(), m.any(0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert int(m.sum()) == int(box)  # a filled rectangle
        assert 1 <= int(m.sum()) <= scale * 16 * 16 + 16 + 16  # + rounding of the sides


def test_mixup_soft_targets_and_inputs_use_the_drawn_lambda():
    x, y = batch(b=32, dtype=torch.float64)
    aug = Augmenter(cfg(mixup=0.4), num_classes=5)
    out, target = run(aug, x, y)
    lam, perm = aug.last_lambda, aug.last_perm
    assert 0 < lam < 1 and sorted(perm.tolist()) == list(range(32))
    onehot = F.one_hot(y, 5).double()
    assert target.shape == (32, 5) and target.dtype == torch.float64
    torch.testing.assert_close(target.sum(1), torch.ones(32, dtype=torch.float64))
    torch.testing.assert_close(target, lam * onehot + (1 - lam) * onehot[perm])
    torch.testing.assert_close(out, lam * x + (1 - lam) * x[perm])


def test_mixup_lambda_follows_beta():
    # Beta(α, α) has mean ½ and variance 1/(4(2α+1)); α = 0.4 gives 0.1389.
    x, y = batch(b=4)
    aug = Augmenter(cfg(mixup=0.4), num_classes=5)
    g = torch.Generator().manual_seed(3)
    lams = []
    for _ in range(2000):
        aug(x, y, g)
        lams.append(aug.last_lambda)
    lams = torch.tensor(lams, dtype=torch.float64)
    assert abs(lams.mean() - 0.5) < 0.03
    assert abs(lams.var() - 1 / (4 * (2 * 0.4 + 1))) < 0.015


def test_cutmix_lambda_is_the_exact_kept_fraction():
    x, y = batch(b=32, h=16, w=12, dtype=torch.float64)
    aug = Augmenter(cfg(cutmix=1.0), num_classes=5)
    checked = 0
    for seed in range(20):
        out, target = run(aug, x, y, seed=seed)
        lam, perm = aug.last_lambda, aug.last_perm
        moved = perm != torch.arange(32)
        kept = (out[moved] == x[moved]).double().mean().item()  # random data: equal ⇔ kept
        assert lam == pytest.approx(kept, abs=1e-12)
        assert torch.equal(out[~moved], x[~moved])
        onehot = F.one_hot(y, 5).double()
        torch.testing.assert_close(target, lam * onehot + (1 - lam) * onehot[perm])
        pasted = out != x
        torch.testing.assert_close(out[pasted], x[perm][pasted], atol=0, rtol=0)
        checked += 0 < lam < 1
    assert checked > 10


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_cross_entropy_with_soft_target_is_the_mixed_loss(kind):
    x, y = batch(b=32, dtype=torch.float64)
    aug = Augmenter(cfg(**{kind: 1.0}), num_classes=5)
    _, target = run(aug, x, y, seed=4)
    lam, perm = aug.last_lambda, aug.last_perm
    logits = torch.randn(32, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    mixed = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    assert abs(F.cross_entropy(logits, target).item() - mixed.item()) < 1e-6


def test_mix_prob_and_choice_between_mixup_and_cutmix():
    x, y = batch(b=8)
    aug = Augmenter(cfg(mixup=1.0, cutmix=1.0, mix_prob=0.5), num_classes=5)
    g = torch.Generator().manual_seed(0)
    kinds = []
    for _ in range(200):
        out, target = aug(x, y, g)
        if aug.last_lambda is None:
            assert target is y and torch.equal(out, x)
            kinds.append("none")
            continue
        lam, perm = aug.last_lambda, aug.last_perm
        blend = torch.allclose(out, lam * x + (1 - lam) * x[perm])
        kinds.append("mixup" if blend else "cutmix")
    counts = {k: kinds.count(k) for k in ("none", "mixup", "cutmix")}
    assert 70 < counts["none"] < 130 and counts["mixup"] > 25 and counts["cutmix"] > 25, counts


def test_same_seed_reproduces_and_other_seed_differs():
    x, y = batch()
    aug = Augmenter(cfg(**ALL), num_classes=5)
    a, ta = run(aug, x, y, seed=7)
    b, tb = run(aug, x, y, seed=7)
    c, _ = run(aug, x, y, seed=8)
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, c)


def test_large_batch_goes_through_every_op():
    x, y = batch(b=512, h=32, w=32)
    aug = make_augmenter(cfg(**ALL), num_classes=5)
    out, target = run(aug, x, y)
    assert out.shape == (512, 3, 32, 32) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert target.shape == (512, 5)
    torch.testing.assert_close(target.sum(1), torch.ones(512))


def test_mixing_without_classes_is_a_user_error():
    with pytest.raises(UserError, match="mixup/cutmix"):
        Augmenter(cfg(cutmix=1.0), num_classes=None)
    assert Augmenter(cfg(rotation=5.0), num_classes=None).active  # geometric ops still fine


def test_non_image_input_is_a_programming_error():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        run(Augmenter(cfg(hflip=True), num_classes=5), torch.zeros(4, 10), torch.zeros(4, dtype=torch.long))


class _ConstantLR:
    def lr_at(self, step: int) -> float:
        return 0.01

    def observe(self, val_loss: float) -> None:
        pass


def test_the_trainer_augments_training_batches_only():
    # Training rows are positive, validation rows negative: every batch the augmenter sees must
    # come from the training split, and evaluation must run on the raw validation inputs.
    g = torch.Generator().manual_seed(0)
    X = torch.rand(40, 1, 4, 4, generator=g) + 1
    X_val = -torch.rand(12, 1, 4, 4, generator=g) - 1
    y, y_val = torch.randint(0, 3, (40,), generator=g), torch.randint(0, 3, (12,), generator=g)
    inner = Augmenter(cfg(hflip=True, mixup=1.0), num_classes=3)
    seen = []

    def spy(xb, yb, generator):
        seen.append(xb.clone())
        return inner(xb, yb, generator)

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    model_inputs = []
    model.register_forward_pre_hook(lambda m, args: model_inputs.append(args[0].clone()))
    trainer = Trainer(model=model, loss_fn=F.cross_entropy, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                      schedule=_ConstantLR(), classification=True, augment=spy)
    trainer.fit(X, y, X_val, y_val, epochs=2, batch_size=8, generator=g)
    assert len(seen) == 2 * math.ceil(40 / 8)
    assert all((s > 0).all() for s in seen)
    val_inputs = [t for t in model_inputs if (t < 0).all()]
    assert len(val_inputs) == 2 and all(torch.equal(t, X_val) for t in val_inputs)
