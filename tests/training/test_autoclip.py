"""AutoClip through the trainer: the config builds it, every step's τ is the percentile of the norms
so far, `clip_fraction` counts the steps above τ, a checkpoint carries the history, and the health
monitor warns when most steps are clipped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnrecipe.config import build_config
from nnrecipe.models import MLP
from nnrecipe.recipe.health import HealthMonitor
from nnrecipe.training.callbacks import History
from nnrecipe.training.checkpoint import capture, restore
from nnrecipe.training.clipping import AutoClip
from nnrecipe.training.setup import make_trainer


def _fit(clip: dict, *, epochs: int = 2, monitor: HealthMonitor | None = None):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(60, 5, generator=g), torch.randint(0, 3, (60,), generator=g)
    cfg = build_config({"clip": clip, "train": {"epochs": epochs, "batch_size": 10},
                        "optimizer": {"name": "sgd", "lr": 0.5}})
    history = History()
    trainer = make_trainer(cfg, MLP(5, 3, hidden=(16,)), task="classification", train_rows=60,
                           callbacks=[history, *([monitor] if monitor else [])])
    trainer.fit(X, y, X, y, epochs=epochs, batch_size=10, generator=torch.Generator().manual_seed(0))
    return trainer, history.rows


def test_the_config_puts_the_history_on_the_trainer_and_among_the_callbacks():
    trainer, _ = _fit({"name": "autoclip", "percentile": 30})
    assert isinstance(trainer.autoclip, AutoClip) and trainer.autoclip in trainer.callbacks
    assert trainer.autoclip.percentile == 30 and trainer.autoclip.count == trainer.step == 12
    plain, _ = _fit({"name": "norm"})
    assert plain.autoclip is None


def test_clip_fraction_counts_the_steps_above_their_own_threshold():
    trainer, rows = _fit({"name": "autoclip", "percentile": 50})
    norms = trainer.autoclip.norms[: trainer.autoclip.count].tolist()
    above = [norms[t] > np.percentile(norms[: t + 1], 50) for t in range(len(norms))]
    assert [r["clip_fraction"] for r in rows] == pytest.approx([np.mean(above[:6]), np.mean(above[6:])])
    assert [r["grad_norm"] for r in rows] == pytest.approx([np.mean(norms[:6]), np.mean(norms[6:])], rel=1e-6)


def test_a_checkpoint_carries_the_history():
    trainer, _ = _fit({"name": "autoclip"}, epochs=1)
    state = capture(trainer)
    fresh, _ = _fit({"name": "autoclip"}, epochs=1)
    fresh.autoclip.load_state_dict(AutoClip().state_dict())  # emptied: restore must refill it
    restore(fresh, state)
    assert fresh.autoclip.count == trainer.autoclip.count
    torch.testing.assert_close(fresh.autoclip.norms[: fresh.autoclip.count],
                               trainer.autoclip.norms[: trainer.autoclip.count])


def test_the_health_monitor_warns_when_most_steps_are_clipped_after_the_first_quarter():
    tight = HealthMonitor(every=1000, log=False)
    _, rows = _fit({"name": "norm", "threshold": 1e-4}, epochs=4, monitor=tight)
    assert [r["clip_fraction"] for r in rows] == [1.0] * 4
    clipping = [w for w in tight.warnings if "clipping most steps" in w]
    assert len(clipping) == 1 and "epoch 2's" in clipping[0]  # epoch 1 is the first quarter of 4
    longer = HealthMonitor(every=1000, log=False)
    _fit({"name": "norm", "threshold": 1e-4}, epochs=8, monitor=longer)
    assert [w for w in longer.warnings if "clipping most steps" in w][0].count("epoch 3's") == 1
    loose = HealthMonitor(every=1000, log=False)
    _, rows = _fit({"name": "norm", "threshold": 1e6}, epochs=4, monitor=loose)
    assert all(r["clip_fraction"] == 0.0 for r in rows)
    assert not any("clipping" in w for w in loose.warnings)


def test_autoclip_clips_most_steps_by_design_and_is_not_warned_about():
    monitor = HealthMonitor(every=1000, log=False)
    _, rows = _fit({"name": "autoclip", "percentile": 10}, epochs=4, monitor=monitor)
    assert max(r["clip_fraction"] for r in rows[1:]) > 0.5
    assert not any("clipping" in w for w in monitor.warnings)
    never = HealthMonitor(every=1000, log=False)
    _, rows = _fit({"name": "autoclip", "percentile": 100}, monitor=never)
    assert all(r["clip_fraction"] == 0.0 for r in rows)
