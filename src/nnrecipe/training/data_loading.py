"""The DataLoader path: training batches read from a `torch.utils.data.Dataset` by worker processes.

In-memory data takes the fast path (``X[perm[i:i+B]]`` on the device, `nnrecipe.training.loop`):
no per-sample ``__getitem__`` and no collate. A dataset that does not fit in memory (or whose
samples are decoded on the fly) goes through a DataLoader instead. The loop still decides the
batch order: it draws the same permutation from the same generator and hands the index batches
to a batch sampler, so for the same data the DataLoader path sees the very same batches in the
same order as the tensor path, and a resumed run skips the batches already done in the same way.

``train.loader``: ``auto`` → tensor path for in-memory data; ``dataloader`` forces this path
(a ``TensorDataset`` over the in-memory rows: useful to measure the difference, see
benchmarks/). ``train.workers`` worker processes, ``train.pin_memory`` (auto: on for CUDA: page-locked
host memory lets the copy to the GPU run asynchronously, ``non_blocking=True``),
``train.persistent_workers`` (keep the workers between epochs: one DataLoader per fit).

Why hand-written: torch's DataLoader does the loading; this file only feeds it the loop's order.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


class _EpochSampler:
    """A batch sampler whose batches are set by the loop before each epoch."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class DatasetBatches:
    """A dataset of (x, y) samples that the trainer reads batch by batch through a DataLoader.

    Pass it to ``Trainer.fit`` in place of the training tensors (with ``y=None``).
    """

    def __init__(self, dataset: Dataset, *, device: torch.device, workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False):
        self.dataset, self.device = dataset, torch.device(device)
        self._sampler = _EpochSampler()
        self.loader = DataLoader(dataset, batch_sampler=self._sampler, num_workers=workers,
                                 pin_memory=pin_memory and self.device.type == "cuda",
                                 persistent_workers=persistent_workers and workers > 0,
                                 # its own generator: each iter() draws a worker base seed, which
                                 # from the global RNG would shift dropout and init vs the tensor path
                                 generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, index_batches: Iterable[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y) on the device for each index batch, in the given order."""
        self._sampler.batches = [idx.tolist() for idx in index_batches]
        non_blocking = self.loader.pin_memory
        for xb, yb in self.loader:
            yield xb.to(self.device, non_blocking=non_blocking), yb.to(self.device, non_blocking=non_blocking)


def use_dataloader(setting: str) -> bool:
    """``train.loader``: auto and tensor keep the in-memory fast path; dataloader forces a DataLoader."""
    return setting == "dataloader"


def tensor_batches(X: torch.Tensor, y: torch.Tensor, *, device: torch.device, workers: int = 0,
                   pin_memory: str | bool = "auto", persistent_workers: bool = False) -> DatasetBatches:
    """In-memory rows through a DataLoader (``train.loader=dataloader``). ``pin_memory`` auto: CUDA."""
    device = torch.device(device)
    pin = device.type == "cuda" if pin_memory == "auto" else bool(pin_memory)
    return DatasetBatches(TensorDataset(X.cpu(), y.cpu()), device=device, workers=workers, pin_memory=pin,
                          persistent_workers=persistent_workers)


def training_data(train, X: torch.Tensor, y: torch.Tensor, *, device: torch.device):
    """What ``Trainer.fit`` takes as training data for the `train` config section: the tensors
    (fast path) or, with ``loader=dataloader``, (`DatasetBatches`, None)."""
    if not use_dataloader(train.loader):
        return X, y
    return tensor_batches(X, y, device=device, workers=train.workers, pin_memory=train.pin_memory,
                          persistent_workers=train.persistent_workers), None
