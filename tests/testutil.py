"""Helpers shared by tests (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import torch
from nnrecipe.cli import main

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

    assert main(["fit", "--data", "seq:memory", "--model", "lstm", "--epochs", "1", "--out", str(out),
                 *set_args(TINY_SEQ)]) == 0
    return out


def random_classes(n: int = 512, d: int = 64, classes: int = 10, seed: int = 0):
    """Standard-normal features with uniformly random labels (nothing to learn but memorization)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


FINAL_FILES = ["model.json", "model.safetensors", "metrics.json", "history.csv", "health.csv", "predictions.csv"]


def rewind(src: Path, dst: Path, seq: int) -> Path:
    """(Resume tests.) A copy of run `src` as a kill right after checkpoint `seq` would have left it."""
    shutil.copytree(src, dst)
    for path in (dst / "checkpoints").iterdir():
        if int(path.name[5:11]) > seq:
            path.unlink()
    for name in FINAL_FILES:
        (dst / name).unlink(missing_ok=True)
    shutil.rmtree(dst / "plots", ignore_errors=True)
    (dst / "INCOMPLETE").write_text("interrupted\n")
    return dst


def history_rows(run_dir: Path) -> list[dict]:
    """history.csv without its timing column."""
    with (run_dir / "history.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def assert_same_run(a: Path, b: Path, *, files: tuple[str, ...] = ("health.csv", "predictions.csv", "model.json"),
                    timing: tuple[str, ...] = ("train_seconds",)) -> None:
    """(Resume tests.) Runs `a` and `b` hold bit-identical weights, equal metrics.json apart from the
    `timing` keys, the same history.csv apart from its seconds, and byte-identical `files`."""
    import json

    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    for m in (ma, mb):
        for key in timing:
            m.pop(key)
    assert ma == mb
    assert history_rows(a) == history_rows(b)
    for name in files:
        assert (a / name).read_text() == (b / name).read_text(), name
