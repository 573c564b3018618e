"""Sequence fits against a hand-written loop over the same model, data and batch order.

For each case, `nnrecipe.fit` runs E epochs (the whole driver: monitors, checkpoints, history,
validation every epoch), then a plain PyTorch loop runs E epochs over what that run used — the model
built from the run's resolved config.yaml, the same encoded tensors, the same length buckets drawn
from the same seeded generator — with AdamW, the same label-smoothed cross-entropy, norm clipping,
a per-step LR and a validation pass each epoch. The two alternate `--repeats` times (A/B/A/B) so
load from other processes hits both. Seconds per epoch are the median over epochs 2..E of every
repeat (epoch 1 holds one-off warm-up); the ratio hand / nnrecipe is nnrecipe's speed as a share of
the plain loop's (target ≥ 0.9).

  lstm, gru, transformer   text classification: 1,500 generated rows of 30–60 words, the label in
                           the first word (`nnrecipe.data.long_range`), word level, the defaults
  seq2seq                  `seq:reverse` (characters), the defaults

    python benchmarks/sequence_speed.py [--epochs 4] [--repeats 2] [--cases lstm,gru,transformer,seq2seq]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

import nnrecipe
from nnrecipe.config import resolve_config
from nnrecipe.data.long_range import write_long_range_csv
from nnrecipe.models import build_model
from nnrecipe.sequence_data import prepare_sequences
from nnrecipe.sequence_model import make_forward, sequence_architecture
from nnrecipe.training.buckets import LengthBuckets
from nnrecipe.training.optim import default_lr

CASES = {"lstm": "csv", "gru": "csv", "transformer": "csv", "seq2seq": "seq:reverse"}


def nnrecipe_epochs(data: str, model: str, *, epochs: int, out: Path) -> tuple[list[float], Path]:
    target = "label" if data.endswith(".csv") else None
    nnrecipe.fit(data, target=target, model=model, epochs=epochs, seed=0, out=out,
                 overrides=["train.patience=0"])
    with open(out / "history.csv") as f:
        return [float(row["seconds"]) for row in csv.DictReader(f)], out


def hand_epochs(run_dir: Path, *, epochs: int) -> list[float]:
    """E epochs of a plain loop over the run's model, tensors and length buckets."""
    cfg = resolve_config(extra=yaml.safe_load((run_dir / "config.yaml").read_text()))
    prepared = prepare_sequences(cfg)
    arch = sequence_architecture(cfg, prepared)
    torch.manual_seed(0)
    model, forward = build_model(arch), make_forward(arch, cfg)
    (X, y), (X_val, y_val) = prepared.tensors["train"], prepared.tensors["val"]
    buckets = LengthBuckets(X, y)
    n = len(y)
    base_lr = cfg.optimizer.lr or default_lr(cfg.optimizer.name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=cfg.optimizer.weight_decay)
    steps = epochs * math.ceil(n / cfg.train.batch_size)
    smoothing = cfg.regularization.label_smoothing

    def loss_of(logits, target):
        if logits.dim() == 3:
            return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0, label_smoothing=smoothing)
        return F.cross_entropy(logits, target, label_smoothing=smoothing)

    generator, step, seconds = torch.Generator().manual_seed(cfg.train.seed), 0, []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        total = torch.zeros(())
        for idx in buckets.order(n, cfg.train.batch_size, generator, torch.device("cpu")):
            xb, yb = buckets.take(X, y, idx)
            for group in optimizer.param_groups:  # linear warm-up, cosine decay, per step
                group["lr"] = base_lr * min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss = loss_of(forward(model, xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.detach()
            step += 1
        model.eval()
        with torch.no_grad():
            val_rows = len(y_val)
            chunks = [(tuple(t[i:i + 4096] for t in X_val) if isinstance(X_val, tuple) else X_val[i:i + 4096])
                      for i in range(0, val_rows, 4096)]
            val_loss = loss_of(torch.cat([forward(model, xb) for xb in chunks]), y_val)
        total.item(), val_loss.item()  # the epoch's one read-back, as in nnrecipe's loop
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        text = str(write_long_range_csv(Path(tmp) / "text.csv", 1500, min_len=30, max_len=60, seed=1))
        for case in args.cases.split(","):
            data = text if CASES[case] == "csv" else CASES[case]
            ours, hand, first = [], [], []
            for r in range(args.repeats):
                seconds, run_dir = nnrecipe_epochs(data, case, epochs=args.epochs, out=Path(tmp) / f"{case}-{r}")
                ours += seconds[1:]
                plain = hand_epochs(run_dir, epochs=args.epochs)
                hand += plain[1:]
                first.append((seconds[0], plain[0]))
            a, b = statistics.median(ours), statistics.median(hand)
            rows.append((case, a, b, b / a, first[0]))
            print(f"{case}: nnrecipe {a:.2f} s/epoch, hand loop {b:.2f} s/epoch, ratio {b / a:.2f}", flush=True)
    print(f"\n| case ({args.epochs} epochs × {args.repeats}) | nnrecipe s/epoch | hand loop s/epoch | hand / nnrecipe "
          f"(target ≥ 0.9) | first epoch nnrecipe / hand |")
    print("|---|---|---|---|---|")
    for case, a, b, ratio, (fa, fb) in rows:
        print(f"| {case} | {a:.2f} | {b:.2f} | {ratio:.2f} | {fa:.1f} / {fb:.1f} s |")


if __name__ == "__main__":
    main()
