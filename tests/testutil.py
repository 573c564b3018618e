"""Helpers shared by tests (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import csv
from pathlib import Path

FAST = ["train.epochs=3", "model.hidden=[16]", "train.batch_size=32", "optimizer.lr=0.01"]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def set_args(pairs: list[str]) -> list[str]:
    """["a=1", "b=2"] -> ["--set", "a=1", "--set", "b=2"]"""
    return [x for pair in pairs for x in ("--set", pair)]
