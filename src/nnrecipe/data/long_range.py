"""Generated long-range text classification CSVs: the label is carried by ONE word at a fixed
place (the first, the middle or the last word); the same label words also occur anywhere else as
distractors, so nothing but the word at that place predicts the label — the text analogue of the
copy-memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016). They measure the text
defaults on data nobody tuned for (README "Text defaults"; tests/test_text_defaults.py).

    L ~ U{min_len..max_len},  w_t ~ U(vocabulary) for t ≠ p,  w_p ~ U(cue words)
    label = class of w_p,  p = 1 (first), ⌊(L+1)/2⌋ (middle) or L (last)

The vocabulary is ``words`` pronounceable pseudo-words; the first ``cues × classes`` of them (in a
seeded order) are the cue words, ``cues`` per class. Hand-written: a seeded toy task no library ships.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

PLACES = ("first", "middle", "last")
_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"


def pseudo_words(n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct consonant-vowel words of 2–3 syllables."""
    words: set[str] = set()
    while len(words) < n:
        syllables = rng.integers(2, 4)
        words.add("".join(rng.choice(list(_CONSONANTS)) + rng.choice(list(_VOWELS)) for _ in range(syllables)))
    return sorted(words)


def long_range_rows(n: int, *, place: str = "first", min_len: int = 30, max_len: int = 60, classes: int = 2,
                    cues: int = 2, words: int = 200, seed: int = 0) -> list[tuple[str, str]]:
    """`n` rows (text, label) of the task in the module docstring."""
    if place not in PLACES:
        raise ValueError(f"place must be one of {PLACES}, got {place!r}")
    rng = np.random.default_rng(seed)
    vocabulary = list(rng.permutation(pseudo_words(words, rng)))
    cue_words = vocabulary[: cues * classes]
    rows = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        text = [vocabulary[i] for i in rng.integers(0, len(vocabulary), size=length)]
        at = {"first": 0, "middle": (length - 1) // 2, "last": length - 1}[place]
        cue = int(rng.integers(len(cue_words)))
        text[at] = cue_words[cue]
        rows.append((" ".join(text), f"class{cue % classes}"))
    return rows


def write_long_range_csv(path: str | Path, n: int, *, text_column: str = "text", label_column: str = "label",
                         **kwargs) -> Path:
    """The rows of `long_range_rows` as a CSV with a header (``text_column,label_column``)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([text_column, label_column])
        writer.writerows(long_range_rows(n, **kwargs))
    return path
