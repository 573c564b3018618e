"""The mini-batch training loop (Keras 3 / nanoGPT style: it fits on one screen).

Per step: LR from the schedule (a pure function of the step) → [augment the batch] → forward →
loss (+ L1/L2 penalty) → backward → clip (returns the pre-clip norm) → optimizer step → callbacks
on log steps. A parameter group's ``lr_scale`` (discriminative fine-tuning) multiplies the
scheduled LR for that group.

Augmentation (`nnrecipe.data.augment.Augmenter`) sees training batches only; it may return soft
targets (mixup/cutmix), which cross-entropy takes as class probabilities. Train accuracy always
counts the batch's own (unmixed) labels. Normalization layers whose parameters are all frozen stay
in eval mode (running statistics, not batch statistics) so a frozen backbone is really frozen.

Speed: in-memory data is batched by tensor indexing (``X[perm[i:i+B]]``), not a per-sample
Dataset + collate; running sums stay on the device and are read (``.item()``) only on log steps and
at epoch end. NaN/Inf guard: on the CPU the loss is already on the host, so it is checked every step
before the update is applied; on an accelerator it is checked on log steps and, if bad, the weights
of the last good epoch are restored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from nnrecipe.errors import TrainingDiverged
from nnrecipe.training.callbacks import Callback, snapshot, sorted_callbacks
from nnrecipe.training.clipping import clip_gradients


def iterate_batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device,
                    *, drop_singleton: bool = False):
    """Yield index tensors of a fresh random permutation, batch by batch."""
    perm = torch.randperm(n, generator=generator).to(device)
    stop = n - 1 if drop_singleton and n % batch_size == 1 else n  # BatchNorm cannot train on 1 row
    for start in range(0, stop, batch_size):
        yield perm[start:start + batch_size]


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out


def keep_frozen_norms_in_eval(model: nn.Module) -> None:
    """Put every norm layer whose parameters are all frozen back in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


@dataclass
class Trainer:
    model: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    schedule: object  # nnrecipe.training.schedules.Schedule
    classification: bool
    clip_mode: str = "norm"
    clip_threshold: float = 1.0
    penalty: Callable[[nn.Module], torch.Tensor | None] | None = None
    callbacks: list[Callback] = field(default_factory=list)
    log_every: int = 50
    nan_policy: str = "stop"  # "skip": drop a non-finite step and halve the LR from then on
    augment: Callable | None = None  # (x, y, generator) -> (x, target), training batches only
    step: int = 0
    should_stop: bool = False
    lr_factor: float = 1.0
    skipped_steps: int = 0

    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
        logits = predict_logits(self.model, X)
        loss = self.loss_fn(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item() if self.classification else None
        return loss, acc

    def _set_lr(self) -> float:
        lr = self.schedule.lr_at(self.step) * self.lr_factor
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _train_epoch(self, X, y, batch_size, generator, good_state):
        params = [p for p in self.model.parameters() if p.requires_grad]
        check_every_step = X.device.type == "cpu"
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
        # One row per step (loss, pre-clip norm, correct count), written on the device and read
        # once at epoch end: a single small op per step instead of a running sum per statistic.
        steps_max = -(-len(X) // batch_size)
        stats = torch.zeros(steps_max, 3, device=X.device)
        sizes = []
        self.model.train()
        keep_frozen_norms_in_eval(self.model)
        for idx in iterate_batches(len(X), batch_size, generator, X.device, drop_singleton=has_bn):
            xb, yb = X[idx], y[idx]
            target = yb
            if self.augment is not None:
                xb, target = self.augment(xb, yb, generator)
            lr = self._set_lr()
            logits = self.model(xb)
            loss = self.loss_fn(logits, target)
            extra = self.penalty(self.model) if self.penalty else None
            total = loss + extra if extra is not None else loss
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            grad_norm = clip_gradients(params, mode=self.clip_mode, threshold=self.clip_threshold)
            log_step = (self.step + 1) % self.log_every == 0
            if (check_every_step or log_step) and not self._guard(total.detach() + grad_norm, total,
                                                                  grad_norm, good_state):
                continue  # nan_policy "skip": this update is dropped
            self.optimizer.step()
            self.step += 1
            correct = (logits.detach().argmax(1) == yb).sum() if self.classification else grad_norm.new_zeros(())
            stats[len(sizes)] = torch.stack((loss.detach(), grad_norm, correct.to(stats.dtype)))
            sizes.append(len(idx))
            if log_step:
                logs = {"step": self.step, "loss": loss.item(), "lr": lr}
                for cb in self.callbacks:
                    cb.on_batch_end(self, logs)
        return self._epoch_summary(stats[: len(sizes)], sizes, lr if sizes else self.schedule.lr_at(self.step))

    def _epoch_summary(self, stats: torch.Tensor, sizes: list[int], lr: float) -> dict:
        weights = torch.tensor(sizes, dtype=stats.dtype, device=stats.device)
        seen, steps = max(sum(sizes), 1), max(len(sizes), 1)
        loss_sum, correct = (stats[:, 0] * weights).sum().item(), stats[:, 2].sum().item()
        # Only global-norm clipping has a threshold comparable to the global norm.
        count_clipped = self.clip_mode == "norm" and self.clip_threshold > 0
        return {
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen if self.classification else None,
            "grad_norm": stats[:, 1].sum().item() / steps,
            "clip_fraction": (stats[:, 1] > self.clip_threshold).sum().item() / steps if count_clipped else None,
            "lr": lr,
        }

    def _guard(self, probe, loss, grad_norm, good_state):
        """True when the step is finite. Otherwise stop before the update is applied (CPU) or roll
        back to the last good epoch (accelerators); with nan_policy "skip", drop the step, halve
        the LR and return False.

        `probe` = loss + ‖g‖ is finite iff both are (NaN and ±Inf propagate through the sum), so
        one check covers both on the common path.
        """
        if torch.isfinite(probe):
            return True
        if self.nan_policy == "skip" and loss.device.type == "cpu":
            self.optimizer.zero_grad(set_to_none=True)
            self.lr_factor *= 0.5
            self.skipped_steps += 1
            self.step += 1
            return False
        if loss.device.type != "cpu":
            self.model.load_state_dict(good_state["weights"])
        value = loss.item() if not torch.isfinite(loss) else grad_norm.item()
        raise TrainingDiverged(self.step, good_state["epoch"] + 1, value)

    def fit(self, X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor, y_val: torch.Tensor, *,
            epochs: int, batch_size: int, generator: torch.Generator) -> dict:
        self.callbacks = sorted_callbacks(self.callbacks)
        logs: dict = {"epochs": epochs}
        for cb in self.callbacks:
            cb.on_fit_begin(self, logs)
        on_accelerator = X.device.type != "cpu"
        good_state = {"epoch": 0, "weights": snapshot(self.model) if on_accelerator else None}
        epoch = 0
        try:
            for epoch in range(1, epochs + 1):
                start = time.perf_counter()
                for cb in self.callbacks:
                    cb.on_epoch_begin(self, {"epoch": epoch})
                row = {"epoch": epoch, **self._train_epoch(X, y, batch_size, generator, good_state)}
                row["val_loss"], row["val_accuracy"] = self.evaluate(X_val, y_val)
                if not math.isfinite(row["val_loss"]):
                    raise TrainingDiverged(self.step, epoch, row["val_loss"])
                for cb in self.callbacks:
                    cb.on_validation_end(self, row)
                self.schedule.observe(row["val_loss"])
                row["seconds"] = time.perf_counter() - start
                for cb in self.callbacks:
                    cb.on_epoch_end(self, row)
                good_state = {"epoch": epoch, "weights": snapshot(self.model) if on_accelerator else None}
                if self.should_stop:
                    break
        finally:
            logs["epochs_run"] = epoch
            for cb in self.callbacks:
                cb.on_fit_end(self, logs)
        return logs
