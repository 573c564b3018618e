"""Data-parallel training (DistributedDataParallel) under ``torchrun``.

Launched as ``torchrun --nproc-per-node N -m nnrecipe fit …``, every process (rank r of W) holds the
whole data and a replica of the model; DDP averages the gradients over the ranks after each
backward. Batches: all ranks draw the SAME permutation each epoch (rank 0's batch-order generator
state is broadcast at the start of every fresh epoch, so every rank's generator agrees even if
augmentation drew different amounts on different ranks); a global batch of B·W consecutive
indices is split into W near-equal contiguous slices and rank r trains on slice r.
``train.batch_size`` = B is per process; the global batch is B·W.

Exactness. With per-rank mean losses ℓ_r over n_r rows of a global batch of N rows, DDP's default
(1/W) Σ_r ∇ℓ_r equals the global mean gradient (1/N) Σ_i ∇ℓ_i only if every n_r = N/W. A DDP
communication hook therefore all-reduces Σ_r (n_r/N) ∇ℓ_r = (1/N) Σ_i ∇ℓ_i instead, exact also for
the last, shorter batch. So W processes at batch B train like one process at batch B·W (same
batches, same updates, up to floating-point summation order). A last global batch with fewer rows
than ranks is skipped (DDP cannot step with an idle rank). BatchNorm statistics stay per process
(no SyncBatchNorm), and dropout masks come from the same seed on every rank.

Token losses (sequence runs): a seq2seq loss is the mean over the batch's non-pad target tokens,
so the exact weight of rank r is its share of the global batch's tokens, T_r/T, not n_r/N. With
``row_weights`` (tokens per training row) the hook uses w_r = Σ_{i∈r} t_i / Σ_i t_i, computed on
the device from the batch indices (no host sync), and the loss enters the epoch statistics as
ℓ_r·w_r·N/n_r, so that the rows-weighted sum below gives Σ_r w_r ℓ_r = the global batch loss.

Epoch statistics: each rank sums (loss·rows, rows, correct, counted) over its own rows; one
all-reduce gives the global sums, so train_loss/train_accuracy are weighted by rows exactly as in
a single process. Validation runs on every rank on the whole split, and rank 0's numbers are
broadcast so early stopping and plateau schedules decide alike everywhere.

Only rank 0 writes (run directory, checkpoints, logs). A mid-epoch checkpoint must hold every
rank's statistics rows of the epoch so far, so before one is written the rows are summed into
rank 0's (`gather_step_stats`). Resuming (``--resume``, or automatically when --out holds an
incomplete run, which is what torchrun's elastic restart ``--max-restarts`` finds), rank 0 reads
its last checkpoint and broadcasts it, so other machines need not see rank 0's files. The process
group of a restarted attempt uses its own key prefix in torchrun's store, whose keys outlive the
dead workers. Hand-written because the data are in-memory tensors batched by indexing (no
Dataset/DistributedSampler in the loop), and the permutation must stay the one a single process
would draw so that checkpoints resume bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nnrecipe.training.callbacks import Callback
from nnrecipe.errors import UserError
from nnrecipe.training.checkpoint import INCOMPLETE, restore

FAULT_ENV = "NNRECIPE_FAULT_EXIT"  # "RANK:STEP": that rank exits at that step (first attempt only; tests)


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank: 0 when not distributed."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def restart_count() -> int:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


@dataclass
class Distributed:
    """This process's place in the process group; `nnrecipe.training.loop.Trainer.distributed`."""

    rank: int
    world_size: int
    device: torch.device
    weight: float | torch.Tensor = 1.0  # n_r/N (or T_r/T) of the current global batch; the hook reads it
    row_weights: torch.Tensor | None = None  # tokens per training row (module docstring); None: rows
    global_rows: int = 0  # N of the current global batch

    def shard_batches(self, batches):
        """This rank's slice of each global batch (index tensors); sets `weight` = n_r/N (T_r/T with
        `row_weights`) for the step about to run. A global batch with fewer rows than ranks is skipped."""
        for idx in batches:
            if len(idx) < self.world_size:
                continue
            part = torch.tensor_split(idx, self.world_size)[self.rank]
            self.global_rows = len(idx)
            if self.row_weights is None:
                self.weight = len(part) / len(idx)
            else:
                w = self.row_weights.to(idx.device)
                self.weight = w[part].sum() / w[idx].sum()
            yield part

    def loss_share(self, loss: torch.Tensor, rows: int) -> torch.Tensor:
        """The loss as it enters the rows-weighted epoch sum: ℓ_r, or ℓ_r·w_r·N/n_r with row weights."""
        return loss if self.row_weights is None else loss * (self.weight * (self.global_rows / rows))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Σ over ranks (one all-reduce)."""
        values = values.to(self.device, copy=True)  # NCCL reduces device tensors only
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values.cpu()

    def from_rank0(self, *values: float | None) -> tuple:
        """Rank 0's values on every rank (None stays None)."""
        t = torch.tensor([float("nan") if v is None else v for v in values], dtype=torch.float64,
                         device=self.device)
        dist.broadcast(t, src=0)
        return tuple(None if v is None else x for v, x in zip(values, t.tolist()))

    def broadcast_object(self, obj):
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()


def setup(device: torch.device) -> Distributed | None:
    """Join the process group when ``WORLD_SIZE`` > 1 (gloo on CPU, NCCL on CUDA, where
    ``LOCAL_RANK`` picks the GPU); None for a single process. Returns the device to train on too."""
    world = world_size_from_env()
    if world <= 1:
        return None
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserError(f"distributed training runs on cpu or cuda, not {device.type}", "train.device",
                        "set train.device=cpu or cuda")
    if not dist.is_initialized():
        # torchrun's store outlives an elastic restart and still holds the dead workers' addresses
        # under the default group's keys: a prefix per attempt keeps the new group from reading them.
        store, rank_, world_ = next(dist.rendezvous("env://"))
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank_, world_size=world_,
                                store=dist.PrefixStore(f"nnrecipe/attempt-{restart_count()}", store))
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def teardown(ctx: Distributed | None) -> None:
    """Wait for every rank (rank 0 may still be writing the run), then leave the group."""
    if ctx is None or not dist.is_initialized():
        return
    ctx.barrier()
    dist.destroy_process_group()


def ddp_forward(model: nn.Module, ctx: Distributed, forward):
    """A `Trainer.forward` that runs `model` through its DDP wrapper (the gradient all-reduce hooks).

    The trainer keeps the plain module, so checkpoints and early stopping's best weights carry the
    same parameter names as a single-process run's (no ``module.`` prefix)."""
    wrapped = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    wrapped.register_comm_hook(ctx, _weighted_sum_hook)
    return lambda _model, inputs: forward(wrapped, inputs)


def _weighted_sum_hook(ctx: Distributed, bucket):
    """Σ_r (n_r/N)·g_r over ranks instead of DDP's mean (1/W)·Σ_r g_r (module docstring)."""
    grads = bucket.buffer().mul_(ctx.weight)
    return dist.all_reduce(grads, async_op=True).get_future().then(lambda fut: fut.value()[0])


class SharedBatchOrder(Callback):
    """At the start of every fresh epoch, put rank 0's batch-order generator state on every rank."""

    order = 40  # after the checkpointer (30) restored the generator on resume

    def __init__(self, ctx: Distributed):
        self.ctx = ctx

    def on_epoch_begin(self, trainer, logs):
        if trainer.progress.start_generator_state is not None:  # a resumed epoch replays its saved state
            return
        state = trainer.generator.get_state().to(self.ctx.device)  # NCCL broadcasts device tensors only
        dist.broadcast(state, src=0)
        trainer.generator.set_state(state.cpu())


def gather_step_stats(progress, ctx: Distributed) -> None:
    """Fold every rank's per-step rows of the epoch so far into rank 0's; zero them elsewhere.

    Rows are (loss, grad norm, correct, counted) with `progress.sizes` rows each; summed as
    (loss·rows, rows, correct, counted) over ranks, rank 0 keeps (Σ loss·rows / Σ rows, …, Σ rows)
    and the other ranks (0, …, 0), so the epoch-end sum over ranks is unchanged, and a mid-epoch
    checkpoint (written by rank 0 alone) holds the statistics of every rank. Idempotent."""
    k = len(progress.sizes)
    if k == 0:
        return
    stats = progress.stats
    rows = stats[:k].detach().double().cpu()
    sizes = torch.tensor(progress.sizes, dtype=torch.float64)
    total = ctx.sum(torch.stack((rows[:, 0] * sizes, sizes, rows[:, 2], rows[:, 3]), dim=1))
    if ctx.rank == 0:
        stats[:k, 0] = (total[:, 0] / total[:, 1].clamp_min(1)).to(stats)
        stats[:k, 2], stats[:k, 3] = total[:, 2].to(stats), total[:, 3].to(stats)
        progress.sizes[:] = [int(n) for n in total[:, 1].tolist()]  # in place: the loop holds this list
    else:
        stats[:k, 0] = stats[:k, 2] = stats[:k, 3] = 0  # the grad norm (column 1) is the same on every rank
        progress.sizes[:] = [0] * k


class GatherStepStats(Callback):
    """Before each mid-epoch checkpoint: `gather_step_stats` on every rank."""

    order = 25  # before the checkpointer (30) saves the rows

    def __init__(self, ctx: Distributed, every_steps: int):
        self.ctx, self.every_steps = ctx, every_steps

    def on_step_end(self, trainer, logs):
        gather_step_stats(trainer.progress, self.ctx)


class ResumeOnly(Callback):
    """On ranks > 0: restore rank 0's checkpoint when the fit begins, write nothing."""

    order = 30

    def __init__(self, state: dict | None):
        self.state = state

    def on_fit_begin(self, trainer, logs):
        if self.state is not None:
            restore(trainer, self.state)
            self.state = None
            p = trainer.progress  # rank 0's rows hold every rank's steps so far: count them once
            if p.sizes:
                p.stats[:, 0] = p.stats[:, 2] = p.stats[:, 3] = 0
                p.sizes[:] = [0] * len(p.sizes)


class FaultInjection(Callback):
    """Testing elastic restarts: with ``NNRECIPE_FAULT_EXIT=RANK:STEP``, that rank dies (``os._exit``,
    like a SIGKILL: nothing flushed) after optimizer step STEP, on torchrun's first attempt only."""

    every_steps = 1

    def __init__(self, spec: str, this_rank: int):
        r, s = spec.split(":")
        self.rank, self.step = int(r), int(s)
        self.this_rank = this_rank

    def on_step_end(self, trainer, logs):
        if self.this_rank == self.rank and trainer.step == self.step and restart_count() == 0:
            os._exit(17)


def fault_injection(this_rank: int) -> FaultInjection | None:
    spec = os.environ.get(FAULT_ENV)
    return FaultInjection(spec, this_rank) if spec else None


# -- wiring into `nnrecipe.driver` -----------------------------------------------------------------

def join(cfg, *, out, resume: bool, device: torch.device) -> tuple[Distributed | None, bool]:
    """Under torchrun with several processes: join the group on `device`, and decide on rank 0 (for
    every rank) whether to resume: asked for, or --out already holds an incomplete run
    (``INCOMPLETE`` marker), which is what an elastic restart (``--max-restarts``) or a rerun of
    the same command finds. (None, resume) for a single process. Which tasks may run here is the
    driver's to say (`nnrecipe.tasks.base.Task.data_parallel`)."""
    if world_size_from_env() <= 1:
        return None, resume
    ctx = setup(device)
    if ctx.rank == 0 and not resume and out:
        resume = (Path(out) / INCOMPLETE).exists()
    return ctx, ctx.broadcast_object(resume)


def attach(trainer, ctx: Distributed, checkpointer, *, checkpoint_every_steps: int | None) -> None:
    """Make `trainer` data-parallel: DDP forward, sharded batches, shared batch order; ranks > 0
    get rank 0's checkpoint state (broadcast, so other machines need not see its files)."""
    trainer.distributed = ctx
    trainer.forward = ddp_forward(trainer.model, ctx, trainer.forward)
    state = ctx.broadcast_object(checkpointer.resume if ctx.rank == 0 and checkpointer is not None else None)
    trainer.callbacks.append(SharedBatchOrder(ctx))
    if checkpoint_every_steps:
        trainer.callbacks.append(GatherStepStats(ctx, checkpoint_every_steps))
    if ctx.rank > 0 and state is not None:
        trainer.callbacks.append(ResumeOnly(state))
    fault = fault_injection(ctx.rank)
    if fault is not None:
        trainer.callbacks.append(fault)
