"""clip_gradients against the formulas, written out here by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nnrecipe.config import build_config
from nnrecipe.models import MLP
from nnrecipe.training.clipping import AGC_EPS, CLIPPERS, AutoClip, clip_gradients, head_parameters
from nnrecipe.training.setup import make_trainer

STATELESS = sorted(set(CLIPPERS) - {"autoclip"})  # autoclip's τ comes from its history, not `threshold`


def _clip(params, *, mode: str, threshold: float):
    return clip_gradients(params, mode=mode, threshold=threshold,
                          autoclip=AutoClip() if mode == "autoclip" else None)


def _param(weight: list, grad: list) -> nn.Parameter:
    p = nn.Parameter(torch.tensor(weight, dtype=torch.float64))
    p.grad = torch.tensor(grad, dtype=torch.float64)
    return p


def _grads(params: list[nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad.clone() for p in params]


def _hand_norm(grads: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float((g**2).sum()) for g in grads))


@pytest.fixture
def params() -> list[nn.Parameter]:
    # Global norm: sqrt(9+16+0+144+25) = sqrt(194) ≈ 13.93
    return [_param([[1.0, 1.0], [1.0, 1.0]], [[3.0, 4.0], [0.0, 0.0]]), _param([1.0, 2.0], [12.0, 5.0])]


@pytest.mark.parametrize("mode", sorted(CLIPPERS))
def test_returns_pre_clip_norm_as_0dim_tensor(params, mode):
    expected = _hand_norm(_grads(params))
    norm = _clip(params, mode=mode, threshold=0.5)
    # A tensor, not a Python float: the loop accumulates it and syncs only on log steps.
    assert isinstance(norm, torch.Tensor) and norm.ndim == 0
    assert float(norm) == pytest.approx(math.sqrt(194.0))
    assert float(norm) == pytest.approx(expected)


def test_norm_clips_jointly_and_keeps_direction(params):
    before = _grads(params)
    tau = 2.0
    clip_gradients(params, mode="norm", threshold=tau)
    after = _grads(params)
    assert _hand_norm(after) == pytest.approx(tau, rel=1e-5)
    scale = tau / math.sqrt(194.0)  # g ← g·min(1, τ/‖g‖)
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b * scale, rtol=1e-5, atol=0)


def test_norm_below_threshold_untouched(params):
    before = _grads(params)
    norm = clip_gradients(params, mode="norm", threshold=100.0)
    assert float(norm) == pytest.approx(math.sqrt(194.0))
    for b, a in zip(before, _grads(params)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_value_clamps_each_element(params):
    before = _grads(params)
    clip_gradients(params, mode="value", threshold=4.5)
    for b, a in zip(before, _grads(params)):
        torch.testing.assert_close(a, b.clamp(-4.5, 4.5))
    assert params[0].grad.tolist() == [[3.0, 4.0], [0.0, 0.0]]
    assert params[1].grad.tolist() == [4.5, 4.5]


def test_value_negative_gradients():
    p = _param([0.0, 0.0, 0.0], [-3.0, 0.2, 7.0])
    clip_gradients([p], mode="value", threshold=1.0)
    assert p.grad.tolist() == [-1.0, 0.2, 1.0]


def test_agc_unitwise():
    lam = 0.1
    w = [
        [3.0, 4.0],  # ‖W‖ = 5, limit λ·5 = 0.5
        [6.0, 8.0],  # ‖W‖ = 10, limit 1.0
        [0.0, 0.0],  # ‖W‖ = 0 → ε floor: limit λ·1e-3 = 1e-4
    ]
    g = [
        [0.3, 0.4],  # ‖G‖ = 0.5 → ratio 0.1, not above λ: unchanged
        [6.0, 8.0],  # ‖G‖ = 10 > 1.0 → rescaled to norm 1.0: [0.6, 0.8]
        [0.0, 2.0],  # ‖G‖ = 2 > 1e-4 → rescaled to norm 1e-4: [0, 1e-4]
    ]
    p = _param(w, g)
    clip_gradients([p], mode="agc", threshold=lam)
    expected = torch.tensor([[0.3, 0.4], [0.6, 0.8], [0.0, lam * AGC_EPS]], dtype=torch.float64)
    torch.testing.assert_close(p.grad, expected)
    assert AGC_EPS == 1e-3


def test_agc_conv_kernel_is_per_output_channel():
    lam = 0.5
    w = torch.ones(2, 3, 2, 2, dtype=torch.float64)  # ‖W_i‖ = sqrt(12) per output channel
    g = torch.stack([torch.full((3, 2, 2), 0.01), torch.full((3, 2, 2), 10.0)]).double()
    p = nn.Parameter(w.clone())
    p.grad = g.clone()
    clip_gradients([p], mode="agc", threshold=lam)
    torch.testing.assert_close(p.grad[0], g[0])  # ratio 0.01·sqrt(12)/sqrt(12) = 0.01 ≤ λ
    limit = lam * math.sqrt(12.0)
    assert float(p.grad[1].norm()) == pytest.approx(limit)
    torch.testing.assert_close(p.grad[1] / p.grad[1].norm(), g[1] / g[1].norm())


def test_agc_1d_parameter_uses_whole_tensor():
    p = _param([3.0, 4.0], [30.0, 40.0])  # ‖W‖ = 5, ‖G‖ = 50, λ = 0.2 → limit 1
    clip_gradients([p], mode="agc", threshold=0.2)
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8], dtype=torch.float64))


def test_layer_norm_clips_each_tensor_independently(params):
    tau = 4.0
    clip_gradients(params, mode="layer_norm", threshold=tau)
    # First tensor: ‖g‖ = 5 > 4 → ·4/5; second: ‖g‖ = 13 > 4 → ·4/13 (torch adds 1e-6 to ‖g‖).
    expected0 = torch.tensor([[2.4, 3.2], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(params[0].grad, expected0, rtol=1e-6, atol=0)
    expected1 = torch.tensor([12.0, 5.0], dtype=torch.float64) * 4 / 13
    torch.testing.assert_close(params[1].grad, expected1, rtol=1e-6, atol=0)
    # A tensor under the limit is untouched, whatever the global norm.
    p = [_param([1.0], [1.0]), _param([1.0], [100.0])]
    clip_gradients(p, mode="layer_norm", threshold=2.0)
    assert p[0].grad.tolist() == [1.0]
    assert p[1].grad.tolist() == pytest.approx([2.0])


@pytest.mark.parametrize("mode", STATELESS)
def test_threshold_zero_is_noop(params, mode):
    before = _grads(params)
    norm = clip_gradients(params, mode=mode, threshold=0.0)
    assert float(norm) == pytest.approx(math.sqrt(194.0))
    for b, a in zip(before, _grads(params)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mode_none_is_noop(params):
    before = _grads(params)
    clip_gradients(params, mode="none", threshold=0.1)
    for b, a in zip(before, _grads(params)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("mode", sorted(CLIPPERS))
def test_params_without_grad_are_skipped(mode):
    no_grad = nn.Parameter(torch.ones(3))
    p = _param([1.0, 1.0], [3.0, 4.0])
    norm = _clip([no_grad, p], mode=mode, threshold=1.0)
    assert no_grad.grad is None
    assert float(norm) == pytest.approx(5.0)
    empty = _clip([no_grad], mode=mode, threshold=1.0)
    assert isinstance(empty, torch.Tensor) and float(empty) == 0.0


def test_grad_tensor_is_modified_in_place():
    p = _param([[1.0, 1.0]], [[30.0, 40.0]])
    ref = p.grad
    for mode in ("norm", "value", "agc", "layer_norm"):
        clip_gradients([p], mode=mode, threshold=0.5)
        assert p.grad is ref


def test_unknown_mode_and_negative_threshold(params):
    with pytest.raises(ValueError, match="unknown clipping mode"):
        clip_gradients(params, mode="global", threshold=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        clip_gradients(params, mode="norm", threshold=-1.0)


def _model_and_batch(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1) * 50  # large targets: the gradient norm exceeds τ
    return model, x, y


@pytest.mark.parametrize("mode", ["norm", "value", "agc", "layer_norm"])
def test_mixed_precision_clip_after_unscale_equals_true_gradient(mode):
    """GradScaler multiplies the loss by S; after `scaler.unscale_` clipping sees the true gradient."""
    tau = 0.5
    model, x, y = _model_and_batch()
    nn.functional.mse_loss(model(x), y).backward()
    true_norm = clip_gradients(list(model.parameters()), mode=mode, threshold=tau)
    reference = _grads(list(model.parameters()))

    model2, x, y = _model_and_batch()
    opt = torch.optim.SGD(model2.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    scaler.scale(nn.functional.mse_loss(model2(x), y)).backward()
    scaled_norm = _hand_norm(_grads(list(model2.parameters())))
    assert scaled_norm == pytest.approx(float(true_norm) * 2.0**10, rel=1e-4)  # what clipping would see
    scaler.unscale_(opt)
    norm = clip_gradients(list(model2.parameters()), mode=mode, threshold=tau)
    assert float(norm) == pytest.approx(float(true_norm), rel=1e-5)
    for ref, got in zip(reference, _grads(list(model2.parameters()))):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)


# -- autoclip: τ_t = np.percentile(‖g_1‖…‖g_t‖, p), the paper's reference code ----------------------


@pytest.mark.parametrize("percentile", [10.0, 50.0, 90.0])
def test_autoclip_threshold_is_the_percentile_of_the_history(percentile):
    gen = torch.Generator().manual_seed(0)
    history, clip = [], AutoClip(percentile)
    for _ in range(1500):  # past the first buffer (1024): it must grow
        p = _param([1.0, 1.0, 1.0], (torch.randn(3, generator=gen, dtype=torch.float64)
                                     * torch.rand((), generator=gen, dtype=torch.float64) * 10).tolist())
        before = p.grad.clone()
        norm = float(clip_gradients([p], mode="autoclip", threshold=0.0, autoclip=clip))
        history.append(norm)
        tau = float(np.percentile(history, percentile))
        assert float(clip.last) == pytest.approx(tau, rel=1e-12)
        torch.testing.assert_close(p.grad, before * min(1.0, tau / (norm + 1e-6)), rtol=1e-12, atol=0)
    assert clip.count == 1500


def test_autoclip_leaves_non_finite_norms_out_of_the_history():
    clip = AutoClip(50.0)
    for grad in ([3.0, 4.0], [math.inf, 0.0], [6.0, 8.0]):
        clip_gradients([_param([1.0, 1.0], grad)], mode="autoclip", threshold=1.0, autoclip=clip)
    assert float(clip.last) == pytest.approx(np.percentile([5.0, 10.0], 50))


def test_autoclip_state_round_trip_continues_the_same_thresholds():
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(4, generator=gen).tolist() for _ in range(20)]
    whole, first = AutoClip(25.0), AutoClip(25.0)
    for g in grads[:12]:
        for clip in (whole, first):
            clip_gradients([_param([1.0] * 4, g)], mode="autoclip", threshold=0.0, autoclip=clip)
    resumed = AutoClip(25.0)
    resumed.load_state_dict(first.state_dict())
    for g in grads[12:]:
        for clip in (whole, resumed):
            clip_gradients([_param([1.0] * 4, g)], mode="autoclip", threshold=0.0, autoclip=clip)
        assert float(resumed.last) == float(whole.last)


def test_autoclip_needs_its_history_and_a_valid_percentile(params):
    with pytest.raises(ValueError, match="AutoClip history"):
        clip_gradients(params, mode="autoclip", threshold=1.0)
    for bad in (0.0, 101.0):
        with pytest.raises(ValueError, match="percentile"):
            AutoClip(bad)


# -- AGC leaves the final layer alone (Brock et al. 2021 §4.1) ---------------------------------------


def _agc_trainer(exempt_head: bool):
    torch.manual_seed(0)
    cfg = build_config({"clip": {"name": "agc", "threshold": 1e-3, "exempt_head": exempt_head}})
    return make_trainer(cfg, MLP(4, 3, hidden=(8,)), task="classification", train_rows=16, callbacks=[])


def test_head_parameters_are_the_last_linear_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 2))
    assert head_parameters(model) == {id(model[4].weight), id(model[4].bias)}
    convs = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 3, 1))
    assert head_parameters(convs) == {id(convs[1].weight), id(convs[1].bias)}
    assert head_parameters(nn.Sequential(nn.ReLU())) == frozenset()


@pytest.mark.parametrize("exempt_head", [True, False])
def test_agc_exempts_the_head_by_default(exempt_head):
    trainer = _agc_trainer(exempt_head)
    model = trainer.model
    nn.functional.cross_entropy(model(torch.randn(16, 4) * 100), torch.randint(0, 3, (16,))).backward()
    params = list(model.parameters())
    before, expected_norm = _grads(params), _hand_norm(_grads(params))
    norm = clip_gradients(params, mode="agc", threshold=1e-3, exempt=trainer.clip_exempt)
    assert float(norm) == pytest.approx(expected_norm)  # the head's gradient still counts in the norm
    head = {id(model.head.weight), id(model.head.bias)}
    assert trainer.clip_exempt == (head if exempt_head else frozenset())
    for p, b in zip(params, before):
        unchanged = torch.equal(p.grad, b)
        assert unchanged == (exempt_head and id(p) in head)  # λ = 1e-3 clips every other unit
