"""Gradient accumulation: N micro-batches of B per step equal one batch of N·B (no batch-dependent layers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnrecipe.config import ScheduleConfig, resolve_config
from nnrecipe.models import MLP
from nnrecipe.training.loop import Trainer
from nnrecipe.training.schedules import build_schedule
from nnrecipe.training.setup import make_trainer
from nnrecipe.errors import UserError


def _fit(X, y, *, batch_size, accumulate, epochs=3, penalty=None):
    torch.manual_seed(0)
    model = MLP(6, 3, hidden=(16,)).double()  # float64: the test is about the algorithm, not rounding
    sched = build_schedule(ScheduleConfig(name="cosine", warmup={"fraction": 0.1}), base_lr=0.05, total_steps=40)
    trainer = Trainer(model=model, loss_fn=F.cross_entropy, optimizer=torch.optim.AdamW(model.parameters(), lr=0.05),
                      schedule=sched, classification=True, clip_mode="none", accumulate=accumulate,
                      penalty=penalty)
    trainer.fit(X, y, X[:8], y[:8], epochs=epochs, batch_size=batch_size,
                generator=torch.Generator().manual_seed(1))
    return model, trainer


@pytest.mark.parametrize("n", [96, 100])  # 100: the last step has 4 rows (one short micro-batch)
def test_accumulate_equals_a_larger_batch(n):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(n, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)
    l2 = lambda m: 1e-3 * sum((p ** 2).sum() for p in m.parameters())  # added once per optimizer step
    big, tb = _fit(X, y, batch_size=32, accumulate=1, penalty=l2)
    small, ts = _fit(X, y, batch_size=8, accumulate=4, penalty=l2)
    assert ts.step == tb.step == 3 * -(-n // 32)  # the schedule counts optimizer steps
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    # and it is not trivially equal: plain batch 8 ends elsewhere
    plain, _ = _fit(X, y, batch_size=8, accumulate=1, penalty=l2)
    assert max((a - b).abs().max().item() for a, b in zip(big.parameters(), plain.parameters())) > 1e-3


def test_make_trainer_schedules_optimizer_steps():
    cfg = resolve_config(overrides=["train.batch_size=8", "train.accumulate=4", "train.epochs=2"])
    model = MLP(6, 3, hidden=(4,))
    trainer = make_trainer(cfg, model, task="classification", train_rows=100, callbacks=[])
    assert trainer.accumulate == 4
    assert trainer.schedule.total_steps == 2 * -(-100 // 32)


def test_accumulate_is_validated():
    with pytest.raises(UserError, match="accumulate"):
        resolve_config(overrides=["train.accumulate=0"])
