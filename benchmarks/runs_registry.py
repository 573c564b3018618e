"""Wall time of `nnrecipe.runs` over N run directories: without the index, the first call (which
writes DIR/.nnrecipe-index.json) and with the index; medians of 3 (README, *The runs registry*).

    python benchmarks/runs_registry.py DIR    # DIR: a folder of run directories, e.g. N copies of real runs
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import nnrecipe
from nnrecipe.run_table import INDEX_NAME


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(folder: str) -> None:
    index = os.path.join(folder, INDEX_NAME)
    cold, first, warm = [], [], []
    for _ in range(3):
        if os.path.exists(index):
            os.remove(index)
        cold.append(seconds(lambda: nnrecipe.runs(folder, use_index=False)))
        first.append(seconds(lambda: nnrecipe.runs(folder)))
        warm.append(seconds(lambda: nnrecipe.runs(folder)))
    ms = [round(statistics.median(t) * 1000) for t in (cold, first, warm)]
    print(f"{len(nnrecipe.runs(folder))} runs: no index {ms[0]} ms, first call {ms[1]} ms, with the index {ms[2]} ms, "
          f"index {os.path.getsize(index) / 1e6:.1f} MB")


if __name__ == "__main__":
    main(sys.argv[1])
