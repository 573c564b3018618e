"""``cap:digits``: a generated captioning task made of the bundled 8×8 digits (`--data cap:digits`).

A canvas is 1×8×24 (three 8-pixel slots wide) holding 2 or 3 digit images (equally likely) side by
side, left to right a, b[, c]: three digits fill the canvas; two leave 8 free columns, split at
random between the left margin, the gap and the right margin. Each canvas has two reference
captions, read from either end:

    2 digits:  "three left of seven"            "seven right of three"
    3 digits:  "three left of seven left of one"  "one right of seven right of three"

so a decoder must find each digit where it is (its attention should move along the canvas word by
word), and BLEU/exact match are scored against both references. Pixels are the digits' 0..16 ÷ 16.

Splits: the 1797 digit images are first cut into disjoint pools for train / val / test (70 / 10 /
20 %, by a permutation drawn from the seed), so no test canvas reuses a digit image seen in
training; then ``size`` training canvases (default 2000, i.e. 4000 captions), size/8 validation and
size/4 test canvases (250 and 500 by default; at least 10 and 20) are drawn, each split from its
own child of ``SeedSequence(seed)``. Hand-written: it is this project's toy task.
"""

from __future__ import annotations

import numpy as np

from nnrecipe.data.captions import CaptionSet
from nnrecipe.data.sources import load_table
from nnrecipe.errors import UserError

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SLOT, SLOTS = 8, 3  # digit width and slots per canvas: canvases are 8 × 24
POOLS = (0.7, 0.1, 0.2)  # shares of the digit images drawn on by train / val / test canvases
SHARES = {"val": 8, "test": 4}  # validation and test canvases: size // share
MINIMUM = {"val": 10, "test": 20}
DEFAULT_SIZE = 2000
CAPTION_TASKS = ("digits",)


def captions_of(labels: list[int]) -> list[str]:
    """The two references of a canvas whose digits are `labels`, left to right."""
    words = [WORDS[d] for d in labels]
    return [" left of ".join(words), " right of ".join(reversed(words))]


def _canvas(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """digits [k, 8, 8] in [0, 1] → one [1, 8, 24] canvas, left to right in the given order."""
    canvas = np.zeros((1, SLOT, SLOT * SLOTS), dtype=np.float32)
    free = SLOT * (SLOTS - len(digits))
    left = int(rng.integers(0, free + 1))
    gap = int(rng.integers(0, free - left + 1)) if len(digits) > 1 else 0
    x = left
    for digit in digits:
        canvas[0, :, x:x + SLOT] = digit
        x += SLOT + gap
    return canvas


def _draw(pool: np.ndarray, images: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator,
          split: str) -> CaptionSet:
    canvases, captions = [], []
    for _ in range(count):
        chosen = pool[rng.integers(0, len(pool), size=int(rng.integers(2, 4)))]
        canvases.append(_canvas(images[chosen], rng))
        captions.append(captions_of([int(labels[i]) for i in chosen]))
    files = [f"{split}/{i:04d}" for i in range(count)]
    return CaptionSet(np.stack(canvases), files, captions, "cap-digits")  # the names say split and index


def digit_captions(seed: int = 0, size: int | None = None) -> dict[str, CaptionSet]:
    """{"train", "val", "test"}: the cap:digits canvases of `seed` (module docstring)."""
    size = DEFAULT_SIZE if size is None else size
    if size < 10:
        raise UserError(f"caption.task_size={size} is too small", "caption.task_size", "use at least 10 canvases")
    table = load_table("digits")
    images = (table.X.reshape(-1, SLOT, SLOT) / 16.0).astype(np.float32)
    pools_rng, *split_rngs = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    order = pools_rng.permutation(len(images))
    cuts = np.cumsum([int(round(share * len(images))) for share in POOLS[:2]])
    pools = np.split(order, cuts)
    counts = {"train": size, **{k: max(MINIMUM[k], size // SHARES[k]) for k in SHARES}}
    return {split: _draw(pool, images, table.y, counts[split], rng, split)
            for split, pool, rng in zip(("train", "val", "test"), pools, split_rngs)}


def caption_task(source: str, *, seed: int, size: int | None = None) -> dict[str, CaptionSet]:
    """The splits of the generated task ``cap:NAME``."""
    name = source[len("cap:"):]
    if name not in CAPTION_TASKS:
        raise UserError(f"unknown captioning task '{source}'", "--data",
                        f"use one of {', '.join('cap:' + t for t in CAPTION_TASKS)}")
    return digit_captions(seed, size)


__all__ = ["CAPTION_TASKS", "WORDS", "caption_task", "captions_of", "digit_captions"]
