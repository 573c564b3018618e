"""A character language model on a real book: `nnrecipe fit --data book.txt` against a plain PyTorch
char-LSTM loop and a small GPT-style loop given the same wall time; test bits per character.

nnrecipe: the defaults of a `.txt` corpus (`--model lstm`: one LSTM layer of 128, windows of 64
characters), with the epochs chosen so that training takes about `--minutes` (one calibration
epoch first). Its measured training time is then the budget of each hand-written loop:

  char-LSTM   Karpathy's char-rnn shape: 2 LSTM layers of 128 over 64-d character embeddings,
              random windows of 64, batch 64, Adam 2e-3, gradient norm clipped at 5
  small GPT   nanoGPT's layout, shrunk for a CPU: 4 pre-LN blocks, 4 heads, width 128, context 128,
              learned positions, batch 32, AdamW 1e-3 (warm-up 100 steps, cosine to the budget)

All three see the same split (the first 70 % of the text for training, the last 20 % for test, cut
at a space, as nnrecipe cuts it) and score the test text in non-overlapping windows of their own
context, each window read from its start: bits/char = mean −log₂ p(next character).

    python benchmarks/book_lm.py BOOK.txt [--minutes 5] [--out /tmp/book-runs]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import nnrecipe


def splits(text: str, val: float = 0.1, test: float = 0.2) -> tuple[str, str]:
    def cut(at: float) -> int:
        i = int(len(text) * at)
        space = text.find(" ", i)
        return space if 0 <= space < len(text) else i
    return text[:cut(1 - val - test)], text[cut(1 - test):]


class CharLSTM(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.embed, self.rnn, self.head = nn.Embedding(vocab, 64), nn.LSTM(64, 128, 2, batch_first=True), nn.Linear(128, vocab)

    def forward(self, x):
        return self.head(self.rnn(self.embed(x))[0])


class SmallGPT(nn.Module):
    def __init__(self, vocab: int, context: int = 128, dim: int = 128):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, dim), nn.Parameter(torch.randn(context, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, 4, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks, self.norm, self.head = nn.TransformerEncoder(layer, 4), nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, x):
        t = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.head(self.norm(self.blocks(self.embed(x) + self.pos[:t], mask=mask, is_causal=True)))


def train_for(model: nn.Module, ids: torch.Tensor, *, seconds: float, context: int, batch: int, lr: float,
              clip: float, schedule: bool) -> int:
    optimizer = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1) if schedule
                 else torch.optim.Adam(model.parameters(), lr=lr))
    generator, start, steps = torch.Generator().manual_seed(0), time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        if schedule:  # warm-up, then cosine over the wall-time budget
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (steps + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(elapsed / seconds, 1)))
        starts = torch.randint(0, len(ids) - context - 1, (batch,), generator=generator)
        window = torch.stack([ids[s:s + context + 1] for s in starts.tolist()])
        loss = F.cross_entropy(model(window[:, :-1]).flatten(0, 1), window[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        steps += 1
    return steps


@torch.no_grad()
def bits_per_char(model: nn.Module, ids: torch.Tensor, context: int) -> float:
    model.eval()
    n = (len(ids) - 1) // context
    windows = torch.stack([ids[i * context:i * context + context + 1] for i in range(n)])
    nll = sum(F.cross_entropy(model(w[:, :-1]).flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
              for w in windows.split(256))
    return nll / (n * context) / math.log(2)


def nnrecipe_run(book: Path, out: Path, minutes: float) -> dict:
    probe = nnrecipe.fit(str(book), model="lstm", epochs=1, seed=0, out=out / "calibrate")
    epochs = max(1, round(minutes * 60 / probe.metrics["train_seconds"]))
    run = nnrecipe.fit(str(book), model="lstm", epochs=epochs, seed=0, out=out / f"nnrecipe-{minutes:g}min")
    return {"epochs": epochs, "seconds": run.metrics["train_seconds"], "bits_per_char": run.metrics["test"]["bits_per_token"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("book", type=Path)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/book-runs"))
    args = parser.parse_args()
    text = args.book.read_text(encoding="utf-8-sig")
    train, test = splits(text)
    chars = sorted(set(train))
    index = {c: i + 1 for i, c in enumerate(chars)}  # 0: a character the training text lacks

    def encode(s: str) -> torch.Tensor:
        return torch.tensor([index.get(c, 0) for c in s])

    train_ids, test_ids = encode(train), encode(test)
    ours = nnrecipe_run(args.book, args.out, args.minutes)
    rows = {"nnrecipe fit (lstm defaults)": ours}
    torch.manual_seed(0)
    for name, model, kw in (("char-LSTM loop", CharLSTM(len(chars) + 1), dict(context=64, batch=64, lr=2e-3, clip=5.0,
                                                                             schedule=False)),
                            ("small GPT loop", SmallGPT(len(chars) + 1), dict(context=128, batch=32, lr=1e-3, clip=1.0,
                                                                             schedule=True))):
        steps = train_for(model, train_ids, seconds=ours["seconds"], **kw)
        rows[name] = {"steps": steps, "seconds": ours["seconds"], "bits_per_char": bits_per_char(model, test_ids, kw["context"])}
    print(json.dumps(rows, indent=1))
    print(f"\n| {len(text) / 1e3:.0f} kB, {args.minutes:g} min budget | training seconds | test bits/char |")
    print("|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['seconds']:.0f} | {row['bits_per_char']:.3f} |")


if __name__ == "__main__":
    main()
