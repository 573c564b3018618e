"""What `train.profile` costs: the Trainer with the profiler off and on, against a hand-written loop.

Small MLP 64→128→128→10 at batch 64 (many cheap steps, so per-step bookkeeping shows), AdamW,
clipping off, 20k in-memory rows, one epoch per measurement. The three are run interleaved
(hand / off / on, repeated) and each ratio is best-of-N seconds measured in this one run:

  hand loop / profile off      what the whole Trainer costs over a bare loop at this small step size
  profile off / profile on     the phase clock's own cost (two clock reads per phase)
  before / profile off         with ``--before OLD_LOOP.py`` (e.g. ``git show REV:src/nnrecipe/training/loop.py
                               > /tmp/loop_before.py``): the Trainer of that file, without the profiler
                               hooks, against today's with them off (target ≈ 1: off costs nothing)

    OMP_NUM_THREADS=1 python benchmarks/profile_overhead.py [--rows 20000] [--repeats 5] [--before FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import torch
import torch.nn.functional as F

from nnrecipe.config import ScheduleConfig
from nnrecipe.models import MLP
from nnrecipe.training.loop import Trainer
from nnrecipe.training.profiling import StepProfiler
from nnrecipe.training.schedules import build_schedule

BATCH, WIDTH = 64, 128


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return MLP(64, 10, hidden=(WIDTH, WIDTH))


def _trainer_class(path: str):
    spec = importlib.util.spec_from_file_location("loop_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["loop_before"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.Trainer


def trainer_run(X, y, *, profile: bool, trainer_class=Trainer) -> float:
    model = _model()
    trainer = trainer_class(model=model, loss_fn=F.cross_entropy,
                      optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01),
                      schedule=build_schedule(ScheduleConfig(name="constant", warmup={"fraction": 0}),
                                              base_lr=1e-3, total_steps=-(-len(X) // BATCH)),
                      classification=True, clip_mode="none")
    if profile:
        trainer.profiler = StepProfiler(device=X.device)
        trainer.callbacks.append(trainer.profiler)
    start = time.perf_counter()
    trainer.fit(X, y, X[:256], y[:256], epochs=1, batch_size=BATCH, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def hand_run(X, y) -> float:
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    start = time.perf_counter()
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    for i in range(0, len(X), BATCH):
        idx = perm[i:i + BATCH]
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # the Trainer checks each step's loss for NaN on the CPU: do the same
    with torch.no_grad():
        F.cross_entropy(model(X[:256]), y[:256]).item()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", default=None, help="a loop.py whose Trainer is timed as 'before'")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(args.rows, 64, generator=g), torch.randint(0, 10, (args.rows,), generator=g)
    trainer_run(X[:2000], y[:2000], profile=False)  # warm-up: allocator, first-call costs
    before = _trainer_class(args.before) if args.before else None
    times = {"hand": [], "off": [], "on": [], **({"before": []} if before else {})}
    for _ in range(args.repeats):
        times["hand"].append(hand_run(X, y))
        times["off"].append(trainer_run(X, y, profile=False))
        times["on"].append(trainer_run(X, y, profile=True))
        if before:
            times["before"].append(trainer_run(X, y, profile=False, trainer_class=before))
    best = {k: min(v) for k, v in times.items()}
    print(f"rows {args.rows}, batch {BATCH}, best of {args.repeats}: "
          + ", ".join(f"{k} {v:.3f} s ({args.rows / v:,.0f} rows/s)" for k, v in best.items()))
    print(f"hand loop / profile off (target ≈ 1): {best['hand'] / best['off']:.3f}")
    print(f"profile off / profile on: {best['off'] / best['on']:.3f}")
    if before:
        print(f"before / profile off (target ≈ 1): {best['before'] / best['off']:.3f}")


if __name__ == "__main__":
    main()
