"""Early stopping: patience, min_delta, and the best weights restored at the end."""

import torch

from nnrecipe.training.callbacks import EarlyStopping


class _FakeTrainer:
    def __init__(self):
        self.model = torch.nn.Linear(2, 1)
        self.should_stop = False


def _run(stopper, trainer, val_losses):
    stopper.on_fit_begin(trainer, {})
    weights = {}
    for epoch, loss in enumerate(val_losses, start=1):
        with torch.no_grad():
            trainer.model.weight.fill_(float(epoch))  # the weights of epoch e are all e
        weights[epoch] = trainer.model.weight.clone()
        stopper.on_epoch_end(trainer, {"epoch": epoch, "val_loss": loss})
        if trainer.should_stop:
            break
    logs = {}
    stopper.on_fit_end(trainer, logs)
    return epoch, logs


def test_stops_after_patience_and_restores_best():
    trainer = _FakeTrainer()
    last, logs = _run(EarlyStopping(patience=2), trainer, [1.0, 0.5, 0.6, 0.7, 0.4])
    assert last == 4 and logs["best_epoch"] == 2
    assert torch.all(trainer.model.weight == 2.0)


def test_min_delta_ignores_tiny_improvements():
    trainer = _FakeTrainer()
    last, logs = _run(EarlyStopping(patience=2, min_delta=0.1), trainer, [1.0, 0.95, 0.92, 0.5])
    assert last == 3 and logs["best_epoch"] == 1


def test_patience_zero_never_stops_but_still_restores_best():
    trainer = _FakeTrainer()
    last, logs = _run(EarlyStopping(patience=0), trainer, [1.0, 0.2, 0.9, 0.8, 0.7])
    assert last == 5 and logs["best_epoch"] == 2 and torch.all(trainer.model.weight == 2.0)


def test_restore_best_false_keeps_the_last_epoch():
    trainer = _FakeTrainer()
    last, logs = _run(EarlyStopping(patience=0, restore_best=False), trainer, [1.0, 0.2, 0.9, 0.8, 0.7])
    assert last == 5 and logs["best_epoch"] == 2 and torch.all(trainer.model.weight == 5.0)
