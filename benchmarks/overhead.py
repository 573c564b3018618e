"""Training-loop overhead: nnrecipe's `Trainer` vs a minimal hand-written PyTorch loop.

Same MLP 64→512→512→10, same AdamW, batch 256, 100k synthetic in-memory rows. Prints two ratios,
both measured in this one run (no stored numbers):
  1. fit-loop throughput / hand-loop throughput          (target ≥ 0.95), with clipping off (the
     same algorithm as the hand loop) and with fit's default global-norm clipping (against the hand
     loop without and with torch's clip_grad_norm_); best-of and the median of per-round ratios
  2. tensor-index batching / DataLoader(TensorDataset)   (target ≥ 3×), for a full training epoch
     and for the batching alone.

    python benchmarks/overhead.py [--rows 100000] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nnrecipe.config import ClipConfig, OptimizerConfig, ScheduleConfig
from nnrecipe.models import MLP
from nnrecipe.training.callbacks import EarlyStopping, History
from nnrecipe.training.loop import Trainer
from nnrecipe.training.optim import build_optimizer
from nnrecipe.training.schedules import build_schedule

BATCH = 256


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MLP(64, 10, hidden=(512, 512), activation="relu")


def hand_loop(X, y, epochs: int, batches, clip: bool = False) -> float:
    model = make_model(0)
    params = list(model.parameters())
    # the Trainer's own optimizer (AdamW, no decay on biases): the loops differ, not the algorithm
    opt = build_optimizer(model, OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.01))
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in batches(X, y):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:  # what fit does by default: global-norm clipping at τ = 1
                torch.nn.utils.clip_grad_norm_(params, ClipConfig().threshold)
            opt.step()
    return time.perf_counter() - start


def index_batches(X, y):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), BATCH):
        idx = perm[i:i + BATCH]
        yield X[idx], y[idx]


def loader_batches(X, y):
    yield from DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True)


def trainer_loop(X, y, Xv, yv, epochs: int, clip: str = "norm") -> float:
    model = make_model(0)
    opt = build_optimizer(model, OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.01))
    steps = epochs * -(-len(X) // BATCH)
    schedule = build_schedule(ScheduleConfig(name="cosine"), base_lr=1e-3, total_steps=steps)
    trainer = Trainer(model=model, loss_fn=F.cross_entropy, optimizer=opt, schedule=schedule,
                      classification=True, clip_mode=clip, clip_threshold=ClipConfig().threshold,
                      callbacks=[History(), EarlyStopping(patience=0)])
    start = time.perf_counter()
    trainer.fit(X, y, Xv, yv, epochs=epochs, batch_size=BATCH, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def batching_only(X, y, batches, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        for xb, yb in batches(X, y):
            pass
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(args.rows, 64, generator=g)
    y = torch.randint(0, 10, (args.rows,), generator=g)
    Xv, yv = X[:2048], y[:2048]  # the trainer validates once per epoch, as fit does
    rows = args.rows * args.epochs
    # Interleaved (A, B, C, D, A, B, ...), best of `repeats` each: on a shared machine the speed
    # drifts by ±15% between runs, and interleaving spreads the drift over every variant alike.
    times: dict[str, list[float]] = {"hand": [], "ours": [], "noclip": [], "loader": [], "hand_clip": []}
    for _ in range(args.repeats):
        times["hand"].append(hand_loop(X, y, args.epochs, index_batches))
        times["ours"].append(trainer_loop(X, y, Xv, yv, args.epochs))
        times["noclip"].append(trainer_loop(X, y, Xv, yv, args.epochs, clip="none"))
        times["loader"].append(hand_loop(X, y, args.epochs, loader_batches))
        times["hand_clip"].append(hand_loop(X, y, args.epochs, index_batches, clip=True))
    hand, ours, ours_noclip, loader, hand_clip = (min(times[k]) for k in ("hand", "ours", "noclip", "loader",
                                                                          "hand_clip"))

    def median_ratio(a: str, b: str) -> str:  # each round's own ratio, then the median over rounds
        r = sorted(x / y for x, y in zip(times[a], times[b]))
        return f"{r[len(r) // 2]:.3f}  (range {r[0]:.3f}-{r[-1]:.3f})"
    only_index = batching_only(X, y, index_batches, args.repeats)
    only_loader = batching_only(X, y, loader_batches, args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rows} rows x {args.epochs} epochs, "
          f"batch {BATCH}, best of {args.repeats}")
    print(f"hand-written loop (tensor indexing):   {rows / hand:12.0f} rows/s")
    print(f"nnrecipe Trainer, default norm clip:   {rows / ours:12.0f} rows/s")
    print(f"nnrecipe Trainer, clip none:           {rows / ours_noclip:12.0f} rows/s")
    print(f"hand-written loop (DataLoader):        {rows / loader:12.0f} rows/s")
    print(f"hand-written loop + clip_grad_norm_:   {rows / hand_clip:12.0f} rows/s")
    print(f"ratio fit/hand, same algorithm:       {hand / ours_noclip:8.3f}   (target >= 0.95; fit still "
          "logs the pre-clip norm)")
    print(f"ratio fit/hand, same algorithm, median of the {args.repeats} rounds: {median_ratio('hand', 'noclip')}")
    print(f"ratio fit/hand, fit's default clip:   {hand / ours:8.3f}   (clipping is extra work the hand loop skips)")
    print(f"ratio fit/hand, both clipping:        {hand_clip / ours:8.3f}   (the hand loop with clip_grad_norm_)")
    print(f"ratio fit/hand, both clipping, median of the {args.repeats} rounds: {median_ratio('hand_clip', 'ours')}")
    print(f"ratio indexing/DataLoader, training:  {loader / hand:8.2f}x  (target >= 3x)")
    print(f"ratio indexing/DataLoader, batching:  {only_loader / only_index:8.2f}x")


if __name__ == "__main__":
    main()
