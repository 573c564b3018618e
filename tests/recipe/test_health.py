"""HealthMonitor: sampled rows, exact update ratio, the three warnings, hook cleanup, CSV."""

from __future__ import annotations

import csv
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import ScheduleConfig, WarmupConfig
from nnrecipe.errors import TrainingDiverged
from nnrecipe.recipe.health import COLUMNS, HealthMonitor, write_health_csv
from nnrecipe.training.callbacks import Callback
from nnrecipe.training.loop import Trainer
from nnrecipe.training.schedules import build_schedule


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: intra-op threads only add spin-wait time, badly so on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blobs(n: int = 256, d: int = 8, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(classes, d, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    X = centres[y] + torch.randn(n, d, generator=g)
    return X, y


def fit(model, monitor, *, X=None, y=None, lr=0.05, epochs=2, batch_size=32, loss_fn=F.cross_entropy,
        clip_threshold=0.0, callbacks=()):
    if X is None:
        X, y = blobs()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    steps = epochs * -(-len(X) // batch_size)
    schedule = build_schedule(ScheduleConfig(name="constant", warmup=WarmupConfig(fraction=0.0)),
                              base_lr=lr, total_steps=steps)
    trainer = Trainer(model=model, loss_fn=loss_fn, optimizer=opt, schedule=schedule, classification=True,
                      clip_threshold=clip_threshold, callbacks=[monitor, *callbacks])
    trainer.fit(X, y, X[:64], y[:64], epochs=epochs, batch_size=batch_size,
                generator=torch.Generator().manual_seed(0))
    return trainer


def kaiming_mlp(d: int = 8, width: int = 64, classes: int = 3, depth: int = 2) -> nn.Sequential:
    torch.manual_seed(0)
    layers, w = [], d
    for _ in range(depth):
        layers += [nn.Linear(w, width), nn.ReLU()]
        w = width
    model = nn.Sequential(*layers, nn.Linear(w, classes))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def test_rows_only_on_sampled_steps():
    monitor = HealthMonitor(every=5, log=False)
    trainer = fit(kaiming_mlp(), monitor)  # 2 epochs x 8 steps
    steps = sorted({r["step"] for r in monitor.rows})
    assert steps == [5, 10, 15] and trainer.step == 16
    per_step = [r for r in monitor.rows if r["step"] == 5]
    assert [(r["layer"], r["kind"]) for r in per_step] == [
        ("0", "weight"), ("1", "activation"), ("2", "weight"), ("3", "activation"), ("4", "weight")]
    for r in per_step:
        if r["kind"] == "weight":
            assert r["grad_norm"] > 0 and 0 < r["update_ratio"] < 1 and r["act_mean"] is None
        else:
            assert r["act_mean"] > 0 and r["act_std"] > 0 and r["dead_fraction"] is not None
            assert r["grad_norm"] is None and r["update_ratio"] is None


def test_update_ratio_matches_sgd_by_hand():
    # One full-batch SGD step without momentum or clipping: dW = -lr*g, so ratio = lr*|g|/|W|.
    X, y = blobs(n=64)
    model, lr = kaiming_mlp(), 0.1
    w0 = model[2].weight.detach().clone()
    loss = F.cross_entropy(model(X), y)
    (g,) = torch.autograd.grad(loss, model[2].weight)
    monitor = HealthMonitor(every=1, log=False)
    fit(model, monitor, X=X, y=y, lr=lr, epochs=1, batch_size=64)
    row = next(r for r in monitor.rows if r["layer"] == "2")
    assert row["step"] == 1
    assert row["grad_norm"] == pytest.approx(g.norm().item(), rel=1e-4)
    assert row["update_ratio"] == pytest.approx(lr * g.norm().item() / w0.norm().item(), rel=1e-4)
    moved = (model[2].weight.detach() - w0).norm() / w0.norm()
    assert row["update_ratio"] == pytest.approx(moved.item(), rel=1e-5)


def test_grad_norm_is_read_before_clipping():
    X, y = blobs(n=64)
    monitor = HealthMonitor(every=1, log=False)
    model = kaiming_mlp()
    loss = F.cross_entropy(model(X), y)
    (g,) = torch.autograd.grad(loss, model[0].weight)
    fit(model, monitor, X=X, y=y, epochs=1, batch_size=64, clip_threshold=1e-3)
    row = next(r for r in monitor.rows if r["layer"] == "0")
    assert row["grad_norm"] == pytest.approx(g.norm().item(), rel=1e-4) and row["grad_norm"] > 1e-3


def test_log_false_collects_the_warnings_without_logging_them(caplog):
    model = kaiming_mlp()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)
    monitor = HealthMonitor(every=3, log=False)
    with caplog.at_level(logging.DEBUG, logger="nnrecipe"):
        fit(model, monitor)
    assert monitor.warnings and not [r for r in caplog.records if r.name.startswith("nnrecipe")]


def test_healthy_kaiming_relu_mlp_has_no_warnings():
    monitor = HealthMonitor(every=2, log=False)
    fit(kaiming_mlp(), monitor, epochs=3)
    assert monitor.rows and monitor.warnings == []


def test_dead_relu_warning_when_biases_are_minus_100(caplog):
    model = kaiming_mlp()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)
    monitor = HealthMonitor(every=3)
    with caplog.at_level(logging.WARNING, logger="nnrecipe"):
        fit(model, monitor)
    seen = [r.getMessage() for r in caplog.records if r.name == "nnrecipe.recipe.health"]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "nnrecipe.recipe.health")
    dead = [r for r in monitor.rows if r["layer"] == "1"]
    assert dead and all(r["dead_fraction"] == 1.0 for r in dead)
    msgs = [m for m in monitor.warnings if "dead units" in m and " in layer 1 (" in m]
    assert len(msgs) == 1 and msgs[0].startswith("warning: dead units at step 3 in layer 1 (100% of ReLU")
    assert seen == monitor.warnings  # logged once per (layer, problem), same messages


def test_vanishing_gradient_warning_on_deep_sigmoid_net():
    torch.manual_seed(0)
    layers, w = [], 8
    for _ in range(6):
        layers += [nn.Linear(w, 32), nn.Sigmoid()]
        w = 32
    model = nn.Sequential(*layers, nn.Linear(w, 3))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
    monitor = HealthMonitor(every=4, log=False)
    fit(model, monitor)
    vanishing = [m for m in monitor.warnings if m.startswith("warning: vanishing gradient at step 4 in layer ")]
    assert any(" in layer 0 (" in m for m in vanishing)
    assert not any(" in layer 12 (" in m for m in monitor.warnings)  # the output layer is the reference
    assert len(vanishing) == len(set(vanishing))


def test_exploding_gradient_warning_on_a_jump():
    scale = {"value": 1.0}

    class Jump(Callback):
        def on_epoch_end(self, trainer, logs):
            scale["value"] = 1e4

    monitor = HealthMonitor(every=2, log=False)
    fit(kaiming_mlp(), monitor, lr=1e-9, loss_fn=lambda out, y: scale["value"] * F.cross_entropy(out, y),
        callbacks=[Jump()])
    exploding = [m for m in monitor.warnings if "exploding gradient" in m]
    assert exploding and all(" at step 10 " in m for m in exploding)  # first sample of epoch 2


def test_non_finite_gradient_is_reported_when_training_diverges():
    model = kaiming_mlp()
    with torch.no_grad():
        model[0].weight[0, 0] = math.nan
    monitor = HealthMonitor(every=1, log=False)
    with pytest.raises(TrainingDiverged):
        fit(model, monitor)
    assert any(m.startswith("warning: exploding gradient at step 1 in layer ") for m in monitor.warnings)
    assert {r["step"] for r in monitor.rows} == {1}
    assert all(r["update_ratio"] is None for r in monitor.rows)


def test_hooks_removed_after_fit():
    model = kaiming_mlp()
    monitor = HealthMonitor(every=3, log=False)
    trainer = fit(model, monitor)
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    for p in model.parameters():
        assert not getattr(p, "_post_accumulate_grad_hooks", None)
    assert not trainer.optimizer._optimizer_step_pre_hooks
    assert not trainer.optimizer._optimizer_step_post_hooks


def test_every_must_be_positive():
    with pytest.raises(ValueError):
        HealthMonitor(every=0)


def test_write_health_csv(tmp_path):
    monitor = HealthMonitor(every=4, log=False)
    fit(kaiming_mlp(), monitor)
    path = tmp_path / "health.csv"
    write_health_csv(monitor.rows, path)
    with path.open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    assert len(rows) == len(monitor.rows)
    weight = next(r for r in rows if r["kind"] == "weight")
    assert weight["act_mean"] == "" and float(weight["update_ratio"]) > 0
    assert int(weight["step"]) % 4 == 0
