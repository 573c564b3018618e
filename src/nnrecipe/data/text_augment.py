"""EDA (Wei & Zou 2019, "EDA: Easy Data Augmentation Techniques for Boosting Performance on Text
Classification Tasks"), on batches of token ids: `TextAugmenter(table, rates, ...)(x, y, generator)`.

x is a batch of word ids [B, T], right-padded with PAD (id 0); a row's length l is its count of
non-pad ids. With α the rate of an operation, n = max(1, ⌊α·l⌋) (the reference code's
``max(1, int(alpha*num_words))``):

- SR, synonym replacement: n distinct positions, drawn uniformly among the row's *replaceable*
  words (a word with at least one synonym in the vocabulary that is not a stopword), each replaced
  by one of its synonyms drawn uniformly. Fewer replaceable words than n: all of them.
- RI, random insertion: n times, a synonym (drawn uniformly) of a replaceable word of the row
  (drawn uniformly) is inserted at a uniform position of the l + 1 slots. The n inserted words
  land on a uniform n-subset of the l + n final positions, the original words keep their order,
  which is what n successive uniform insertions give. A row without replaceable words is kept.
- RS, random swap: n times, two distinct positions drawn uniformly are swapped (one word: kept).
- RD, random deletion: each word is deleted with probability p; a one-word row is kept, and a
  row that would lose every word keeps one of them, drawn uniformly.

The issue's "each with probability α per sentence" is read as the paper's α: the share of a
sentence's words one operation changes (for RD the deletion probability of each word), not a
probability that the operation happens. As in the paper ("for a given sentence, randomly choose
and perform one of the operations") an augmented row gets exactly one operation, drawn uniformly
among those with a rate > 0. The paper adds n_aug augmented copies per sentence to the training
set once, before training; here a row is augmented on the fly, each time a batch draws it, with
probability ``prob``, the on-the-fly twin of the paper's set of n_aug copies plus the original
(prob = n_aug / (n_aug + 1); the reference code's default n_aug = 9 gives 0.9). Every epoch thus
sees fresh copies, and validation, test and predictions never see this class.

Departures from the reference code (jasonwei20/eda_nlp, eda.py), each for a vectorized batch op:
SR replaces positions, not word types (a word repeated in a row has its occurrences drawn and
replaced independently; the code replaces every occurrence of a chosen word with one synonym);
RI draws its source words among the replaceable ones of the original row (the paper: "a random
word that is not a stop word"; the code tries up to 10 random words, stopwords included, and
draws from the growing row), inserts a uniformly drawn synonym (the code takes the first of an
unordered set) at any of the l + 1 slots (the code never appends at the end); RS always finds two
distinct positions (the code gives up after 3 equal draws). Synonyms come from a table over the
vocabulary (a user file or a word2vec run's nearest neighbours), not from WordNet, and only
single-token synonyms exist. Stopwords: a small built-in English list (`STOPWORDS`: pronouns,
articles, auxiliaries, prepositions, conjunctions; the reference code uses NLTK's), or none.
A row that RI makes longer than the batch is cut at ``max_len``, as encoding cuts long texts.

Speed: every operation acts on the whole batch at once on x's device (ranks by a double argsort
of random keys, gathers, a batched ``searchsorted``; RS is a loop of n_max = max(1, ⌊α·T⌋)
steps, fixed by the batch width, never by the data), all four are computed and each row takes
its own, so no value is ever read back to the host. Randomness: one 63-bit seed per batch is
drawn from the Trainer's batch-order ``torch.Generator`` (on the CPU; it is checkpointed, so a
resumed run draws the same augmentations), and every draw of the batch comes from a generator
on x's device seeded with it. Under torchrun each rank draws the same seed and applies it to its
own slice of the global batch, as the image augmenter does.

Hand-written because the EDA libraries (nlpaug, textaugment) work on Python strings one sentence
at a time with WordNet from NLTK (a download), which would mean re-tokenizing every training row
on the host every epoch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from nnrecipe.data.text import PAD, SPECIALS, Vocab, tokenize
from nnrecipe.errors import UserError

OPERATIONS = ("sr", "ri", "rs", "rd")
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves s t
""".split())


def read_synonyms(path: str | Path, *, where: str = "augment.text.synonyms") -> dict[str, list[str]]:
    """``word syn1 syn2 ...`` lines (blank lines and ``#`` comments skipped) → {word: [synonyms]},
    lower-cased as the word tokenizer does; a word on several lines gets all their synonyms."""
    path = Path(path)
    fix = "write one 'word syn1 syn2 ...' line per word, each a single word"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"synonyms file not found: {path}", where, "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read synonyms file {path} ({type(exc).__name__})", where,
                        "pass a UTF-8 text file") from None
    synonyms: dict[str, list[str]] = {}
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) < 2:
            raise UserError(f"line {number} of {path.name} names '{words[0]}' without a synonym", where, fix)
        for word in words:
            if tokenize(word, "word") != [word.lower()]:
                raise UserError(f"'{word}' on line {number} of {path.name} is not one word-level token",
                                where, fix)
        head, *rest = (w.lower() for w in words)
        known = synonyms.setdefault(head, [])
        known.extend(w for w in rest if w != head and w not in known)
    if not synonyms:
        raise UserError(f"{path.name} holds no synonyms", where, fix)
    return synonyms


def extend_vocab(vocab: Vocab, synonyms: dict[str, list[str]], *, max_size: int | None = None) -> Vocab:
    """The vocabulary plus the synonyms of its words that it lacks (alphabetical, after the counted
    tokens, so the ids of the words already in it do not change): the words augmented rows hold."""
    known = set(vocab.tokens)
    extra = sorted({s for w in vocab.tokens if w in synonyms for s in synonyms[w]} - known)
    if max_size is not None:
        extra = extra[:max(0, max_size - len(vocab))]
    return Vocab(tokens=[*vocab.tokens, *extra], level=vocab.level, reverse_numbers=vocab.reverse_numbers)


@dataclass
class SynonymTable:
    """Synonyms as ids, CSR-style: the synonyms of id v are ``flat[offsets[v] : offsets[v] + counts[v]]``."""
    offsets: torch.Tensor  # [V] long
    counts: torch.Tensor  # [V] long
    flat: torch.Tensor  # [S + 1] long; flat[0] = PAD, where ids without synonyms point
    replaceable: torch.Tensor  # [V] bool: has a synonym and is neither a stopword nor a special

    @classmethod
    def build(cls, vocab: Vocab, synonyms: dict[str, list[str]], *, stopwords=STOPWORDS) -> SynonymTable:
        ids = {t: i for i, t in enumerate(vocab.tokens)}
        lists = [[] if t in SPECIALS else [ids[s] for s in synonyms.get(t, ()) if s in ids and s != t]
                 for t in vocab.tokens]
        counts = torch.tensor([len(s) for s in lists], dtype=torch.long)
        offsets = torch.where(counts > 0, 1 + counts.cumsum(0) - counts, 0)
        flat = torch.tensor([PAD, *(i for s in lists for i in s)], dtype=torch.long)
        stop = torch.tensor([t in stopwords or t in SPECIALS for t in vocab.tokens])
        return cls(offsets, counts, flat, (counts > 0) & ~stop)

    def to(self, device) -> SynonymTable:
        return SynonymTable(*(t.to(device) for t in (self.offsets, self.counts, self.flat, self.replaceable)))

    @property
    def words(self) -> int:
        """Vocabulary words with at least one synonym."""
        return int((self.counts > 0).sum())

    def draw(self, ids: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """A synonym of each id, the k-th with k = ⌊u·count⌋ (u uniform in [0, 1)); PAD for none."""
        counts = self.counts[ids]
        k = torch.minimum((u * counts).long(), (counts - 1).clamp(min=0))
        return self.flat[self.offsets[ids] + k]


def changes(alpha: float, width: int, device) -> torch.Tensor:
    """n = max(1, ⌊α·l⌋) for every length l = 0..width, as Python computes it (double precision)."""
    return _changes(alpha, width, str(device))


@functools.lru_cache(maxsize=64)  # one small copy to the device per (rate, width), not per batch
def _changes(alpha: float, width: int, device: str) -> torch.Tensor:
    return torch.tensor([max(1, int(alpha * n)) for n in range(width + 1)], dtype=torch.long, device=device)


def _lengths(x: torch.Tensor) -> torch.Tensor:
    return (x != PAD).sum(1)


def _first(keys: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """True at the n[b] positions of row b with the smallest keys."""
    rank = keys.argsort(dim=1, stable=True).argsort(dim=1, stable=True)
    return rank < n[:, None]


def _uniform(shape, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=device)


def synonym_replacement(x: torch.Tensor, *, alpha: float, table: SynonymTable, g: torch.Generator) -> torch.Tensor:
    n = changes(alpha, x.shape[1], x.device)[_lengths(x)]
    eligible = table.replaceable[x]
    keys = torch.where(eligible, _uniform(x.shape, g, x.device), 2.0)
    chosen = eligible & _first(keys, n)
    return torch.where(chosen, table.draw(x, _uniform(x.shape, g, x.device)), x)


def random_insertion(x: torch.Tensor, *, alpha: float, table: SynonymTable, g: torch.Generator) -> torch.Tensor:
    """[B, T + n_max]: n synonyms inserted at a uniform n-subset of the l + n final positions."""
    B, T = x.shape
    n_of = changes(alpha, T, x.device)
    width = T + max(1, int(alpha * T))  # room for the largest n of the batch width
    l, eligible = _lengths(x), table.replaceable[x]
    found = eligible.sum(1)
    m = torch.where(found > 0, n_of[l], 0)
    slot = torch.arange(width, device=x.device)
    in_row = slot < (l + m)[:, None]
    inserted = in_row & _first(torch.where(in_row, _uniform((B, width), g, x.device), 2.0), m)
    originals = x.gather(1, ((~inserted).cumsum(1) - 1).clamp(0, T - 1))
    # the r-th replaceable word of the row (r uniform below the row's count) is the first
    # position whose running count of replaceable words reaches r + 1
    r = (_uniform((B, width), g, x.device) * found[:, None]).long()
    source = torch.searchsorted(eligible.long().cumsum(1), r + 1).clamp(max=T - 1)
    added = table.draw(x.gather(1, source), _uniform((B, width), g, x.device))
    return torch.where(inserted, added, torch.where(in_row, originals, PAD))


def random_swap(x: torch.Tensor, *, alpha: float, g: torch.Generator) -> torch.Tensor:
    B, T = x.shape
    l = _lengths(x)
    n = changes(alpha, T, x.device)[l]
    steps = max(1, int(alpha * T))  # the largest n of the batch width
    last = (l - 1).clamp(min=0)
    u = _uniform((steps, 2, B), g, x.device)
    rows, out = torch.arange(B, device=x.device), x.clone()
    for k in range(steps):
        i = torch.minimum((u[k, 0] * l).long(), last)
        j = torch.minimum((u[k, 1] * last).long(), (last - 1).clamp(min=0))
        j = (j + (j >= i).long()).clamp(max=T - 1)  # uniform over the positions other than i
        swap = (l >= 2) & (k < n)
        a, b = out[rows, i], out[rows, j]
        out[rows, i] = torch.where(swap, b, a)
        out[rows, j] = torch.where(swap, a, b)
    return out


def random_deletion(x: torch.Tensor, *, p: float, g: torch.Generator) -> torch.Tensor:
    B, T = x.shape
    l = _lengths(x)
    pos = torch.arange(T, device=x.device)
    valid = pos < l[:, None]
    keep = valid & ~((_uniform((B, T), g, x.device) < p) & (l > 1)[:, None])
    pick = torch.minimum((_uniform(B, g, x.device) * l).long(), (l - 1).clamp(min=0))
    keep |= ((keep.sum(1) == 0) & (l > 0))[:, None] & (pos == pick[:, None])  # never an empty row
    out = x.gather(1, torch.where(keep, pos, T + pos).argsort(dim=1))  # kept words first, in order
    return torch.where(pos < keep.sum(1)[:, None], out, PAD)


def _fit(x: torch.Tensor, width: int) -> torch.Tensor:
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.cat([x, x.new_full((x.shape[0], width - x.shape[1]), PAD)], 1)


class TextAugmenter:
    """The Trainer's ``augment`` hook: (ids [B, T], y, generator) → (augmented ids [B, W], y)."""

    def __init__(self, table: SynonymTable, rates: dict[str, float], *, prob: float, max_len: int):
        self.table, self.prob, self.max_len = table, prob, max_len
        self.rates = {op: rates[op] for op in OPERATIONS if rates.get(op, 0) > 0}
        self._generators: dict[str, torch.Generator] = {}

    def to(self, device) -> TextAugmenter:
        self.table = self.table.to(device)
        return self

    def _generator(self, device: torch.device, seed: int) -> torch.Generator:
        g = self._generators.setdefault(str(device), torch.Generator(device=device))
        return g.manual_seed(seed)

    def width(self, T: int) -> int:
        """Batch width after augmentation: room for RI's insertions, at most ``max_len``."""
        grow = max(1, int(self.rates["ri"] * T)) if "ri" in self.rates else 0
        return max(T, min(T + grow, self.max_len))

    def operation(self, name: str, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        rate = self.rates[name]
        if name == "sr":
            return synonym_replacement(x, alpha=rate, table=self.table, g=g)
        if name == "ri":
            return random_insertion(x, alpha=rate, table=self.table, g=g)
        if name == "rs":
            return random_swap(x, alpha=rate, g=g)
        return random_deletion(x, p=rate, g=g)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        if x.ndim != 2 or x.dtype != torch.long:
            raise ValueError(f"TextAugmenter needs token ids [B, T], got {x.dtype} {tuple(x.shape)}")
        seed = int(torch.randint(0, 2**63 - 1, (), generator=generator))  # a CPU tensor: no device sync
        g = self._generator(x.device, seed)
        width = self.width(x.shape[1])
        u = _uniform((2, len(x)), g, x.device)
        pick = torch.where(u[0] < self.prob, (u[1] * len(self.rates)).long().clamp(max=len(self.rates) - 1), -1)
        out = _fit(x, width)
        for k, name in enumerate(self.rates):
            out = torch.where((pick == k)[:, None], _fit(self.operation(name, x, g), width), out)
        return out, y


__all__ = ["OPERATIONS", "STOPWORDS", "SynonymTable", "TextAugmenter", "changes", "extend_vocab", "random_deletion",
           "random_insertion", "random_swap", "read_synonyms", "synonym_replacement"]
