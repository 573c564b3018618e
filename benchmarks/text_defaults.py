"""The text defaults on generated long-range text CSVs nobody tuned for (`nnrecipe.data.long_range`):
each case × variant is one `nnrecipe.fit` through the user's path (a CSV, a column named `review`,
no task switches), and the table gives test accuracy and fit seconds.

    python benchmarks/text_defaults.py                       # the README table (all cases, all variants)
    CASES=first:400,middle:100 VARIANTS=default,chrono python benchmarks/text_defaults.py

A case is PLACE:LENGTH (fixed length) or PLACE:LOW-HIGH; a variant is a name in VARIANTS below.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nnrecipe
from nnrecipe.data.long_range import write_long_range_csv

ROWS = int(os.environ.get("ROWS", 1500))
SEEDS = [int(s) for s in os.environ.get("SEEDS", "0").split(",")]
VARIANTS = {  # name: (model, settings)
    "lstm": ("lstm", []),
    "lstm one": ("lstm", ["init.gate_bias=one", "model.bidirectional=false"]),
    "lstm chrono": ("lstm", ["init.gate_bias=chrono", "model.bidirectional=false"]),
    "lstm bidir": ("lstm", ["init.gate_bias=one", "model.bidirectional=true"]),
    "lstm bidir chrono": ("lstm", ["init.gate_bias=chrono", "model.bidirectional=true"]),
    "gru": ("gru", []),
    "gru one": ("gru", ["init.gate_bias=one", "model.bidirectional=false"]),
    "gru bidir chrono": ("gru", ["init.gate_bias=chrono", "model.bidirectional=true"]),
    "transformer": ("transformer", []),
}
CASES = ["first:30-60", "first:20", "middle:20", "last:20", "first:100", "middle:100", "last:100",
         "first:400", "middle:400", "last:400"]


def run_case(case: str, variant: str, seed: int, folder: Path) -> tuple[float, float]:
    place, lengths = case.split(":")
    low, _, high = lengths.partition("-")
    data = write_long_range_csv(folder / f"{place}-{lengths}-{seed}.csv", ROWS, text_column="review", place=place,
                                min_len=int(low), max_len=int(high or low), seed=100 + seed)
    model, sets = VARIANTS[variant]
    started = time.perf_counter()
    run = nnrecipe.fit(str(data), target="label", model=model, seed=seed, overrides=sets,
                       out=folder / f"run-{place}-{lengths}-{variant.replace(' ', '_')}-{seed}")
    return run.metrics["test"]["accuracy"], time.perf_counter() - started


def main() -> None:
    cases = os.environ.get("CASES", ",".join(CASES)).split(",")
    variants = os.environ.get("VARIANTS", ",".join(VARIANTS)).split(",")
    print(f"rows {ROWS}, seeds {SEEDS}; test accuracy (fit seconds)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            cells = []
            for variant in variants:
                results = [run_case(case, variant, seed, Path(tmp)) for seed in SEEDS]
                acc = " ".join(f"{a:.3f}" for a, _ in results)
                cells.append(f"{variant}: {acc} ({sum(s for _, s in results) / len(results):.0f} s)")
                print(f"{case:>12}  {cells[-1]}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
