"""Overhead of the training-health monitor: Trainer with vs without `HealthMonitor(every=50)`.

The digits-sized MLP 64→512→256→10, AdamW, batch 64, 50k synthetic in-memory rows, 2 epochs,
best of 3 for each variant (runs interleaved so drifting machine load hits both alike). Prints the
overhead measured in this run (no stored numbers); target ≤ 5 %.

    python benchmarks/monitors.py [--rows 50000] [--epochs 2] [--repeats 3] [--every 50]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nnrecipe.config import OptimizerConfig, ScheduleConfig
from nnrecipe.models import MLP
from nnrecipe.recipe.health import HealthMonitor
from nnrecipe.training.callbacks import History
from nnrecipe.training.loop import Trainer
from nnrecipe.training.optim import build_optimizer
from nnrecipe.training.schedules import build_schedule

BATCH = 64


def run(X, y, Xv, yv, epochs: int, every: int | None) -> tuple[float, HealthMonitor | None]:
    torch.manual_seed(0)
    model = MLP(64, 10, hidden=(512, 256), activation="relu")
    opt = build_optimizer(model, OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.01))
    steps = epochs * -(-len(X) // BATCH)
    schedule = build_schedule(ScheduleConfig(name="cosine"), base_lr=1e-3, total_steps=steps)
    monitor = HealthMonitor(every=every, warn=lambda msg: None) if every else None
    callbacks = [History()] + ([monitor] if monitor else [])
    trainer = Trainer(model=model, loss_fn=F.cross_entropy, optimizer=opt, schedule=schedule,
                      classification=True, callbacks=callbacks)
    start = time.perf_counter()
    trainer.fit(X, y, Xv, yv, epochs=epochs, batch_size=BATCH, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start, monitor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--every", type=int, default=50)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(args.rows, 64, generator=g)
    y = torch.randint(0, 10, (args.rows,), generator=g)
    Xv, yv = X[:2048], y[:2048]
    base, monitored, monitor = [], [], None
    for _ in range(args.repeats):
        base.append(run(X, y, Xv, yv, args.epochs, None)[0])
        seconds, monitor = run(X, y, Xv, yv, args.epochs, args.every)
        monitored.append(seconds)
    plain, with_monitor = min(base), min(monitored)
    rows = args.rows * args.epochs
    samples = len({r["step"] for r in monitor.rows})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rows} rows x {args.epochs} epochs, "
          f"batch {BATCH}, best of {args.repeats}")
    print(f"Trainer without monitor:              {rows / plain:12.0f} rows/s  ({plain:.3f} s)")
    print(f"Trainer with HealthMonitor(every={args.every}): {rows / with_monitor:10.0f} rows/s  "
          f"({with_monitor:.3f} s, {samples} sampled steps, {len(monitor.rows)} rows)")
    print(f"overhead:                             {100 * (with_monitor / plain - 1):8.2f} %  (target <= 5 %)")


if __name__ == "__main__":
    main()
