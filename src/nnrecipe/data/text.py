"""Text data: tokenizers, a vocabulary, padding to a batch, and CSV files of texts.

- Tokenizers. ``"char"``: every character is a token, ``list(text)``. ``"word"``: the text is
  lower-cased and cut into runs of word characters and single punctuation marks,
  ``re.findall(r"\\w+|[^\\w\\s]", text.lower())``; whitespace is dropped, so a word-level round
  trip gives the tokens back, not the spacing (``detokenize`` joins words with one space).
  ``"whitespace"``: the text's whitespace-separated fields, verbatim (case kept), ``text.split()``:
  for text that comes tokenized already (sequence tagging, one tag per given token).
- `Vocab`: id ↔ token. Ids 0..3 are the specials ``<pad> <unk> <bos> <eos>``; the other tokens
  follow by count, most frequent first, ties in alphabetical order, so the same texts always give
  the same ids. ``min_freq`` drops rare tokens and ``max_size`` caps the size (specials included);
  both send what they drop to ``<unk>``.
- ``reverse_numbers`` (a `Vocab` option): every maximal run of digits is written least-significant
  digit first before tokenizing, and decoding reverses the runs back, so callers see ordinary
  numbers. Reversal keeps digit runs digit runs, so it is its own inverse. For addition the carry
  then flows left to right with the output, and digit k of the sum aligns with digit k of each
  operand counted from the start (a monotone attention), which an RNN decoder learns several times
  faster (README Results: seq:addition).
- `pad_batch`: right-pads id lists with ``<pad>`` (id 0) into a LongTensor [N, T] and returns the
  true lengths, which masks and packed RNNs need.
- `load_text_csv` / `load_parallel_csv`: two columns of a CSV file (a header row is required),
  read with the stdlib ``csv`` module so that quoted fields may hold commas and newlines. Texts
  are kept verbatim (spacing matters to a character model); labels are stripped of surrounding
  spaces. Blank lines are skipped.

Hand-written because the job is small and the usual libraries (torchtext, now retired; Hugging
Face tokenizers) would add a dependency for two regular expressions and a dict.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nnrecipe.errors import UserError

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = 0, 1, 2, 3
LEVELS = ("char", "word", "whitespace")
_WORD = re.compile(r"\w+|[^\w\s]")
_DIGITS = re.compile(r"\d+")


def flip_numbers(text: str) -> str:
    """Each maximal run of digits reversed: ``"123+45=168"`` → ``"321+54=861"`` (an involution)."""
    return _DIGITS.sub(lambda m: m.group()[::-1], text)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise UserError(f"unknown tokenizer level '{level}'", "text level",
                        f"use one of {', '.join(LEVELS)}")


def tokenize(text: str, level: str) -> list[str]:
    """Characters (``"char"``), lower-cased words and punctuation marks (``"word"``), or the
    whitespace-separated fields as given (``"whitespace"``)."""
    _check_level(level)
    if level == "whitespace":
        return text.split()
    return list(text) if level == "char" else _WORD.findall(text.lower())


def detokenize(tokens: list[str], level: str) -> str:
    """Characters joined as they are; words (and whitespace fields) joined with single spaces."""
    _check_level(level)
    return ("" if level == "char" else " ").join(tokens)


@dataclass
class Vocab:
    tokens: list[str]  # index = id; the first four are SPECIALS
    level: str  # "char" | "word"
    reverse_numbers: bool = False  # digits least-significant first inside the model (module docstring)
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], level: str, *, min_freq: int = 1,
              max_size: int | None = None, reverse_numbers: bool = False) -> Vocab:
        """Tokens with count >= min_freq, most frequent first, ties alphabetical."""
        _check_level(level)
        if min_freq < 1:
            raise UserError(f"min_freq={min_freq} is below 1", "Vocab.build", "use min_freq >= 1")
        if max_size is not None and max_size < len(SPECIALS):
            raise UserError(f"max_size={max_size} leaves no room for the {len(SPECIALS)} special "
                            "tokens", "Vocab.build", f"use max_size >= {len(SPECIALS)} or None")
        counts = Counter(tok for text in texts
                         for tok in tokenize(flip_numbers(text) if reverse_numbers else text, level))
        for special in SPECIALS:  # a literal "<unk>" in the text must not get a second id
            counts.pop(special, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - len(SPECIALS)]
        return cls(tokens=[*SPECIALS, *kept], level=level, reverse_numbers=reverse_numbers)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of ``text``; tokens not in the vocabulary become UNK."""
        text = flip_numbers(text) if self.reverse_numbers else text
        ids = [self._ids.get(tok, UNK) for tok in tokenize(text, self.level)]
        return [BOS] * bos + ids + [EOS] * eos

    def decode(self, ids: Iterable[int] | torch.Tensor, *, stop_at_eos: bool = True) -> str:
        """Text of ``ids``: PAD and BOS skipped, EOS ends it (or is skipped), UNK shown as <unk>."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"id {i} is outside the vocabulary of {len(self.tokens)} tokens")
            if i == EOS and stop_at_eos:
                break
            if i not in (PAD, BOS, EOS):
                tokens.append(self.tokens[i])
        text = detokenize(tokens, self.level)
        return flip_numbers(text) if self.reverse_numbers else text

    def to_dict(self) -> dict:
        extra = {"reverse_numbers": True} if self.reverse_numbers else {}  # absent: the earlier format
        return {"level": self.level, "tokens": list(self.tokens), **extra}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        where = "vocabulary"
        fix = "rebuild the vocabulary or restore the file it came from"
        if not isinstance(d, dict) or not {"level", "tokens"} <= set(d) <= {"level", "tokens", "reverse_numbers"}:
            got = sorted(map(str, d)) if isinstance(d, dict) else type(d).__name__
            raise UserError(f"a vocabulary must be a dict with keys 'level' and 'tokens' (and optionally "
                            f"'reverse_numbers'), got {got}", where, fix)
        level, tokens, flip = d["level"], d["tokens"], d.get("reverse_numbers", False)
        if not isinstance(flip, bool):
            raise UserError("vocabulary 'reverse_numbers' must be true or false", where, fix)
        if level not in LEVELS:
            raise UserError(f"vocabulary level {level!r} is not one of {', '.join(LEVELS)}",
                            where, fix)
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            raise UserError("vocabulary 'tokens' must be a list of non-empty strings", where, fix)
        if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
            raise UserError(f"vocabulary must start with {', '.join(SPECIALS)}", where, fix)
        dupes = sorted({t for t, c in Counter(tokens).items() if c > 1})
        if dupes:
            raise UserError(f"vocabulary repeats tokens: {dupes[:5]}", where, fix)
        return cls(tokens=list(tokens), level=level, reverse_numbers=flip)


def pad_batch(seqs: Sequence[Sequence[int]], *,
              max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """LongTensor [N, T] right-padded with PAD, and the lengths [N] after truncation.

    T is ``max_len`` when given (longer sequences are cut to it), else the longest sequence.
    """
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    width = max_len if max_len is not None else max((len(s) for s in seqs), default=0)
    out = torch.full((len(seqs), width), PAD, dtype=torch.long)
    lengths = torch.zeros(len(seqs), dtype=torch.long)
    for row, seq in enumerate(seqs):
        seq = list(seq)[:width]
        out[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        lengths[row] = len(seq)
    return out, lengths


def load_text_csv(path: str | Path, *, text_column: str = "text",
                  label_column: str = "label") -> tuple[list[str], list[str]]:
    """Texts (verbatim) and labels (stripped) from two columns of a CSV file."""
    texts, labels = _read_columns(path, (text_column, label_column))
    return texts, [label.strip() for label in labels]


def read_column(path: str | Path, column: str) -> list[str]:
    """One column of a CSV file (verbatim)."""
    return _read_columns(path, (column, column))[0]


def load_parallel_csv(path: str | Path, *, source_column: str = "source",
                      target_column: str = "target") -> tuple[list[str], list[str]]:
    """Source and target texts (both verbatim) from two columns of a CSV file."""
    sources, targets = _read_columns(path, (source_column, target_column))
    return sources, targets


def _read_columns(path: str | Path, names: tuple[str, str]) -> tuple[list[str], list[str]]:
    source = str(path)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: '{source}'", source,
                        f"check the path (relative paths start from {Path.cwd()})")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: drop Excel's BOM
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as e:
        raise UserError(f"'{source}' is not UTF-8 text ({e.reason} at byte {e.start})", source,
                        "save the file as UTF-8 CSV") from None
    except csv.Error as e:
        raise UserError(f"cannot parse CSV: {e}", source, "check the quoting") from None
    if not rows:
        raise UserError(f"file '{source}' is empty", source,
                        f"write a header row with columns {', '.join(names)} and data rows")
    header = [h.strip() for h in rows[0]]
    for name in names:
        if name not in header:
            close = difflib.get_close_matches(name, header, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            present = ", ".join(f"'{h}'" for h in header)
            raise UserError(f"no column '{name}' in the header{hint}; the columns are {present}",
                            source, "rename the column or pass its name")
        if header.count(name) > 1:
            raise UserError(f"column '{name}' appears {header.count(name)} times in the header",
                            source, "give every column a distinct name")
    if len(rows) == 1:
        raise UserError(f"file '{source}' has a header row but no data rows", source,
                        "add data rows below the header")
    index = [header.index(name) for name in names]
    columns: tuple[list[str], list[str]] = ([], [])
    for number, row in enumerate(rows[1:], start=1):  # data rows counted from 1, blank lines not
        if len(row) != len(header):
            raise UserError(f"data row {number} has {len(row)} fields but the header has "
                            f"{len(header)}", source, "quote fields that contain commas")
        for name, j, column in zip(names, index, columns):
            if not row[j].strip():
                raise UserError(f"empty '{name}' in data row {number}", source,
                                "fill it in or delete the row")
            column.append(row[j])
    return columns
