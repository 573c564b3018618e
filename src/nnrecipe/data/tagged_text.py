"""Tagged text for sequence tagging: sentences as lists of tokens, one tag per token.

Files (read verbatim: tokens come tokenized, they are split on whitespace and never re-tokenized):
- CSV with a header row and the columns ``tokens`` and ``tags`` (names: `tagging.tokens_column`,
  `tagging.tags_column`): one sentence per row, tokens and tags separated by spaces, as many tags as
  tokens in every row.
- CoNLL: one token per line, whitespace-separated fields with the token first and its tag last (so
  CoNLL-2003's ``word POS chunk NER`` lines work), a blank line between sentences; ``-DOCSTART-``
  lines are skipped. `fit` and `evaluate` read every labelled file that is not a .csv this way;
  `predict` does so for a ``.conll`` file only.
- Unlabelled input for `predict`: a CSV's tokens column, a CoNLL file's first field, or a text file
  with one sentence per line (tokens separated by whitespace).

Hand-written: the csv module reads the CSV (`nnrecipe.data.text`'s two-column reader, with its
checks); CoNLL is a line format that a loop reads in a dozen lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnrecipe.data.text import load_parallel_csv, load_text_csv
from nnrecipe.errors import UserError

DOCSTART = "-DOCSTART-"


@dataclass
class Tagged:
    """Sentences: tokens[i] is sentence i's tokens, tags[i] its tags (None: unlabelled input)."""
    tokens: list[list[str]]
    tags: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, rows) -> Tagged:
        rows = [int(i) for i in rows]
        return Tagged([self.tokens[i] for i in rows], None if self.tags is None else [self.tags[i] for i in rows])


def _read(path: str) -> str:
    if not Path(path).is_file():
        raise UserError(f"file not found: {path}", "--data", "check the path")
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path} ({type(exc).__name__})", path, "pass a UTF-8 text file") from None


def read_tagged_csv(path: str, *, tokens_column: str = "tokens", tags_column: str = "tags") -> Tagged:
    texts, tag_texts = load_parallel_csv(path, source_column=tokens_column, target_column=tags_column)
    tokens, tags = [t.split() for t in texts], [t.split() for t in tag_texts]
    for row, (words, labels) in enumerate(zip(tokens, tags), start=1):
        if len(words) != len(labels):
            raise UserError(f"data row {row} has {len(words)} tokens but {len(labels)} tags", path,
                            f"give every token of '{tokens_column}' one tag in '{tags_column}'")
    return Tagged(tokens, tags)


def read_conll(path: str, *, labelled: bool = True) -> Tagged:
    """Sentences of a CoNLL file; `labelled`: every token line needs a tag (its last field)."""
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    words: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(_read(path).splitlines() + [""], start=1):
        fields = line.split()
        if fields and fields[0] == DOCSTART:
            continue
        if not fields:
            if words:
                tokens.append(words)
                tags.append(labels)
            words, labels = [], []
            continue
        if labelled and len(fields) < 2:
            raise UserError(f"line {number} has a token but no tag: {line.strip()!r}", path,
                            "write 'token tag' on every line, a blank line between sentences")
        words.append(fields[0])
        labels.append(fields[-1])
    if not tokens:
        raise UserError(f"no sentences in {path}", path, "write 'token tag' lines, a blank line between sentences")
    return Tagged(tokens, tags if labelled else None)


def read_labelled(path: str, *, tokens_column: str = "tokens", tags_column: str = "tags") -> Tagged:
    """A tagging CSV (.csv) or a CoNLL file (any other name)."""
    if Path(path).suffix.lower() == ".csv":
        return read_tagged_csv(path, tokens_column=tokens_column, tags_column=tags_column)
    return read_conll(path)


def read_unlabelled(path: str, *, tokens_column: str = "tokens") -> Tagged:
    """Sentences to tag: a CSV's tokens column, a .conll file's first field, or one sentence per line."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":  # one column, read through the labelled reader for its header/empty-cell checks
        return Tagged([t.split() for t in load_text_csv(path, text_column=tokens_column,
                                                        label_column=tokens_column)[0]])
    if suffix == ".conll":
        return read_conll(path, labelled=False)
    sentences = [line.split() for line in _read(path).splitlines() if line.strip()]
    if not sentences:
        raise UserError(f"no sentences in {path}", path, "write one sentence per line, tokens separated by spaces")
    return Tagged(sentences)


__all__ = ["DOCSTART", "Tagged", "read_conll", "read_labelled", "read_tagged_csv", "read_unlabelled"]
