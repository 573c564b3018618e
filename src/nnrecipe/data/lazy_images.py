"""Image folders read lazily (``data.lazy: true``): scanned once, then decoded one image per sample.

For folders whose pixels do not fit in memory. `scan_image_folder` walks the folder with the rules of
`nnrecipe.data.images` (same listing and order, same `decode_image`, same errors and
``skip_bad_images``) and decodes every file once, keeping per-image moments instead of pixels:

    image i, channel c, n = H·W pixels:  m_ic = mean,  M2_ic = Σ (x − m_ic)²,  min_ic, max_ic

Which files are readable decides the rows, so the seeded split is the in-memory path's exactly. The
training split's per-channel statistics combine these exactly (Chan, Golub & LeVeque 1979, pairwise
update with equal counts n):

    μ_c  = (1/N) Σ_i m_ic
    σ_c² = (1/(N·n)) [Σ_i M2_ic + n Σ_i (m_ic − μ_c)²]          (population σ, ddof = 0)

which is `ChannelNormalizer.fit` over all training pixels at once, to rounding (~1e-15), with no
two images in memory together; σ_c is pinned to 0 for a constant channel (min = max), as there.
The scan runs in DataLoader worker processes (``train.workers``); only the first readable image,
which sets the size when ``data.image_size`` is not given, is read before them.

`ImageFolderDataset[i]` decodes file i with `decode_image`, broadcasts gray to the folder's channel
count, divides by 255 and applies the run's `InputTransform` — the in-memory arithmetic, element for
element — and returns (float32 [C, H, W], target). A file that can no longer be read (changed
since the scan) is returned as the in-memory path's error (`UnreadableImage`) rather than raised,
so that it leaves a worker process whole (DataLoader would re-raise it as a RuntimeError with a
traceback); `nnrecipe.training.data_loading.DatasetBatches` raises it in the main process.

Hand-written because torchvision's ImageFolder (not a dependency) shares neither this package's
decoding and error rules nor its statistics, and no library computes them in a stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from nnrecipe.data.images import (UnreadableImage, bad_image_errors, check_readable, decode_image, image_hw,
                                  list_image_folder, unreadable_image)
from nnrecipe.data.normalize import ChannelNormalizer
from nnrecipe.data.transform import InputTransform


@dataclass(frozen=True)
class _Moments:
    """One image's per-channel moments (C_i = 1 for gray, 3 for colour)."""
    mean: np.ndarray  # [C_i]
    m2: np.ndarray  # Σ (x − mean)² [C_i]
    low: np.ndarray  # min [C_i]
    high: np.ndarray  # max [C_i]
    hw: tuple[int, int]  # (H, W) as decoded


class _ScanFiles(Dataset):
    """`_Moments` (or the `UnreadableImage`) of each file, for the scan's DataLoader."""

    def __init__(self, folder: Path, files: list[str], channels: int | None, size: tuple[int, int] | None):
        self.folder, self.files, self.channels, self.size = folder, files, channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> _Moments | UnreadableImage:
        rel = self.files[i]
        path = self.folder / rel
        try:
            pixels = decode_image(path, self.channels, self.size)
        except bad_image_errors() as e:
            return unreadable_image(e, rel, path)
        flat = pixels.reshape(-1, pixels.shape[2]).astype(np.float64) / 255.0  # as load_image_folder scales
        mean = flat.mean(axis=0)
        return _Moments(mean=mean, m2=((flat - mean) ** 2).sum(axis=0), low=flat.min(axis=0),
                        high=flat.max(axis=0), hw=pixels.shape[:2])


def _as_is(item):
    return item


def _scan(folder: Path, files: list[str], channels: int | None, size: tuple[int, int] | None, workers: int):
    """Each file's `_Moments` or `UnreadableImage`, in order."""
    start = 0
    while size is None and start < len(files):  # the first readable image sets the size for the rest
        result = _ScanFiles(folder, files[start:start + 1], channels, None)[0]
        yield result
        start += 1
        if isinstance(result, _Moments):
            size = result.hw
    if start < len(files):
        yield from DataLoader(_ScanFiles(folder, files[start:], channels, size), batch_size=None,
                              num_workers=workers, collate_fn=_as_is, generator=torch.Generator().manual_seed(0))


@dataclass(frozen=True, eq=False)
class FolderScan:
    """A labelled image folder, scanned: its readable files and their moments, no pixels."""
    folder: Path
    files: list[str]  # readable images relative to the folder, in reading order
    labels: np.ndarray  # class names (str) [N]
    image_shape: tuple[int, int, int]  # (C, H, W) every image is decoded to
    channels: int | None  # data.channels: the decoding mode
    skipped: int  # unreadable files skipped (skip_bad_images=True)
    mean: np.ndarray  # [N, C] per-image channel means
    m2: np.ndarray  # [N, C] per-image Σ (x − mean)²
    low: np.ndarray  # [N, C]
    high: np.ndarray  # [N, C]

    def __len__(self) -> int:
        return len(self.files)

    def channel_normalizer(self, rows: np.ndarray) -> ChannelNormalizer:
        """μ_c, σ_c over the images `rows` (module docstring)."""
        n = self.image_shape[1] * self.image_shape[2]
        means = self.mean[rows]
        mu = means.mean(axis=0)
        m2 = self.m2[rows].sum(axis=0) + n * ((means - mu) ** 2).sum(axis=0)
        std = np.sqrt(m2 / (len(rows) * n))
        std = np.where(self.low[rows].min(axis=0) == self.high[rows].max(axis=0), 0.0, std)
        return ChannelNormalizer(mean=mu, std=std)

    def dataset(self, rows: np.ndarray, targets: np.ndarray, transform: InputTransform) -> ImageFolderDataset:
        return ImageFolderDataset(self.folder, [self.files[i] for i in rows], targets,
                                  image_shape=self.image_shape, channels=self.channels, transform=transform)


def scan_image_folder(folder: Path, source: str, *, image_size: int | tuple[int, int] | None = None,
                      channels: int | None = None, skip_bad_images: bool = False, workers: int = 0) -> FolderScan:
    """List a folder of class subfolders and decode every image once (module docstring); the same
    `UserError`s as `load_image_folder`, in the same cases."""
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    files, subdirs = list_image_folder(folder, source, require_target=True)
    kept, moments, skipped = [], [], 0
    results = _scan(folder, [rel for rel, _ in files], channels, image_hw(image_size), workers)
    for (rel, cls), result in zip(files, results, strict=True):
        if isinstance(result, UnreadableImage):
            if not skip_bad_images:
                try:
                    raise result
                finally:
                    del result  # no frame → error → traceback → frame cycle (it would keep the scan's workers)
            skipped += 1
            continue
        kept.append((rel, cls))
        moments.append(result)
    check_readable(folder, source, subdirs, kept, n_files=len(files), skipped=skipped, require_target=True)
    c = max(len(m.mean) for m in moments)  # gray next to colour: broadcast, as load_image_folder does

    def stacked(name: str) -> np.ndarray:
        return np.stack([np.broadcast_to(getattr(m, name), c) for m in moments])

    h, w = moments[0].hw
    return FolderScan(folder=folder, files=[rel for rel, _ in kept],
                      labels=np.asarray([cls for _, cls in kept], dtype=str), image_shape=(c, int(h), int(w)),
                      channels=channels, skipped=skipped,
                      mean=stacked("mean"), m2=stacked("m2"), low=stacked("low"), high=stacked("high"))


class ImageFolderDataset(Dataset):
    """Images decoded on demand: holds file paths, targets and the transform, never pixels."""

    def __init__(self, folder: Path, files: list[str], targets: np.ndarray, *, image_shape: tuple[int, int, int],
                 channels: int | None, transform: InputTransform):
        targets = np.asarray(targets)
        self.folder, self.files = Path(folder), list(files)
        # the dtypes `nnrecipe.prepare.to_tensors` gives: class indices long, regression targets float32
        self.targets = torch.as_tensor(targets, dtype=torch.long if targets.dtype.kind in "iu" else torch.float32)
        self.image_shape, self.transform = tuple(image_shape), transform
        # A one-channel folder was all gray at the scan, where channels=None and 1 decode alike; 1
        # also keeps a file recoloured since then from breaking the batch's shape.
        self.channels = 1 if self.image_shape[0] == 1 else channels

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        """Image i as float64 [C, H, W] in [0, 1], before the transform; raises `UnreadableImage`."""
        rel = self.files[i]
        path = self.folder / rel
        c, h, w = self.image_shape
        try:
            pixels = decode_image(path, self.channels, (h, w))
        except bad_image_errors() as e:
            raise unreadable_image(e, rel, path) from None
        raw = np.empty((c, h, w), dtype=np.uint8)
        raw[:] = pixels.transpose(2, 0, 1)  # broadcasts a gray [1, H, W] to every channel
        return raw.astype(np.float64) / 255.0

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | UnreadableImage:
        try:
            raw = self.read(i)
        except UnreadableImage as e:
            return e  # returned, not raised: see the module docstring
        x = self.transform.apply(raw.reshape(1, -1))[0]
        return torch.as_tensor(x, dtype=torch.float32), self.targets[i]
