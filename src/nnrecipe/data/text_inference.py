"""What a text file holds, inferred so that a user's own text trains without naming everything.

- `read_corpus`: a ``.txt`` file, or a folder of them (sorted by name, joined with a blank line),
  as one string: a language model's corpus.
- `infer_columns`: which CSV columns are the text and the label (classification) or the source
  and the target (seq2seq). Named columns win; otherwise the label is ``data.target``, else a
  column called ``label``, else the last column, and the text is a column called ``text``, else
  the one *free-text* column among the others (values not all numbers, and either several words
  per value or mostly distinct values). A CSV of exactly two free-text columns with mostly distinct
  values in both and no label named (a parallel corpus) is read as source → target. Several
  candidates and no name → a `UserError` naming them.
- `infer_level`: the tokenizer level of a set of texts: ``word`` when the texts are
  word-separated (the median text has at least ``WORD_MIN`` whitespace-separated words), else
  ``char`` (a string like ``"12+7"`` or ``"abcab"`` is one "word"). A ``.txt`` corpus is
  char-level unless asked otherwise (a character language model is the classic one, Karpathy 2015).

Hand-written: the rules are a few lines over the stdlib ``csv`` reader; no library guesses these.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from nnrecipe.errors import UserError

WORD_MIN = 3  # words in the median text for word-level tokenization
SAMPLE_ROWS = 500  # rows read to infer columns and level
DISTINCT = 0.5  # share of distinct values above which a string column is free text


@dataclass(frozen=True)
class TextColumns:
    kind: str  # "classify" | "seq2seq"
    first: str  # the text column (classify) or the source column (seq2seq)
    second: str  # the label column (classify) or the target column (seq2seq)


def read_corpus(path: str | Path) -> str:
    """The text of a ``.txt`` file or of a folder's ``.txt`` files (sorted, blank-line separated)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".txt") if path.is_dir() else [path]
    if not files or not all(p.is_file() for p in files):
        raise UserError(f"no text file at {path}", "--data", "pass a .txt file or a folder of .txt files")
    parts = []
    for p in files:
        try:
            parts.append(p.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError as e:
            raise UserError(f"'{p}' is not UTF-8 text ({e.reason} at byte {e.start})", "--data",
                            "save the file as UTF-8") from None
    text = "\n\n".join(parts)
    if not text.strip():
        raise UserError(f"{path} holds no text", "--data", "pass a file with text in it")
    return text


def infer_level(texts: list[str]) -> str:
    """``word`` when the median text has ≥ WORD_MIN whitespace-separated words, else ``char``."""
    return "word" if texts and median(len(t.split()) for t in texts) >= WORD_MIN else "char"


def _sample(path: str | Path) -> tuple[list[str], dict[str, list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            rows = [row for _, row in zip(range(SAMPLE_ROWS), reader) if len(row) == len(header)]
    except FileNotFoundError:
        raise UserError(f"file not found: {path}", "--data", "check the path") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path} ({type(exc).__name__})", "--data", "pass a UTF-8 CSV") from None
    return header, {h: [row[i] for row in rows] for i, h in enumerate(header)}


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def is_free_text(values: list[str]) -> bool:
    """Strings that are not all numbers and either hold several words or are mostly distinct."""
    values = [v for v in values if v.strip()]
    if not values or all(_is_number(v) for v in values):
        return False
    return median(len(v.split()) for v in values) >= 2 or len(set(values)) > DISTINCT * len(values)


def infer_columns(path: str | Path, *, text: str | None, label: str | None, pair: tuple[str, str]) -> TextColumns:
    """The text/label (or source/target) columns of the CSV at `path` (module docstring). `pair` is
    the configured (source, target) column names, used when both exist."""
    if text is not None and label is not None:  # both named (a resolved config): nothing to infer
        return TextColumns("classify", text, label)
    header, columns = _sample(path)
    if text is None and label is None and set(pair) <= set(header):
        return TextColumns("seq2seq", *pair)
    free = [h for h in header if is_free_text(columns[h])]
    if text is None and label is None and len(header) == 2 and free == header and all(
            len(set(columns[h])) > DISTINCT * len(columns[h]) for h in header):
        return TextColumns("seq2seq", header[0], header[1])  # a parallel corpus under other names
    label = label or ("label" if "label" in header else header[-1] if header else "label")
    if text is None:
        candidates = [h for h in free if h != label]
        if "text" in header and label != "text":
            text = "text"
        elif len(candidates) == 1:
            text = candidates[0]
        else:
            found = ", ".join(f"'{c}'" for c in candidates) or "none"
            raise UserError(f"cannot tell the text column: free-text columns besides '{label}': {found}", str(path),
                            "name it with --text-column COL")
    return TextColumns("classify", text, label)
