"""The fit loop: NaN handling (stop / skip), per-epoch statistics, the linear LR scaling rule, a
custom train step (two optimizers, its own statistics, no validation)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnrecipe.config import ScheduleConfig, build_config
from nnrecipe.errors import TrainingDiverged
from nnrecipe.models import MLP
from nnrecipe.training.callbacks import EarlyStopping, History
from nnrecipe.training.loop import Trainer
from nnrecipe.training.optim import Optimizers
from nnrecipe.training.schedules import build_schedule
from nnrecipe.training.setup import initial_lr as base_lr


def _trainer(loss_fn, *, nan_policy="stop", clip="none"):
    torch.manual_seed(0)
    model = MLP(4, 3, hidden=(8,))
    sched = build_schedule(ScheduleConfig(name="constant", warmup={"fraction": 0}), base_lr=0.1, total_steps=100)
    return Trainer(model=model, loss_fn=loss_fn, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                   schedule=sched, classification=True, clip_mode=clip, clip_threshold=1.0,
                   callbacks=[History(), EarlyStopping(patience=0)], nan_policy=nan_policy)


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)


def _nan_on_call(n):
    calls = {"n": 0}

    def loss_fn(logits, y):
        calls["n"] += 1
        loss = F.cross_entropy(logits, y)
        return loss * float("nan") if calls["n"] == n else loss
    return loss_fn


def test_nan_stops_at_once_and_keeps_finite_weights():
    X, y = _data()
    trainer = _trainer(_nan_on_call(3))
    with pytest.raises(TrainingDiverged) as exc:
        trainer.fit(X, y, X, y, epochs=3, batch_size=10, generator=torch.Generator().manual_seed(0))
    assert exc.value.step == 2  # the third step (0-based 2) never updated the weights
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_nan_policy_skip_drops_the_step_and_halves_the_lr():
    X, y = _data()
    trainer = _trainer(_nan_on_call(3), nan_policy="skip")
    trainer.fit(X, y, X, y, epochs=2, batch_size=10, generator=torch.Generator().manual_seed(0))
    assert trainer.skipped_steps == 1 and trainer.lr_factor == 0.5
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    rows = next(c for c in trainer.callbacks if isinstance(c, History)).rows
    assert len(rows) == 2 and all(r["train_loss"] == r["train_loss"] for r in rows)  # no NaN in history
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_epoch_statistics_match_a_direct_computation():
    X, y = _data()
    losses = []

    def recording(logits, target):
        loss = F.cross_entropy(logits, target)
        if logits.requires_grad:  # training steps only, not the validation pass
            losses.append((loss.item(), len(target)))
        return loss
    trainer = _trainer(recording)
    trainer.fit(X, y, X, y, epochs=1, batch_size=16, generator=torch.Generator().manual_seed(0))  # 16+16+8
    history = next(c for c in trainer.callbacks if isinstance(c, History)).rows[0]
    expected = sum(l * n for l, n in losses) / sum(n for _, n in losses)
    assert history["train_loss"] == pytest.approx(expected, rel=1e-6)


def test_linear_scaling_rule():
    cfg = build_config({"train": {"batch_size": 256, "scale_lr": True, "reference_batch_size": 64},
                        "optimizer": {"lr": 1e-3}})
    assert base_lr(cfg) == pytest.approx(4e-3)
    assert base_lr(build_config({"train": {"batch_size": 256}, "optimizer": {"lr": 1e-3}})) == 1e-3


def test_linear_scaling_rule_counts_every_row_of_an_optimizer_step(monkeypatch):
    """B = batch_size · accumulate · W: micro-batches and torchrun processes all add to one step."""
    cfg = build_config({"train": {"batch_size": 32, "accumulate": 2, "scale_lr": True, "reference_batch_size": 64},
                        "optimizer": {"lr": 1e-3}})
    assert base_lr(cfg) == pytest.approx(1e-3)
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert base_lr(cfg) == pytest.approx(4e-3)


def _custom_trainer(*, nan_on_call=None):
    """A Trainer whose train_step updates the first layer and the rest with two optimizers and
    returns (loss, batch mean of input column 0); NaN statistics on call `nan_on_call`."""
    torch.manual_seed(0)
    model = MLP(4, 3, hidden=(8,))
    params = list(model.parameters())
    sched = build_schedule(ScheduleConfig(name="linear", warmup={"fraction": 0}), base_lr=0.1, total_steps=100)
    calls = {"n": 0}

    def step(trainer, xb, yb):
        calls["n"] += 1
        loss = F.cross_entropy(trainer.model(xb), yb)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer["first"].step()
        trainer.optimizer["rest"].step()
        bad = float("nan") if calls["n"] == nan_on_call else 1.0
        return torch.stack([loss.detach() * bad, xb[:, 0].mean()])
    step.columns = ("my_loss", "x0_mean")
    history = History()
    history.columns = ("epoch", "my_loss", "x0_mean", "val_loss", "lr")
    optimizers = Optimizers(first=torch.optim.SGD(params[:2], lr=1.0), rest=torch.optim.SGD(params[2:], lr=1.0))
    return Trainer(model=model, loss_fn=None, optimizer=optimizers, schedule=sched, classification=False,
                   callbacks=[history, EarlyStopping(patience=1)], train_step=step), history


def test_custom_train_step_records_its_columns_without_validation():
    X, y = _data()
    trainer, history = _custom_trainer()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    logs = trainer.fit(X, y, None, None, epochs=3, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert logs["epochs_run"] == 3 and trainer.step == 9  # 16 + 16 + 8 rows; patience has no val_loss to stop on
    rows = history.rows
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(r["val_loss"] is None for r in rows)
    # means weighted by batch size: every row once per epoch gives the column's plain mean
    assert all(r["x0_mean"] == pytest.approx(X[:, 0].mean().item(), abs=1e-6) for r in rows)
    assert rows[-1]["my_loss"] < rows[0]["my_loss"]
    assert rows[-1]["lr"] == pytest.approx(trainer.schedule.lr_at(8))
    # the scheduled LR reached both optimizers, and both moved their parameters
    groups = trainer.optimizer.param_groups
    assert len(groups) == 2 and all(g["lr"] == rows[-1]["lr"] for g in groups)
    assert all(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert set(trainer.optimizer.state_dict()) == {"first", "rest"}


def test_custom_train_step_stops_on_non_finite_statistics():
    X, y = _data()
    trainer, history = _custom_trainer(nan_on_call=5)
    with pytest.raises(TrainingDiverged) as exc:
        trainer.fit(X, y, None, None, epochs=3, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert exc.value.step == 4 and exc.value.epoch == 2  # the fifth step, the second step of epoch 2
    assert len(history.rows) == 1
