"""``seq:tagging``: a generated BIO tagging task whose entity types only the context gives.

Each sentence holds 1–3 entity mentions among filler words (0–3 before, between and after them).
A mention is a span of 1–3 name tokens (``B-TYPE I-TYPE …``) drawn from one pool of 120 invented
capitalized names shared by every type, so a name alone never tells its type: a trigger word next
to the span does, either just before it (``mr Kalo`` → PER, ``in`` → LOC, ``at`` → ORG) or, with
probability 1/2, just after it (``Kalo Rimu said`` → PER, ``flooded`` → LOC, ``hired`` → ORG).
Triggers and fillers are tagged O. Where the trigger follows the span, a left-to-right model has
not seen it when it tags the span, and can only guess the type (1 in 3); a bidirectional one can
see it, so bidirectional models should reach an entity F1 near 1 and unidirectional ones about
½ + ½·⅓ ≈ 0.67 (README Results has the measured figures).

Splits are drawn with numpy's ``default_rng`` from child seeds of ``SeedSequence(seed)``, one per
split; ``size`` sets the training sentences (default 4000), val and test have 500 each.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from nnrecipe.data.tagged_text import Tagged
from nnrecipe.errors import UserError

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t")
_VOWELS = ("a", "e", "i", "o", "u")
_ENDS = ("", "n", "r", "s")
NAMES = tuple("".join(parts).capitalize() for parts in  # every 60th of the 7200 syllable pairs: 120 names
              product(_ONSETS, _VOWELS, ("l", "m", "r", "t", "k", "s"), _VOWELS, _ENDS))[::60]
BEFORE = {"PER": ("mr", "dr", "ms"), "LOC": ("in", "near", "from"), "ORG": ("at", "joined", "for")}
AFTER = {"PER": ("said", "laughed", "replied"), "LOC": ("flooded", "froze", "grew"),
         "ORG": ("hired", "merged", "announced")}
FILLERS = ("the", "a", "yesterday", "then", "and", "but", "we", "they", "saw", "met", "today", "again", "very",
           "quietly", "after", "before", "everyone", "noticed", "news", "of", "soon", "while", "later", "it")
TYPES = tuple(BEFORE)
SIZES = (4000, 500, 500)


def _fillers(rng: np.random.Generator, tokens: list[str], tags: list[str]) -> None:
    for _ in range(int(rng.integers(0, 4))):
        tokens.append(FILLERS[int(rng.integers(len(FILLERS)))])
        tags.append("O")


def _sentence(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    tokens: list[str] = []
    tags: list[str] = []
    _fillers(rng, tokens, tags)
    for _ in range(int(rng.integers(1, 4))):
        kind = TYPES[int(rng.integers(len(TYPES)))]
        span = [NAMES[int(i)] for i in rng.integers(len(NAMES), size=int(rng.integers(1, 4)))]
        labels = [f"B-{kind}"] + [f"I-{kind}"] * (len(span) - 1)
        after = bool(rng.random() < 0.5)
        triggers = AFTER[kind] if after else BEFORE[kind]
        trigger = triggers[int(rng.integers(len(triggers)))]
        tokens += span + [trigger] if after else [trigger] + span
        tags += labels + ["O"] if after else ["O"] + labels
        tokens.append(FILLERS[int(rng.integers(len(FILLERS)))])  # a filler between mentions: spans never touch
        tags.append("O")
        _fillers(rng, tokens, tags)
    return tokens, tags


def make_tagging(seed: int = 0, size: int | None = None) -> dict[str, Tagged]:
    """{"train", "val", "test"} sentences of the task (module docstring)."""
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise UserError(f"size={size!r} is not a positive number of training sentences", "text.task_size",
                        "use a whole number >= 1")
    sizes = (size or SIZES[0], *SIZES[1:])
    out = {}
    for name, child, n in zip(("train", "val", "test"), np.random.SeedSequence(seed).spawn(3), sizes):
        rng = np.random.default_rng(child)
        pairs = [_sentence(rng) for _ in range(n)]
        out[name] = Tagged([p[0] for p in pairs], [p[1] for p in pairs])
    return out


__all__ = ["AFTER", "BEFORE", "NAMES", "make_tagging"]
