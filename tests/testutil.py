"""Helpers shared by tests (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

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


TINY_SEQ = ["text.task_size=200", "model.rnn_hidden=16", "model.embed_dim=8", "train.batch_size=32"]


def fit_tiny_memory_lstm(out: Path) -> Path:
    """A one-epoch seq:memory LSTM through the CLI (a real sequence run to compress or evaluate)."""
    from nnrecipe.cli import main

    assert main(["fit", "--data", "seq:memory", "--model", "lstm", "--epochs", "1", "--out", str(out),
                 *set_args(TINY_SEQ)]) == 0
    return out


def random_classes(n: int = 512, d: int = 64, classes: int = 10, seed: int = 0):
    """Standard-normal features with uniformly random labels (nothing to learn but memorization)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)
