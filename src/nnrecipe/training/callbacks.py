"""Callbacks: everything that is not the core step (Keras 3's hook names).

Hooks, each receiving the trainer and a plain ``logs`` dict:
``on_fit_begin``, ``on_epoch_begin``, ``on_batch_end`` (log steps only: `logs` then holds synced
floats), ``on_step_end`` (only for a callback with ``every_steps`` = N, after every N-th optimizer
step), ``on_validation_end``, ``on_epoch_end``, ``on_fit_end``. A callback stops training by
setting ``trainer.should_stop = True``. Callbacks run in ascending ``order``: early stopping (0)
restores the best weights before anything later (checkpoint writers, 10+) reads them.

Callbacks with state a resumed run needs (`History`, `EarlyStopping`) have ``state_dict`` /
``load_state_dict``: plain values and tensors, which `nnrecipe.training.checkpoint` saves.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


class Callback:
    order = 50
    every_steps: int | None = None  # N: the trainer calls on_step_end after every N-th step

    def on_fit_begin(self, trainer, logs: dict) -> None: ...
    def on_epoch_begin(self, trainer, logs: dict) -> None: ...
    def on_batch_end(self, trainer, logs: dict) -> None: ...
    def on_step_end(self, trainer, logs: dict) -> None: ...
    def on_validation_end(self, trainer, logs: dict) -> None: ...
    def on_epoch_end(self, trainer, logs: dict) -> None: ...
    def on_fit_end(self, trainer, logs: dict) -> None: ...


class History(Callback):
    """One row per epoch: the columns of history.csv."""

    order = 5
    columns = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
               "grad_norm", "clip_fraction", "seconds")

    def __init__(self):
        self.rows: list[dict] = []

    def on_epoch_end(self, trainer, logs):
        self.rows.append({k: logs.get(k) for k in self.columns})

    def state_dict(self) -> dict:
        return {"rows": [dict(row) for row in self.rows]}

    def load_state_dict(self, state: dict) -> None:
        self.rows = [{k: row.get(k) for k in self.columns} for row in state["rows"]]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Keeps a copy of the best weights (in memory) and restores them at the end of fit, also when
    training stopped for another reason (divergence, max epochs). patience = 0: never stops early,
    but the best weights are still restored (``restore_best=False`` keeps the last epoch's).
    Without the monitored value (no validation data) it neither stops nor restores.
    """

    order = 0

    def __init__(self, *, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best  # False: keep the last epoch's weights (e.g. to study overfitting)
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.wait = 0

    def on_fit_begin(self, trainer, logs):
        self.best_state = snapshot(trainer.model)

    def on_epoch_end(self, trainer, logs):
        value = logs.get(self.monitor)
        if value is None:  # nothing to monitor (a fit without validation data): the last weights stay
            self.best_state = None
            return
        if not math.isfinite(value):
            return
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, logs["epoch"], 0
            self.best_state = snapshot(trainer.model)
        else:
            self.wait += 1
            if self.patience and self.wait >= self.patience:
                trainer.should_stop = True

    def on_fit_end(self, trainer, logs):
        if self.best_state is not None and self.restore_best:
            trainer.model.load_state_dict(self.best_state)
        logs["best_epoch"] = self.best_epoch

    def state_dict(self) -> dict:
        # best = inf before the first finite epoch: stored as None so the state is strict JSON
        return {"best": self.best if math.isfinite(self.best) else None, "best_epoch": self.best_epoch,
                "wait": self.wait, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.best_epoch, self.wait = int(state["best_epoch"]), int(state["wait"])
        best = state["best_state"]
        self.best_state = None if best is None else {k: v.detach().clone() for k, v in best.items()}


class ProgressBar(Callback):
    """A rich progress bar over epochs with live loss/accuracy/LR; `stats` (logs -> text) replaces
    that text for log steps and epoch ends (a custom train_step's own columns)."""

    order = 90

    def __init__(self, total_epochs: int, *, description: str = "training",
                 stats: Callable[[dict], str] | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[stats]}"), transient=False)
        self.total, self.description, self.task = total_epochs, description, None
        self.stats = stats

    def on_fit_begin(self, trainer, logs):
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=self.total, stats="")

    def on_batch_end(self, trainer, logs):
        stats = self.stats(logs) if self.stats else f"loss {logs['loss']:.4f}  lr {logs['lr']:.2e}"
        self.progress.update(self.task, stats=stats)

    def on_epoch_end(self, trainer, logs):
        if self.stats:
            self.progress.update(self.task, completed=logs["epoch"], stats=self.stats(logs))
            return
        val, acc = logs.get("val_loss"), logs.get("val_accuracy")
        stats = f"train {logs['train_loss']:.4f}" + (f"  val {val:.4f}" if val is not None else "")
        stats += f"  val_acc {acc:.4f}" if acc is not None else ""
        self.progress.update(self.task, completed=logs["epoch"], stats=stats + f"  lr {logs['lr']:.2e}")

    def on_fit_end(self, trainer, logs):
        self.progress.stop()


def sorted_callbacks(callbacks: list[Callback]) -> list[Callback]:
    return sorted(callbacks, key=lambda c: c.order)


def snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
