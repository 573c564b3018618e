"""The mini-batch training loop (Keras 3 / nanoGPT style: it fits on one screen).

Per step: LR from the schedule (a pure function of the step) → [augment the batch] → forward →
loss (+ L1/L2 penalty) → backward → clip (returns the pre-clip norm) → optimizer step → callbacks
on log steps [→ callbacks with ``every_steps`` N, every N steps: checkpoints]. A parameter group's ``lr_scale`` (discriminative fine-tuning) multiplies the
scheduled LR for that group.

Augmentation (`nnrecipe.data.augment.Augmenter`) sees training batches only; it may return soft
targets (mixup/cutmix), which cross-entropy takes as class probabilities. Train accuracy always
counts the batch's own (unmixed) labels. Normalization layers whose parameters are all frozen stay
in eval mode (running statistics, not batch statistics) so a frozen backbone is really frozen.

Sequence models: the inputs may be a tuple of aligned tensors (seq2seq: source ids, decoder
inputs), batched row by row like one tensor; ``forward(model, inputs)`` maps them to logits. Token
logits [B, T, V] count accuracy over the non-pad target positions.

Speed: in-memory data is batched by tensor indexing (``X[perm[i:i+B]]``), not a per-sample
Dataset + collate; running sums stay on the device and are read (``.item()``) only on log steps and
at epoch end. NaN/Inf guard: on the CPU the loss is already on the host, so it is checked every step
before the update is applied; on an accelerator it is checked on log steps and, if bad, the weights
of the last good epoch are restored. Data that is not a tensor in memory comes as a
`nnrecipe.training.data_loading.DatasetBatches` (``fit(batches, None, ...)``): a DataLoader fed
the same index batches. ``accumulate`` = N: each optimizer step takes N·B rows, run as N
micro-batches of B (`_forward_backward`); the schedule counts optimizer steps. ``precision``:
autocast and the fp16 GradScaler (`nnrecipe.training.precision`).

A custom step (``train_step``, Keras 3's ``train_step`` override): models with their own update
rule (a GAN's two players) pass ``train_step(trainer, xb, yb) -> stats``, which replaces forward →
… → optimizer step and applies its updates itself; the Trainer keeps the rest (batches, LR
schedule on every group of ``trainer.optimizer``, guard, callbacks, checkpoints). `stats` is a
1-D tensor of per-batch statistics left on the device, named by ``train_step.columns``; each
epoch row holds their means over the epoch's rows. The guard checks them (any NaN/Inf stops: the
update is already applied, so ``nan_policy`` "skip" does not apply). Without validation data
(``fit(X, y, None, None)``) no evaluation runs: ``val_loss`` is None, which early stopping,
plateau schedules and checkpoint retention ignore.

Resume (`nnrecipe.training.checkpoint`): ``trainer.progress`` says where the loop is (epoch,
batches done, the batch-order generator's state at the epoch's start, the epoch's statistics rows
so far). A checkpoint saves it; a resumed epoch draws its permutation again from the saved state
and skips the batches already done, so it sees the very same batches in the same order.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from nnrecipe.errors import TrainingDiverged
from nnrecipe.training.callbacks import Callback, snapshot, sorted_callbacks
from nnrecipe.training.clipping import AutoClip, clip_gradients
from nnrecipe.training.data_loading import DatasetBatches
from nnrecipe.training.precision import Precision


def iterate_batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device,
                    *, drop_singleton: bool = False):
    """Yield index tensors of a fresh random permutation, batch by batch."""
    perm = torch.randperm(n, generator=generator).to(device)
    stop = n - 1 if drop_singleton and n % batch_size == 1 else n  # BatchNorm cannot train on 1 row
    for start in range(0, stop, batch_size):
        yield perm[start:start + batch_size]


Inputs = torch.Tensor | tuple[torch.Tensor, ...]  # a tuple: several aligned inputs (e.g. src, tgt_in)


def take(X: Inputs, idx) -> Inputs:
    """Rows `idx` of X (of every tensor of a tuple)."""
    return tuple(t[idx] for t in X) if isinstance(X, tuple) else X[idx]


def num_rows(X: Inputs) -> int:
    return len(X[0]) if isinstance(X, tuple) else len(X)


def call_model(model: nn.Module, xb: Inputs) -> torch.Tensor:
    """model(xb), or model(*xb) for a tuple; the first output when the model returns several."""
    out = model(*xb) if isinstance(xb, tuple) else model(xb)
    return out[0] if isinstance(out, tuple) else out


def row_accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, counted): class logits [B, C] → argmax hits over B rows; token logits [B, T, V]
    → hits over the non-pad (id ≠ 0) target positions."""
    hits = logits.argmax(-1) == y
    if logits.dim() == 3:
        real = y != 0
        return (hits & real).sum(), real.sum()
    return hits.sum(), y.new_tensor(len(y))


@torch.no_grad()
def predict_logits(model: nn.Module, X: Inputs, *, batch_size: int = 4096, forward=call_model) -> torch.Tensor:
    was_training = model.training
    model.eval()
    if isinstance(X, DatasetBatches):  # lazily-loaded data: its own batch size, inputs never concatenated
        out = torch.cat([forward(model, xb) for xb in X.in_order()])
    else:
        n = num_rows(X)
        out = torch.cat([forward(model, take(X, slice(i, i + batch_size))) for i in range(0, n, batch_size)])
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
class EpochProgress:
    """Where the loop is: what a checkpoint needs to replay the current epoch exactly."""

    epoch: int = 1  # the epoch in progress (1-based)
    batches_done: int = 0  # batches of it already run (dropped non-finite steps included)
    start_generator_state: torch.Tensor | None = None  # batch-order generator before this epoch's permutation
    stats: torch.Tensor | None = None  # [steps, 5] per-step rows (loss, pre-clip norm, correct, counted, clipped)
    #                                    or [steps, len(train_step.columns)] with a custom train_step
    sizes: list[int] = field(default_factory=list)  # batch size of each kept row of `stats`
    lr: float | None = None  # LR of the last batch


@dataclass
class Trainer:
    model: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    schedule: object  # nnrecipe.training.schedules.Schedule
    classification: bool
    clip_mode: str = "norm"
    clip_threshold: float = 1.0
    autoclip: AutoClip | None = None  # clip_mode "autoclip": the norm history τ comes from (also a callback)
    clip_exempt: frozenset[int] = frozenset()  # ids of parameters counted in the norm but never clipped
    penalty: Callable[[nn.Module], torch.Tensor | None] | None = None
    callbacks: list[Callback] = field(default_factory=list)
    log_every: int = 50
    nan_policy: str = "stop"  # "skip": drop a non-finite step and halve the LR from then on
    augment: Callable | None = None  # (x, y, generator) -> (x, target), training batches only
    forward: Callable = call_model  # (model, batch inputs) -> logits; sequence models pass their own
    accumulate: int = 1  # micro-batches of batch_size per optimizer step (gradient accumulation)
    precision: Precision | None = None  # autocast / GradScaler (nnrecipe.training.precision); None: fp32
    distributed: object | None = None  # nnrecipe.training.distributed.Distributed under torchrun; None: one process
    # (trainer, xb, yb) -> 1-D stats tensor named by its `columns`: replaces forward/backward/clip/step (docstring)
    train_step: Callable | None = None
    # token data: `nnrecipe.training.buckets.LengthBuckets` (order + take); None: random batches of whole rows
    batching: object | None = None
    profiler: object | None = None  # `nnrecipe.training.profiling.StepProfiler` (train.profile); None: no clock
    step: int = 0
    should_stop: bool = False
    lr_factor: float = 1.0
    skipped_steps: int = 0
    progress: EpochProgress = field(default_factory=EpochProgress)
    generator: torch.Generator | None = field(default=None, init=False)  # batch order/augmentation, during fit
    _stepped: list = field(default_factory=list, init=False, repr=False)  # callbacks with every_steps

    def evaluate(self, X: Inputs, y: torch.Tensor) -> tuple[float, float | None]:
        logits = predict_logits(self.model, X, forward=self.forward)
        loss = self.loss_fn(logits, y).item()
        if not self.classification:
            return loss, None
        correct, counted = row_accuracy(logits, y)
        return loss, correct.item() / max(counted.item(), 1)

    def _phase(self, name: str):
        """The profiler's clock around one phase of the step; nothing at all without a profiler."""
        return self.profiler.phase(name) if self.profiler is not None else contextlib.nullcontext()

    def _set_lr(self) -> float:
        lr = self.schedule.lr_at(self.step) * self.lr_factor
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _epoch_batches(self, n, batch_size, generator, device, drop_singleton):
        """This epoch's batches. A fresh epoch records the generator state its permutation comes
        from; a resumed one draws the permutation again from that state, puts the generator back
        where the checkpoint left it (augmentation draws) and skips the batches already done."""
        p = self.progress
        draw = self.batching.order if self.batching is not None else iterate_batches
        if p.start_generator_state is None:
            p.start_generator_state = generator.get_state()
            return draw(n, batch_size, generator, device, drop_singleton=drop_singleton)
        now = generator.get_state()
        generator.set_state(p.start_generator_state)
        batches = list(draw(n, batch_size, generator, device, drop_singleton=drop_singleton))
        generator.set_state(now)
        return batches[p.batches_done:]

    def _forward_backward(self, xb, yb, batch_size, generator, has_bn):
        """Forward + backward of one optimizer step's rows, `batch_size` rows at a time (gradient
        accumulation). Each micro-batch's mean loss is weighted by its share m_k/M of the step's M
        rows, so the summed gradient is that of the mean loss over all M rows: the same update as
        one batch of M for models without batch-dependent layers. The penalty is added once.
        Returns (loss, loss + penalty, correct, counted), detached."""
        m = len(yb)
        bounds = list(range(0, m, batch_size)) + [m]
        if has_bn and len(bounds) > 2 and m - bounds[-2] == 1:
            del bounds[-2]  # BatchNorm cannot train on 1 row: it joins the previous micro-batch
        loss_sum = penalty = correct = counted = None
        for k in range(len(bounds) - 1):
            part = slice(bounds[k], bounds[k + 1])
            with self._phase("forward"):
                xm, ym = (xb, yb) if len(bounds) == 2 else (take(xb, part), yb[part])
                target = ym
                if self.augment is not None:
                    xm, target = self.augment(xm, ym, generator)
                with self.precision.autocast() if self.precision is not None else contextlib.nullcontext():
                    logits = self.forward(self.model, xm)
                    loss = self.loss_fn(logits, target)
                if len(bounds) > 2:
                    loss = loss * ((bounds[k + 1] - bounds[k]) / m)
                extra = self.penalty(self.model) if self.penalty and k == len(bounds) - 2 else None
                total = loss + extra if extra is not None else loss
            with self._phase("backward"):
                self.precision.backward(total) if self.precision is not None else total.backward()
            with self._phase("forward"):
                penalty = extra.detach() if extra is not None else None
                loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
                if self.classification:
                    hits, seen = row_accuracy(logits.detach(), ym)
                    correct, counted = (hits, seen) if correct is None else (correct + hits, counted + seen)
        total = loss_sum + penalty if penalty is not None else loss_sum
        return loss_sum, total, correct, counted

    def _train_epoch(self, X, y, batch_size, generator, good_state):
        params = [p for p in self.model.parameters() if p.requires_grad]
        device = X.device if isinstance(X, DatasetBatches) else y.device
        check_every_step = device.type == "cpu"
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
        # One row per step (loss, pre-clip norm, correct, counted, clipped), written on the device and read
        # once at epoch end: a single small op per step instead of a running sum per statistic.
        n = num_rows(X)
        step_rows = batch_size * self.accumulate  # rows per optimizer step
        columns = self.train_step.columns if self.train_step is not None else None
        stats = torch.zeros(-(-n // step_rows), len(columns) if columns else 5, device=device)
        p = self.progress
        sizes, lr = p.sizes, p.lr  # a resumed epoch continues its rows
        if sizes:
            stats[: len(sizes)] = p.stats.to(device)
        p.stats = stats
        self.model.train()
        keep_frozen_norms_in_eval(self.model)
        loader = X if isinstance(X, DatasetBatches) else None
        world = self.distributed.world_size if self.distributed is not None else 1
        order = self._epoch_batches(n, step_rows * world, generator, torch.device("cpu") if loader else device, has_bn)
        if self.distributed is not None:  # every rank draws the same global batches and takes its slice
            order = self.distributed.shard_batches(order)
        cut = self.batching.take if self.batching is not None else lambda X, y, idx: (take(X, idx), y[idx])
        batches = loader.batches(order) if loader else (cut(X, y, idx) for idx in order)
        for xb, yb in self.profiler.batches(batches) if self.profiler is not None else batches:
            p.batches_done += 1
            lr = p.lr = self._set_lr()
            log_step = (self.step + 1) % self.log_every == 0
            if self.train_step is not None:
                with self._phase("train_step"):
                    row = self.train_step(self, xb, yb)  # applies its own updates
                if check_every_step or log_step:
                    self._guard_stats(row, good_state)
                self.step += 1
            else:
                self.optimizer.zero_grad(set_to_none=True)
                loss, total, correct, counted = self._forward_backward(xb, yb, batch_size, generator, has_bn)
                with self._phase("optimizer"):
                    if self.precision is not None:
                        self.precision.unscale(self.optimizer)  # clip true gradients, not scaled ones
                    grad_norm = clip_gradients(params, mode=self.clip_mode, threshold=self.clip_threshold,
                                               autoclip=self.autoclip, exempt=self.clip_exempt)
                    # with a GradScaler, Inf gradients are the scaler's to skip: only the loss is guarded
                    probe = total if self.precision is not None and self.precision.scaler else total + grad_norm
                    if (check_every_step or log_step) and not self._guard(probe, total, grad_norm, good_state):
                        continue  # nan_policy "skip": this update is dropped
                    self.precision.step(self.optimizer) if self.precision is not None else self.optimizer.step()
                self.step += 1
                if not self.classification:
                    correct = counted = grad_norm.new_zeros(())
                # under DDP with token losses: this rank's share of the global batch loss
                share = self.distributed.loss_share(loss, len(yb)) if self.distributed is not None else loss
                row = torch.stack((share.to(stats.dtype), grad_norm, correct.to(stats.dtype),
                                   counted.to(stats.dtype), self._clipped(grad_norm).to(stats.dtype)))
            stats[len(sizes)] = row
            sizes.append(len(yb))
            with self._phase("callbacks"):
                if log_step:
                    values = dict(zip(columns, row.tolist())) if columns else {"loss": loss.item()}
                    logs = {"step": self.step, **values, "lr": lr}
                    for cb in self.callbacks:
                        cb.on_batch_end(self, logs)
                for cb in self._stepped:  # pure int arithmetic: no host sync unless a callback runs
                    if self.step % cb.every_steps == 0:
                        cb.on_step_end(self, {"step": self.step})
        return self._epoch_summary(stats[: len(sizes)], sizes, lr if sizes else self.schedule.lr_at(self.step))

    def _epoch_summary(self, stats: torch.Tensor, sizes: list[int], lr: float) -> dict:
        weights = torch.tensor(sizes, dtype=stats.dtype, device=stats.device)
        seen, steps = max(sum(sizes), 1), max(len(sizes), 1)
        if self.train_step is not None:  # the step's statistics: means over the epoch's rows, one sync
            means = ((stats * weights[:, None]).sum(0) / seen).tolist()
            return {**dict(zip(self.train_step.columns, means)), "lr": lr}
        loss_sum, correct = (stats[:, 0] * weights).sum().item(), stats[:, 2].sum().item()
        counted = max(stats[:, 3].sum().item(), 1)
        if self.distributed is not None:  # each rank saw its own rows: sum (loss·rows, rows, correct, counted)
            loss_sum, seen, correct, counted = self.distributed.sum(torch.tensor(
                [loss_sum, sum(sizes), correct, stats[:, 3].sum().item()], dtype=torch.float64)).tolist()
            seen, counted = max(seen, 1), max(counted, 1)
        return {
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / counted if self.classification else None,
            "grad_norm": stats[:, 1].sum().item() / steps,
            "clip_fraction": stats[:, 4].sum().item() / steps if self._counts_clipped() else None,
            "lr": lr,
        }

    def _counts_clipped(self) -> bool:
        # Only global-norm modes have a threshold comparable to the global norm.
        return self.clip_mode == "autoclip" or (self.clip_mode == "norm" and self.clip_threshold > 0)

    def _clipped(self, grad_norm: torch.Tensor) -> torch.Tensor:
        """1 when this step's pre-clip norm exceeded τ (on the device), else 0."""
        if not self._counts_clipped():
            return grad_norm.new_zeros(())
        tau = self.autoclip.last if self.clip_mode == "autoclip" else self.clip_threshold
        return (grad_norm > tau).float()

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

    def _guard_stats(self, stats: torch.Tensor, good_state) -> None:
        """A train_step's statistics must all be finite. Its update is already applied, so a bad
        step stops the fit (on accelerators after restoring the weights of the last good epoch),
        whatever ``nan_policy`` says."""
        if torch.isfinite(stats).all():
            return
        if stats.device.type != "cpu":
            self.model.load_state_dict(good_state["weights"])
        raise TrainingDiverged(self.step, good_state["epoch"] + 1, stats[~torch.isfinite(stats)][0].item())

    def fit(self, X: Inputs, y: torch.Tensor, X_val: Inputs | None, y_val: torch.Tensor | None, *,
            epochs: int, batch_size: int, generator: torch.Generator) -> dict:
        """Train for `epochs` (fewer if a callback stops it); X_val None: no validation (val_loss None)."""
        if self.train_step is not None and self.distributed is not None:
            raise ValueError("a custom train_step runs in one process (its statistics are not reduced across ranks)")
        self.callbacks = sorted_callbacks(self.callbacks)
        self._stepped = [cb for cb in self.callbacks if getattr(cb, "every_steps", None)]
        self.generator = generator
        logs: dict = {"epochs": epochs}
        for cb in self.callbacks:
            cb.on_fit_begin(self, logs)  # a checkpoint callback may restore `progress` here
        on_accelerator = (X.device if isinstance(X, DatasetBatches) else y.device).type != "cpu"
        epoch = self.progress.epoch - 1
        good_state = {"epoch": epoch, "weights": snapshot(self.model) if on_accelerator else None}
        # A run resumed after early stopping had stopped it has no epoch left.
        remaining = () if self.should_stop else range(self.progress.epoch, epochs + 1)
        try:
            for epoch in remaining:
                start = time.perf_counter()
                for cb in self.callbacks:
                    cb.on_epoch_begin(self, {"epoch": epoch})
                row = {"epoch": epoch, **self._train_epoch(X, y, batch_size, generator, good_state)}
                self.progress = EpochProgress(epoch=epoch + 1)  # what an end-of-epoch checkpoint resumes
                row["val_loss"] = row["val_accuracy"] = None
                if X_val is not None:
                    row["val_loss"], row["val_accuracy"] = self.evaluate(X_val, y_val)
                    if self.distributed is not None:  # early stopping/plateau must decide alike on every rank
                        row["val_loss"], row["val_accuracy"] = self.distributed.from_rank0(row["val_loss"],
                                                                                            row["val_accuracy"])
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
