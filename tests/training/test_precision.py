"""Mixed precision (autocast, GradScaler and the NaN guard), torch.compile's fallback, channels_last."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import ScheduleConfig
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.models import MLP
from nnrecipe.training.checkpoint import decode_state, encode_state
from nnrecipe.training.loop import Trainer, call_model
from nnrecipe.training.precision import (CompiledForward, Precision, channels_last_forward, compile_status,
                                         wants_channels_last)
from nnrecipe.training.schedules import build_schedule


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 6, generator=g)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0).long()


def _trainer(precision, loss_fn=F.cross_entropy):
    torch.manual_seed(0)
    model = MLP(6, 3, hidden=(32,))
    sched = build_schedule(ScheduleConfig(name="constant", warmup={"fraction": 0}), base_lr=0.05, total_steps=100)
    return Trainer(model=model, loss_fn=loss_fn, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                   schedule=sched, classification=True, clip_mode="norm", clip_threshold=1.0, precision=precision,
                   callbacks=[precision] if precision is not None and precision.scaler is not None else [])


def test_fp16_on_cpu_is_refused_with_bf16_suggested():
    with pytest.raises(UserError) as info:
        Precision.for_device("fp16", torch.device("cpu"))
    assert "bf16" in info.value.fix and info.value.where == "train.precision"


def test_bf16_autocast_on_cpu_runs_matmuls_in_bf16_and_keeps_fp32_weights():
    p = Precision.for_device("bf16", torch.device("cpu"))
    model = nn.Linear(6, 3)
    with p.autocast():
        out = model(torch.randn(4, 6))
    assert out.dtype == torch.bfloat16
    X, y = _data()
    trainer = _trainer(p)
    before = trainer.evaluate(X, y)[0]
    trainer.fit(X, y, X, y, epochs=5, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert all(q.dtype == torch.float32 for q in trainer.model.parameters())
    assert trainer.evaluate(X, y)[0] < before  # it learns
    # and it is not fp32 in disguise: the weights differ from an fp32 run's
    ref = _trainer(None)
    ref.fit(X, y, X, y, epochs=5, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(ref.model.head.weight, trainer.model.head.weight)


def _scaled(init_scale):
    # the GradScaler logic is device-independent; on the CPU it runs with bf16 autocast
    return Precision("bf16", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=1000))


def test_scaler_skips_overflowing_steps_without_calling_it_divergence():
    X, y = _data()
    p = _scaled(2.0 ** 100)  # S·1e10·∂loss overflows fp32: gradients are Inf until S has halved enough
    trainer = _trainer(p, lambda logits, y: F.cross_entropy(logits, y) * 1e10)
    w0 = trainer.model.head.weight.detach().clone()
    trainer.fit(X, y, X, y, epochs=6, batch_size=8, generator=torch.Generator().manual_seed(0))  # no raise
    assert p.scaler.get_scale() <= 2.0 ** 99  # halved on each skipped step
    assert trainer.step == 6 * 8
    assert all(torch.isfinite(q).all() for q in trainer.model.parameters())
    assert not torch.equal(w0, trainer.model.head.weight)  # later steps were applied


def test_nan_loss_still_stops_with_a_scaler():
    calls = {"n": 0}

    def loss_fn(logits, y):
        calls["n"] += 1
        loss = F.cross_entropy(logits, y)
        return loss * float("nan") if calls["n"] == 5 else loss
    X, y = _data()
    trainer = _trainer(_scaled(2.0 ** 8), loss_fn)
    with pytest.raises(TrainingDiverged):
        trainer.fit(X, y, X, y, epochs=2, batch_size=8, generator=torch.Generator().manual_seed(0))
    assert all(torch.isfinite(q).all() for q in trainer.model.parameters())


def test_scaler_state_goes_through_a_checkpoint():
    p = _scaled(2.0 ** 10)
    p.scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    p.scaler.update(2.0 ** 5)
    tensors = {}
    saved = decode_state(encode_state(p.state_dict(), tensors), tensors)
    q = _scaled(1.0)
    q.load_state_dict(saved)
    assert q.scaler.get_scale() == 2.0 ** 5
    assert Precision("fp32", "cpu").state_dict() == {"scaler": None}


def test_compile_failure_falls_back_to_eager_once_with_one_line(caplog):
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler here\nsecond line")
    model = nn.Linear(4, 2)
    fwd = CompiledForward(model, call_model, backend=broken_backend)
    x = torch.randn(3, 4)
    with caplog.at_level(logging.WARNING, logger="nnrecipe"):
        assert torch.equal(fwd(model, x), model(x))
        assert fwd(model, x).shape == (3, 2)
    msgs = [r.getMessage() for r in caplog.records if r.name == "nnrecipe.training.precision"]
    assert compile_status(fwd).startswith("fallback: ") and "no compiler here" in compile_status(fwd)
    assert "second line" not in compile_status(fwd)
    assert len(msgs) == 1 and "\n" not in msgs[0] and msgs[0].startswith("warning: torch.compile is not usable")
    assert compile_status(call_model) == "off"


def test_compiled_forward_keeps_the_plain_module_for_saving():
    model = nn.Linear(4, 2)
    fwd = CompiledForward(model, call_model, backend="eager")  # eager: no C++ build
    x = torch.randn(3, 4)
    assert torch.allclose(fwd(model, x), model(x))
    assert compile_status(fwd) == "on"
    assert not any(k.startswith("_orig_mod.") for k in model.state_dict())


def test_channels_last():
    seen = []
    fwd = channels_last_forward(lambda m, xb: seen.append(xb) or xb.sum())
    fwd(None, torch.randn(2, 3, 5, 5))
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    conv, mlp = nn.Sequential(nn.Conv2d(3, 4, 3)), MLP(4, 2, hidden=(4,))
    assert not wants_channels_last("auto", conv, torch.device("cpu"))
    assert wants_channels_last("auto", conv, torch.device("cuda"))
    assert not wants_channels_last("auto", mlp, torch.device("cuda"))
    assert wants_channels_last(True, mlp, torch.device("cpu"))
    assert not wants_channels_last(False, conv, torch.device("cuda"))
