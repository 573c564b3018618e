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

Lazily-loaded data (``data.lazy``: `nnrecipe.data.lazy_images.ImageFolderDataset`) always takes this
path, for evaluation too: `DatasetBatches.in_order` yields ``eval_batch_size`` rows at a time in
dataset order (`nnrecipe.training.loop.predict_logits` concatenates the logits, never the inputs).
A dataset may return an exception instead of a sample (a file it cannot read); the batch it falls
in comes out of the workers as that exception, which is raised in the main process as it is
(DataLoader would wrap a raised one in a RuntimeError carrying the worker's traceback).

Why hand-written: torch's DataLoader does the loading; this file only feeds it the loop's order.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate


class _EpochSampler:
    """A batch sampler whose batches are set by the loop before each epoch."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def _collate(samples: list):
    """default_collate, or the first sample that is an exception (passed on whole)."""
    bad = next((s for s in samples if isinstance(s, BaseException)), None)
    return bad if bad is not None else default_collate(samples)


class DatasetBatches:
    """A dataset of (x, y) samples that the trainer reads batch by batch through a DataLoader.

    Pass it to ``Trainer.fit`` in place of the training tensors (with ``y=None``).
    """

    def __init__(self, dataset: Dataset, *, device: torch.device, workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False, eval_batch_size: int = 256):
        self.dataset, self.device = dataset, torch.device(device)
        self.eval_batch_size = eval_batch_size
        self._sampler = _EpochSampler()
        self.loader = DataLoader(dataset, batch_sampler=self._sampler, num_workers=workers, collate_fn=_collate,
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
        for batch in self.loader:
            if isinstance(batch, BaseException):
                try:
                    raise batch
                finally:  # the traceback keeps this frame: holding the error too would make a cycle that
                    del batch  # keeps the workers (and their iterator) alive until the garbage collector runs
            xb, yb = batch
            yield xb.to(self.device, non_blocking=non_blocking), yb.to(self.device, non_blocking=non_blocking)

    def in_order(self) -> Iterator[torch.Tensor]:
        """The inputs on the device, ``eval_batch_size`` rows at a time, in dataset order."""
        n, b = len(self.dataset), self.eval_batch_size
        for xb, _ in self.batches(torch.arange(i, min(i + b, n)) for i in range(0, n, b)):
            yield xb

    def close(self) -> None:
        """End persistent worker processes now. Otherwise they live as long as this object, which a
        reference cycle (an exception's traceback holding the fit's frames) can stretch to the next
        garbage collection, where each worker's shutdown may wait out torch's 5 s join timeout."""
        iterator = self.loader._iterator  # where DataLoader keeps persistent workers (torch's own field)
        if iterator is not None:
            iterator._shutdown_workers()
        self.loader._iterator = None

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The inputs of rows `index` (an index tensor or a slice) as one tensor on the device, so
        code that indexes a tensor of inputs (the doctor's steps) can take a lazily-read split."""
        if isinstance(index, slice):
            index = torch.arange(len(self.dataset))[index]
        (xb, _), = self.batches([torch.as_tensor(index).cpu()])  # drains the loader
        return xb


def use_dataloader(setting: str) -> bool:
    """``train.loader``: auto and tensor keep the in-memory fast path; dataloader forces a DataLoader."""
    return setting == "dataloader"


def dataset_batches(dataset: Dataset, *, device: torch.device, workers: int = 0, pin_memory: str | bool = "auto",
                    persistent_workers: bool = False, eval_batch_size: int = 256) -> DatasetBatches:
    """`DatasetBatches` with the ``train`` options; ``pin_memory`` auto: on for CUDA."""
    device = torch.device(device)
    pin = device.type == "cuda" if pin_memory == "auto" else bool(pin_memory)
    return DatasetBatches(dataset, device=device, workers=workers, pin_memory=pin,
                          persistent_workers=persistent_workers, eval_batch_size=eval_batch_size)


def tensor_batches(X: torch.Tensor, y: torch.Tensor, *, device: torch.device, workers: int = 0,
                   pin_memory: str | bool = "auto", persistent_workers: bool = False) -> DatasetBatches:
    """In-memory rows through a DataLoader (``train.loader=dataloader``)."""
    return dataset_batches(TensorDataset(X.cpu(), y.cpu()), device=device, workers=workers, pin_memory=pin_memory,
                           persistent_workers=persistent_workers)


def close_streams(splits: dict) -> None:
    """`DatasetBatches.close` for every split of `nnrecipe.prepare.to_streams` (tensors: nothing to do)."""
    for X, _ in splits.values():
        if isinstance(X, DatasetBatches):
            X.close()


def first_rows(X: torch.Tensor | DatasetBatches, n: int) -> torch.Tensor:
    """X[:n] of a tensor or of a dataset read through `DatasetBatches`."""
    return X[:n]  # a DatasetBatches reads just these rows


def training_data(train, X: torch.Tensor, y: torch.Tensor, *, device: torch.device):
    """What ``Trainer.fit`` takes as training data for the `train` config section: the tensors
    (fast path) or, with ``loader=dataloader`` or lazily-loaded data (X already a `DatasetBatches`),
    (`DatasetBatches`, None)."""
    if isinstance(X, DatasetBatches):
        return X, None
    if not use_dataloader(train.loader):
        return X, y
    return tensor_batches(X, y, device=device, workers=train.workers, pin_memory=train.pin_memory,
                          persistent_workers=train.persistent_workers), None
