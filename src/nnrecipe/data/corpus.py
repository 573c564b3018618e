"""Text corpora for word2vec: reading and tokenizing, the vocabulary, a generated corpus with planted
analogies, and analogy-question files.

- Tokens: the text is lower-cased and cut into runs of letters and digits, ``[^\\W_]+`` (anything
  else separates words). Each non-blank line is a sentence; windows never cross a line.
- Sources: a plain-text file, a folder of ``.txt`` files (recursively, in sorted path order), or a
  bundled generated corpus ``w2v:synthetic``.
- `WordVocab`: words with ``count >= min_count``, most frequent first, ties alphabetical (so a corpus
  always gives the same ids); out-of-vocabulary tokens are dropped before windowing, as in word2vec.c.
- `synthetic_corpus`: a language in which analogies hold by construction. Every analogy word is one
  *base* in one *variant* (france/paris: base "france", variants country/capital; king/queen: base
  "king", variants male/female; cat/cats; walk/walked). A sentence about word (b, v) holds two of
  b's three private context words (pseudo-words shared by both variants of b), two marker words of
  v (shared by every base in that variant: ``city``, ``mayor`` … for capitals; ``he``, ``his`` …
  for male words), one topic word of the family and three fillers, shuffled. The co-occurrence
  statistics are then additive, identity(b) + variant(v), so vec(paris) − vec(france) + vec(italy)
  lands near vec(rome) for a model that learns them.
- Analogy files: the questions-words.txt format of word2vec — ``: section`` lines, then lines
  ``a b c d`` meaning "a is to b as c is to d" (d ≈ b − a + c). `synthetic_analogies` asks every
  ordered pair of distinct bases of each family.

Hand-written: a regular expression, a Counter and a template generator need no library.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nnrecipe.errors import UserError

PREFIX = "w2v:"
_TOKEN = re.compile(r"[^\W_]+")

# family -> (section name of the analogy file, variant names, (variant-0 word, variant-1 word) pairs)
FAMILIES: dict[str, tuple[str, tuple[str, str], tuple[tuple[str, str], ...]]] = {
    "geography": ("capital-country", ("capital", "country"), (
        ("paris", "france"), ("berlin", "germany"), ("rome", "italy"), ("madrid", "spain"),
        ("tokyo", "japan"), ("beijing", "china"), ("moscow", "russia"), ("cairo", "egypt"),
        ("athens", "greece"), ("oslo", "norway"), ("stockholm", "sweden"), ("helsinki", "finland"),
        ("warsaw", "poland"), ("vienna", "austria"), ("lisbon", "portugal"), ("dublin", "ireland"),
        ("ottawa", "canada"), ("nairobi", "kenya"), ("lima", "peru"), ("havana", "cuba"),
        ("tehran", "iran"), ("baghdad", "iraq"), ("santiago", "chile"), ("ankara", "turkey"))),
    "people": ("family", ("male", "female"), (
        ("king", "queen"), ("man", "woman"), ("boy", "girl"), ("brother", "sister"), ("father", "mother"),
        ("son", "daughter"), ("husband", "wife"), ("uncle", "aunt"), ("nephew", "niece"),
        ("prince", "princess"), ("grandfather", "grandmother"), ("grandson", "granddaughter"),
        ("groom", "bride"), ("stepfather", "stepmother"), ("stepson", "stepdaughter"), ("lord", "lady"),
        ("monk", "nun"), ("actor", "actress"), ("waiter", "waitress"), ("emperor", "empress"))),
    "things": ("plural", ("singular", "plural"), tuple((w, w + "s") for w in (
        "cat", "dog", "car", "tree", "house", "bird", "book", "river", "horse", "apple", "table", "road",
        "cloud", "stone", "ship", "flower", "window", "bottle", "garden", "song"))),
    "actions": ("past-tense", ("present", "past"), tuple((w, w + ("d" if w.endswith("e") else "ed")) for w in (
        "walk", "jump", "play", "talk", "cook", "paint", "climb", "dance", "watch", "listen", "open",
        "clean", "call", "help", "laugh", "visit", "work", "learn", "wash", "move"))),
}
MARKERS = {"capital": ("city", "mayor", "downtown", "metro"), "country": ("nation", "border", "government", "province"),
           "male": ("he", "his", "him", "himself"), "female": ("she", "her", "hers", "herself"),
           "singular": ("a", "one", "this", "single"), "plural": ("many", "several", "these", "few"),
           "present": ("today", "now", "usually", "always"), "past": ("yesterday", "ago", "once", "earlier")}
TOPICS = {"geography": ("map", "region", "travel"), "people": ("family", "person", "life"),
          "things": ("object", "thing", "see"), "actions": ("action", "do", "activity")}
FILLERS = ("the", "of", "and", "to", "in", "is", "was", "with", "for", "on", "at", "by", "from", "that", "it",
           "as", "about", "very", "quite", "there")
_SYLLABLES = ("ka", "lo", "mi", "ru", "te", "va", "zo", "pe", "qui", "bra", "den", "fol", "gri", "hask", "jun",
              "nor", "pix", "sel", "tav", "wex", "yul", "bim", "cor", "dru")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits."""
    return _TOKEN.findall(text.lower())


def _private_words(n_bases: int, per_base: int = 3) -> list[list[str]]:
    """Distinct pseudo-words (three syllables) for each base; a fixed seed, so names never change."""
    rng, seen, out = random.Random(12345), set(), []
    for _ in range(n_bases):
        words = []
        while len(words) < per_base:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(3))
            if word not in seen:
                seen.add(word)
                words.append(word)
        out.append(words)
    return out


def synthetic_corpus(seed: int = 0, *, sentences_per_word: int = 60) -> list[list[str]]:
    """Sentences (token lists) of the planted-analogy language described in the module docstring:
    ``sentences_per_word`` sentences for each of the 168 analogy words (default ≈ 10k sentences,
    ≈ 91k tokens)."""
    rng = random.Random(seed)
    bases = [(family, pair) for family, (_, _, pairs) in FAMILIES.items() for pair in pairs]
    private = _private_words(len(bases))
    sentences = []
    for (family, pair), own in zip(bases, private):
        variants = FAMILIES[family][1]
        for word, variant in zip(pair, variants):
            for _ in range(sentences_per_word):
                tokens = [word, *rng.sample(own, 2), *rng.sample(MARKERS[variant], 2),
                          rng.choice(TOPICS[family]), *rng.choices(FILLERS, k=3)]
                rng.shuffle(tokens)
                sentences.append(tokens)
    rng.shuffle(sentences)
    return sentences


def synthetic_analogies() -> dict[str, list[tuple[str, str, str, str]]]:
    """Every ordered pair of distinct bases per family: ``a b c d`` with (a, b) and (c, d) the
    (variant 0, variant 1) words of two bases, e.g. ``paris france rome italy``."""
    return {section: [(*p, *q) for p in pairs for q in pairs if p != q]
            for section, _, pairs in FAMILIES.values()}


def format_analogies(sections: dict[str, list[tuple[str, str, str, str]]]) -> str:
    """The questions-words.txt text of `sections`."""
    lines = []
    for name, questions in sections.items():
        lines.append(f": {name}")
        lines.extend(" ".join(q) for q in questions)
    return "\n".join(lines) + "\n"


def read_analogies(source: str | Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Parse a questions-words file (``: section`` headers, ``a b c d`` lines; words lower-cased);
    ``w2v:synthetic`` gives the bundled corpus's questions."""
    if str(source) == f"{PREFIX}synthetic":
        return synthetic_analogies()
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"analogy file not found: {path}", "analogies",
                        "pass a questions-words.txt style file or w2v:synthetic") from None
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            current = line[1:].strip() or f"section{len(sections) + 1}"
            sections.setdefault(current, [])
            continue
        words = line.lower().split()
        if len(words) != 4:
            raise UserError(f"analogy line {number} has {len(words)} words, not 4", str(path),
                            "write each question as 'a b c d' (a is to b as c is to d)")
        sections.setdefault(current or "all", []).append(tuple(words))
    if not any(sections.values()):
        raise UserError("no analogy questions in the file", str(path), "add lines 'a b c d' under ': section' headers")
    return sections


def _text_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"no .txt files in {path}", "--data", "pass a text file or a folder of .txt files")
        return files
    if not path.is_file():
        raise UserError(f"corpus not found: {path}", "--data",
                        "pass a text file, a folder of .txt files or w2v:synthetic")
    return [path]


def load_corpus(source: str) -> tuple[list[list[str]], str]:
    """(sentences as token lists, a short name for the run directory)."""
    if source.startswith(PREFIX):
        name = source[len(PREFIX):]
        if name != "synthetic":
            raise UserError(f"unknown bundled corpus '{source}'", "--data", f"use {PREFIX}synthetic")
        return synthetic_corpus(), name
    path = Path(source)
    sentences = []
    for file in _text_files(path):
        with file.open(encoding="utf-8", errors="replace") as fh:
            sentences.extend(tokens for tokens in (tokenize_words(line) for line in fh) if tokens)
    if not sentences:
        raise UserError(f"no words in {path}", "--data", "pass a text file with words in it")
    return sentences, path.stem or "corpus"


@dataclass
class WordVocab:
    words: list[str]
    counts: list[int]
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, sentences: list[list[str]], *, min_count: int, max_size: int | None = None) -> "WordVocab":
        counts = Counter(t for s in sentences for t in s)
        kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        kept = kept[:max_size] if max_size else kept
        if not kept:
            raise UserError(f"no word occurs {min_count} times", "word2vec.min_count",
                            "lower word2vec.min_count or pass a larger corpus")
        return cls([w for w, _ in kept], [c for _, c in kept])


def encode_corpus(sentences: list[list[str]], vocab: WordVocab) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, sentence): the in-vocabulary tokens in order as one LongTensor, and the sentence number
    of each (windows stop where the number changes)."""
    index, ids, sent = vocab.index, [], []
    for number, tokens in enumerate(sentences):
        kept = [index[t] for t in tokens if t in index]
        ids.extend(kept)
        sent.extend([number] * len(kept))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(sent, dtype=torch.long)


__all__ = ["FAMILIES", "PREFIX", "WordVocab", "encode_corpus", "format_analogies", "load_corpus",
           "read_analogies", "synthetic_analogies", "synthetic_corpus", "tokenize_words"]
