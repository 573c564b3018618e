"""Speed on one machine: the Trainer against a hand-written loop and Lightning, and its options.

Every row is a ratio of two configurations measured in this one run, interleaved A/B/A/B and
best-of-N, so load from other processes hits both sides (absolute rows/s are printed too, but are
only comparable within the run):

  trainer / hand loop          same MLP, AdamW, batch, tensor-index batches, clipping off (target ≥ 0.95)
  trainer / Lightning          `lightning.Trainer` on the same model and data (skipped if not installed)
  dataloader / tensor path     `train.loader=dataloader` (TensorDataset, 0 workers) vs indexing
  bf16 / fp32 (CPU)            autocast bf16 vs fp32, same Trainer
  accumulate 4×B / 1×4B        gradient accumulation's cost for the same optimizer-step batch
  achieved / peak FLOP/s       wide MLP training (6·params FLOPs per row) vs a big fp32 matmul
  lazy folder / in-memory      one epoch on --images generated 8×8 PNGs decoded per batch (data.lazy,
                               0 and 2 workers) vs the same images as tensors; the scan is not timed

    OMP_NUM_THREADS=1 python benchmarks/speed.py [--rows 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from nnrecipe.config import ScheduleConfig
from nnrecipe.data.images import load_image_folder
from nnrecipe.data.lazy_images import scan_image_folder
from nnrecipe.data.normalize import ChannelNormalizer
from nnrecipe.data.transform import InputTransform
from nnrecipe.models import MLP
from nnrecipe.training.data_loading import DatasetBatches, tensor_batches
from nnrecipe.training.loop import Trainer
from nnrecipe.training.precision import Precision
from nnrecipe.training.schedules import build_schedule

BATCH = 256


def model_for(width: int, depth: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return MLP(64, 10, hidden=(width,) * depth, activation="relu")


def trainer_run(X, y, *, width=512, precision=None, loader=False, accumulate=1, batch=BATCH,
                images: DatasetBatches | None = None) -> float:
    """One epoch; image rows X [N, 1, 8, 8] are flattened for the MLP; with `images` (the same rows
    through a DataLoader) the training batches come from there."""
    model = model_for(width) if X.dim() == 2 else torch.nn.Sequential(torch.nn.Flatten(), model_for(width))
    steps = -(-len(X) // (batch * accumulate))
    trainer = Trainer(model=model, loss_fn=F.cross_entropy,
                      optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01),
                      schedule=build_schedule(ScheduleConfig(name="constant", warmup={"fraction": 0}),
                                              base_lr=1e-3, total_steps=steps),
                      classification=True, clip_mode="none", log_every=50, accumulate=accumulate,
                      precision=Precision.for_device(precision, X.device) if precision else None)
    data = (tensor_batches(X, y, device=X.device), None) if loader else (X, y)
    data = (images, None) if images is not None else data
    start = time.perf_counter()
    trainer.fit(*data, X[:256], y[:256], epochs=1, batch_size=batch, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def hand_run(X, y, *, width=512) -> float:
    model = model_for(width)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    perm = torch.randperm(len(X), generator=g)
    for i in range(0, len(X), BATCH):
        idx = perm[i:i + BATCH]
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():  # the Trainer validates once per epoch: do the same
        F.cross_entropy(model(X[:256]), y[:256]).item()
    return time.perf_counter() - start


def lightning_run(X, y, *, width=512) -> float | None:
    try:
        import lightning as L
    except ImportError:
        return None
    import logging
    import warnings
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # its banners would bury the table
    warnings.filterwarnings("ignore", module="lightning")
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model_for(width)

        def training_step(self, batch, _):
            xb, yb = batch
            return F.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.01)

    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True)
    start = time.perf_counter()
    trainer.fit(Module(), loader)
    return time.perf_counter() - start


def interleaved(a, b, repeats: int) -> tuple[float, float]:
    """Best-of-`repeats` seconds of a() and b(), run A/B/A/B."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(a())
        tb.append(b())
    return min(ta), min(tb)


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """fp32 FLOP/s of an n×n matmul (2n³ FLOPs), best of `repeats`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def image_folder(n: int, root: Path) -> Path:
    """n gray 8×8 PNGs in 10 class folders (the pixels are noise: only speed is measured)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        path = root / f"c{i % 10}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(path)
    return root


def lazy_rows(n_images: int, repeats: int) -> None:
    """Epoch time of the lazily-read folder against the same images in memory (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = image_folder(n_images, Path(tmp))
        table = load_image_folder(root, "bench", require_target=True)
        transform = InputTransform(channel=ChannelNormalizer.fit(table.X, table.image_shape),
                                   image_shape=table.image_shape)
        X = torch.as_tensor(transform.apply(table.X), dtype=torch.float32)
        y = torch.as_tensor(np.unique(table.y, return_inverse=True)[1])
        scan = scan_image_folder(root, "bench")
        dataset = scan.dataset(np.arange(len(scan)), y.numpy(), transform)
        for workers in (0, 2):
            images = DatasetBatches(dataset, device="cpu", workers=workers, persistent_workers=workers > 0,
                                    eval_batch_size=BATCH)
            t_lazy, t_mem = interleaved(lambda images=images: trainer_run(X, y, images=images),
                                        lambda: trainer_run(X, y), repeats)
            images.close()
            print(f"lazy folder ({workers} workers) / in-memory: lazy {n_images / t_lazy:9.0f} images/s  "
                  f"in-memory {n_images / t_mem:9.0f} images/s  ratio {t_mem / t_lazy:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--images", type=int, default=2000, help="PNGs in the lazy-folder row (0: skip it)")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(args.rows, 64, generator=g), torch.randint(0, 10, (args.rows,), generator=g)
    n, r = args.rows, args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {n} rows, batch {BATCH}, best of {r}")

    def row(name, a, b, label_a, label_b):
        ta, tb = interleaved(a, b, r)
        print(f"{name:28s} {label_a} {n / ta:9.0f} rows/s  {label_b} {n / tb:9.0f} rows/s  ratio {tb / ta:.3f}")

    row("trainer / hand loop", lambda: trainer_run(X, y), lambda: hand_run(X, y), "trainer", "hand")
    if lightning_run(X[:512], y[:512]) is None:  # also a warm-up of Lightning's imports
        print("trainer / Lightning          skipped: lightning is not installed (pip install 'nnrecipe[bench]')")
    else:
        row("trainer / Lightning", lambda: trainer_run(X, y), lambda: lightning_run(X, y), "trainer", "lightning")
    row("dataloader / tensor path", lambda: trainer_run(X, y, loader=True), lambda: trainer_run(X, y),
        "dataloader", "tensor")
    row("bf16 / fp32 (CPU autocast)", lambda: trainer_run(X, y, precision="bf16"), lambda: trainer_run(X, y),
        "bf16", "fp32")
    row("accumulate 4×64 / 1×256", lambda: trainer_run(X, y, accumulate=4, batch=64), lambda: trainer_run(X, y),
        "4x64", "1x256")

    if args.images:
        lazy_rows(args.images, r)

    width = 2048
    peak = matmul_peak()
    params = sum(p.numel() for p in model_for(width).parameters())
    t = min(trainer_run(X, y, width=width) for _ in range(r))
    achieved = 6 * params * n / t  # forward 2·params + backward 4·params FLOPs per row
    peak = max(peak, matmul_peak())  # measured again after: the better of the two
    print(f"wide MLP 64→{width}→{width}→10: {achieved / 1e9:.1f} GFLOP/s of a {peak / 1e9:.1f} GFLOP/s "
          f"fp32 matmul peak = {achieved / peak:.2f}")


if __name__ == "__main__":
    main()
