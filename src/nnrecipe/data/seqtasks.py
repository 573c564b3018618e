"""Generated sequence tasks, chosen with ``--data seq:NAME``: seeded, license-free, no download.

Each task has train, val and test splits drawn with numpy's ``default_rng`` from child seeds of
``SeedSequence(seed)``, one per split, so a split depends only on the seed (changing ``size``
changes train alone). All bundled tasks are character-level.

- ``reverse`` (seq2seq): a string over the 26 symbols ``0-9a-p`` → the same string reversed.
  Lengths: train uniform on 1..12; val and test uniform on 9..12. Two thirds of the training
  strings are shorter than 9 (75% are at most 9), so the held-out splits test whether the model
  generalizes to longer sequences rather than recalls seen ones. Defaults 6000 / 500 / 500.
- ``addition`` (seq2seq): ``"a+b"`` → ``str(a + b)``. Train operands: a digit count uniform on
  1..4, then a number uniform among those with that many digits (0..9 for one digit). Val and
  test operands both have 3..4 digits. Defaults 8000 / 500 / 500.
  For both seq2seq tasks no val or test source appears in train, and no test source in val.
- ``memory`` (classify): a string of ``length`` (default 60) symbols drawn uniformly from
  ``abcdefgh``; the label is its FIRST symbol. Nothing else predicts the label, so a model must
  carry one symbol across the whole sequence (chance accuracy 1/8). Defaults 4000 / 500 / 1000.
- ``charlm`` (lm): English-like text from a small hand-written grammar (below), about 60 000
  characters for train and 6 000 each for val and test. ``sources`` holds paragraphs, each ending
  in a newline; a language model should join them, ``text = "".join(split.sources)``, and cut
  windows ``text[i : i + block_size + 1]`` (input = first block_size characters, target = the
  same shifted by one). ``targets`` and ``labels`` are None.

``size`` sets the number of training examples (training characters for ``charlm``); val and
test keep their sizes. Hand-written because these are the standard toy tasks of the sequence
literature (copy/reverse, addition, long-range memory) and no well-kept library ships them.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnrecipe.errors import UserError

REVERSE_SYMBOLS = string.digits + "abcdefghijklmnop"
MEMORY_SYMBOLS = "abcdefgh"


@dataclass
class SeqSplit:
    sources: list[str]  # input texts
    targets: list[str] | None = None  # seq2seq outputs (kind "seq2seq")
    labels: list[str] | None = None  # class labels (kind "classify")


@dataclass
class SeqTask:
    name: str
    kind: str  # "seq2seq" | "classify" | "lm"
    level: str  # tokenizer level, "char" for all bundled tasks
    train: SeqSplit
    val: SeqSplit
    test: SeqSplit
    description: str


def _split_rngs(seed: int) -> tuple[np.random.Generator, ...]:
    """Generators for (train, val, test), independent of one another."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def _check_size(size: int | None, default: int, what: str = "examples") -> int:
    if size is None:
        return default
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise UserError(f"size={size!r} is not a positive number of training {what}",
                        "seq task size", "use a whole number >= 1")
    return size


def _draw_unique(draw: Callable[[], str], n: int, exclude: set[str]) -> list[str]:
    """n draws, rejecting any in ``exclude`` (repeats among the n themselves are allowed)."""
    out = []
    while len(out) < n:
        s = draw()
        if s not in exclude:
            out.append(s)
    return out


def _seq2seq_splits(make_draw: Callable[[np.random.Generator, int, int], Callable[[], str]],
                    seed: int, train_range: tuple[int, int], heldout_range: tuple[int, int],
                    sizes: tuple[int, int, int],
                    target: Callable[[str], str]) -> tuple[SeqSplit, SeqSplit, SeqSplit]:
    """Train, val, test; ``make_draw(rng, low, high)`` draws one source of size low..high."""
    rng_train, rng_val, rng_test = _split_rngs(seed)
    # test first, then val without test, then train without either: held-out sources are unseen
    test = _draw_unique(make_draw(rng_test, *heldout_range), sizes[2], set())
    val = _draw_unique(make_draw(rng_val, *heldout_range), sizes[1], set(test))
    train = _draw_unique(make_draw(rng_train, *train_range), sizes[0], set(test) | set(val))
    train_s, val_s, test_s = (SeqSplit(sources=s, targets=[target(x) for x in s])
                              for s in (train, val, test))
    return train_s, val_s, test_s


def make_reverse(seed: int = 0, size: int | None = None) -> SeqTask:
    def make_draw(rng: np.random.Generator, low: int, high: int) -> Callable[[], str]:
        def draw() -> str:
            ids = rng.integers(len(REVERSE_SYMBOLS), size=int(rng.integers(low, high + 1)))
            return "".join(REVERSE_SYMBOLS[i] for i in ids)
        return draw

    train, val, test = _seq2seq_splits(make_draw, seed, (1, 12), (9, 12),
                                       (_check_size(size, 6000), 500, 500), lambda x: x[::-1])
    return SeqTask(name="reverse", kind="seq2seq", level="char", train=train, val=val, test=test,
                   description="reverse a string of digits and letters a-p; train lengths "
                   "1..12, val/test lengths 9..12")


def _number(rng: np.random.Generator, digits: int) -> int:
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return int(rng.integers(low, 10 ** digits))


def make_addition(seed: int = 0, size: int | None = None) -> SeqTask:
    def make_draw(rng: np.random.Generator, low: int, high: int) -> Callable[[], str]:
        def draw() -> str:  # digit count first, then the number: short operands are common
            a = _number(rng, int(rng.integers(low, high + 1)))
            b = _number(rng, int(rng.integers(low, high + 1)))
            return f"{a}+{b}"
        return draw

    train, val, test = _seq2seq_splits(make_draw, seed, (1, 4), (3, 4),
                                       (_check_size(size, 8000), 500, 500), _add)
    return SeqTask(name="addition", kind="seq2seq", level="char", train=train, val=val,
                   test=test, description="add two integers written 'a+b'; train operands "
                   "1..4 digits, val/test operands 3..4 digits")


def _add(source: str) -> str:
    a, b = source.split("+")
    return str(int(a) + int(b))


def make_memory(seed: int = 0, size: int | None = None, *, length: int = 60) -> SeqTask:
    if not isinstance(length, int) or length < 1:
        raise UserError(f"length={length!r} is not a positive sequence length", "seq:memory",
                        "use a whole number >= 1")
    symbols = np.array(list(MEMORY_SYMBOLS))
    splits = []
    for rng, n in zip(_split_rngs(seed), (_check_size(size, 4000), 500, 1000)):
        grid = rng.choice(symbols, size=(n, length))  # every position uniform, independent
        sources = ["".join(row) for row in grid]
        splits.append(SeqSplit(sources=sources, labels=[s[0] for s in sources]))
    return SeqTask(name="memory", kind="classify", level="char", train=splits[0], val=splits[1],
                   test=splits[2], description=f"classify a random string of {length} symbols "
                   "a-h by its first symbol (long-range memory; chance 1/8)")


# The charlm grammar. Past tense throughout so that subject and verb never need to agree;
# "a" becomes "an" before a vowel, two adjectives are separated by a comma.
#   sentence  = clause "." | clause CONJ clause "." | SUB clause ", " clause "."
#   clause    = np (VT np | VI [ADV]) [PREP np]
#   np        = NAME | DET [ADJ [", " ADJ]] NOUN
_NAMES = ("Anna Ben Clara David Emma Felix Grace Henry Iris Jack Kate Leo Mia Noah Olive Paul "
          "Rosa Sam Tara Victor").split()
_DETS = "the the the a a this that every my our her his their".split()
_ADJS = ("big small old young tall short quiet loud happy sad bright dark warm cold green red "
         "blue yellow brown white black gentle brave clever lazy busy tired hungry empty full "
         "heavy light soft hard smooth rough round sharp strange famous careful curious eager "
         "proud shy kind wild calm angry polite rich poor clean dirty fresh sweet bitter wooden "
         "golden silver ancient modern tiny huge narrow wide distant").split()
_NOUNS = ("dog cat bird fish horse cow sheep goat mouse rabbit fox wolf bear lion tiger owl "
          "farmer teacher doctor baker sailor soldier painter writer singer child girl boy "
          "woman man king queen prince friend neighbour stranger student driver pilot "
          "house garden river forest mountain village city road bridge tower castle field "
          "lake island valley hill market school library kitchen window door table chair "
          "book letter map key lamp candle basket box bottle cup plate coin ring hat coat "
          "boat train cart wagon apple bread cheese cake soup egg flower tree stone shell "
          "song story picture dream storm cloud star moon sun wind fire rope ladder bell "
          "clock mirror drum").split()
_VTS = ("saw found took gave left kept held carried pushed pulled opened closed washed "
        "painted cooked ate drank read wrote sang followed watched chased caught helped "
        "visited called met loved liked hated feared admired bought sold built broke fixed "
        "dropped lifted threw hid showed noticed remembered forgot packed filled emptied "
        "cleaned cut burned counted borrowed brought sent touched crossed climbed guarded "
        "drew").split()
_VIS = ("slept smiled laughed cried waited walked ran jumped danced sang rested shouted "
        "listened worked played travelled arrived left returned fell rose wandered hurried "
        "paused spoke whispered sighed nodded stayed stopped").split()
_ADVS = ("slowly quickly quietly loudly gladly sadly carefully happily calmly suddenly "
         "again often early late soon today yesterday outside inside together alone "
         "gently softly eagerly bravely proudly politely nearly rarely twice").split()
_PREPS = ("near beside behind under over inside outside across along past through "
          "towards around without with").split()
_CONJS = (", and", ", but", ", so", ", and then")
_SUBS = ("when", "because", "after", "before", "while", "although")


def _pick(rng: np.random.Generator, words) -> str:
    return words[int(rng.integers(len(words)))]


def _noun_phrase(rng: np.random.Generator) -> str:
    if rng.random() < 0.15:
        return _pick(rng, _NAMES)
    n_adj = int(rng.choice(3, p=[0.5, 0.35, 0.15]))
    words = ", ".join(_pick(rng, _ADJS) for _ in range(n_adj))
    words = f"{words} {_pick(rng, _NOUNS)}".strip()
    det = _pick(rng, _DETS)
    if det == "a" and words[0] in "aeiou":
        det = "an"
    return f"{det} {words}"


def _clause(rng: np.random.Generator) -> str:
    if rng.random() < 0.6:
        words = [_noun_phrase(rng), _pick(rng, _VTS), _noun_phrase(rng)]
    else:
        words = [_noun_phrase(rng), _pick(rng, _VIS)]
        if rng.random() < 0.5:
            words.append(_pick(rng, _ADVS))
    if rng.random() < 0.3:
        words += [_pick(rng, _PREPS), _noun_phrase(rng)]
    return " ".join(words)


def _sentence(rng: np.random.Generator) -> str:
    form = rng.random()
    if form < 0.6:
        text = _clause(rng)
    elif form < 0.8:
        text = f"{_clause(rng)}{_pick(rng, _CONJS)} {_clause(rng)}"
    else:
        text = f"{_pick(rng, _SUBS)} {_clause(rng)}, {_clause(rng)}"
    return text[0].upper() + text[1:] + "."


def _paragraph(rng: np.random.Generator) -> str:
    return " ".join(_sentence(rng) for _ in range(int(rng.integers(3, 7))))


def make_charlm(seed: int = 0, size: int | None = None) -> SeqTask:
    splits = []
    for rng, n in zip(_split_rngs(seed), (_check_size(size, 60_000, "characters"), 6000, 6000)):
        paragraphs, total = [], 0
        while total < n:
            paragraphs.append(_paragraph(rng) + "\n")
            total += len(paragraphs[-1])
        splits.append(SeqSplit(sources=paragraphs))
    return SeqTask(name="charlm", kind="lm", level="char", train=splits[0], val=splits[1],
                   test=splits[2], description="character language model on English-like "
                   "sentences from a small generated grammar; join sources and cut windows")


SEQ_TASKS: dict[str, Callable[..., SeqTask]] = {
    "reverse": make_reverse,
    "addition": make_addition,
    "memory": make_memory,
    "charlm": make_charlm,
}


SEQ_KINDS = {"reverse": "seq2seq", "addition": "seq2seq", "memory": "classify", "charlm": "lm"}


def make_task(name: str, *, seed: int = 0, size: int | None = None) -> SeqTask:
    """The task ``name`` (see the module docstring), drawn from ``seed``."""
    if name not in SEQ_TASKS:
        close = difflib.get_close_matches(name, list(SEQ_TASKS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"unknown sequence task '{name}'{hint}", "data.source",
                        f"use seq:NAME with NAME one of {', '.join(SEQ_TASKS)}")
    return SEQ_TASKS[name](seed=seed, size=size)
