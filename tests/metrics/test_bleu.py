"""nnrecipe.metrics.bleu against sacreBLEU (the oracle; a test-only dependency)."""

from __future__ import annotations

import math
import random

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from nnrecipe.metrics import bleu, sentence_bleu, tokenize_13a

TOL = 1e-6
WORDS = tuple(("the cat dog sat on a mat model learns fast slowly while we train it again and The "
         "Attention decoder U.S. e.g. don't it's state-of-the-art well-known x-ray").split())
EXTRAS = ("1,000", "3.14", "2-3", "10,5", "1.000.000", "$5", "(yes)", '"quoted"', "'single'",
          "&quot;", "&amp;", "&lt;b&gt;", "<skipped>", "50%", "a/b", "#tag", "@user", "...", "--",
          "x,y", "end.", "9-", "-7", "{k}", "[v]", "a_b", "~", "`tick`", "é", "naïve", "5.", ",5")
PUNCT = (".", ",", "!", "?", ";", ":", " .", " ,", "-")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.75 else rng.choice(EXTRAS)
             for _ in range(rng.randint(3, 22))]
    return " ".join(words) + rng.choice(PUNCT)


def _perturb(ref: str, rng: random.Random) -> str:
    """Drop, swap, replace and insert words, punctuation, numbers and hyphens."""
    words = ref.split()
    for _ in range(rng.randint(0, 5)):
        op, i = rng.randrange(6), rng.randrange(len(words))
        if op == 0 and len(words) > 1:
            del words[i]
        elif op == 1:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        elif op == 2:
            words[i] = rng.choice(WORDS + EXTRAS)
        elif op == 3:
            words.insert(i, rng.choice(EXTRAS))
        elif op == 4:
            words[i] = words[i] + rng.choice(PUNCT)
        else:
            words[i] = f"{words[i]}-{rng.choice(WORDS)}"
    return " ".join(words)


def _corpus(seed: int, n: int = 220, refs: tuple[int, int] = (1, 1)):
    """n hypotheses, each with between refs[0] and refs[1] references (a paraphrase each)."""
    rng = random.Random(seed)
    hyps, references = [], []
    for _ in range(n):
        base = _sentence(rng)
        own = [base] + [_perturb(base, rng) for _ in range(rng.randint(*refs) - 1)]
        references.append(own)
        hyps.append(_perturb(base, rng) if rng.random() < 0.9 else base)
    return hyps, references


def _streams(references):
    """Our per-hypothesis layout → sacreBLEU's streams, padded with None for missing refs."""
    width = max(len(r) for r in references)
    return [[r[k] if k < len(r) else None for r in references] for k in range(width)]


def _oracle(hyps, references, **kw) -> float:
    return sacrebleu.corpus_bleu(hyps, _streams(references), **kw).score


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("refs", [(1, 1), (2, 3)])
@pytest.mark.parametrize("tok", ["13a", "none"])
def test_generated_corpus_matches_sacrebleu(seed, refs, tok):
    hyps, references = _corpus(seed, refs=refs)
    assert len(hyps) >= 200
    if refs == (2, 3):
        assert {len(r) for r in references} == {2, 3}  # a variable reference count is exercised
    ours = bleu(hyps, references, tokenize=tok)
    assert ours == pytest.approx(_oracle(hyps, references, tokenize=tok), abs=TOL)
    assert 5.0 < ours < 95.0  # neither degenerate end, so the comparison means something


@pytest.mark.parametrize("smooth,value", [("none", None), ("floor", None), ("floor", 0.3),
                                          ("add-k", None), ("add-k", 2), ("exp", None)])
def test_smoothing_methods_match_sacrebleu(smooth, value):
    hyps, references = _corpus(3, n=220, refs=(1, 2))
    kw = {"smooth_method": smooth, "smooth_value": value}
    assert bleu(hyps, references, smooth=smooth, smooth_value=value) == pytest.approx(
        _oracle(hyps, references, **kw), abs=TOL)
    # Five hypothesis 4-grams, none matched: only the smoothing keeps the score above 0.
    short_h = ["the cat sat near a mat", "a dog ran off", "we train it fast"]
    short_r = [["the cat sat on the mat"], ["the dog ran off today"], ["we train fast"]]
    ours = bleu(short_h, short_r, smooth=smooth, smooth_value=value)
    assert ours == pytest.approx(_oracle(short_h, short_r, **kw), abs=TOL)
    assert (ours == 0.0) == (smooth == "none")


def test_smoothing_on_sentences_matches_sacrebleu_sentence_bleu():
    hyps, references = _corpus(4, n=60, refs=(1, 3))
    for smooth in ("none", "floor", "add-k", "exp"):
        for hyp, refs in zip(hyps + ["cat", "the cat"], references + [["the cat"], ["the cat"]]):
            want = sacrebleu.sentence_bleu(hyp, refs, smooth_method=smooth).score
            assert sentence_bleu(hyp, refs, smooth=smooth) == pytest.approx(want, abs=TOL)


def test_brevity_penalty_for_short_hypotheses():
    hyps, references = _corpus(5, n=200, refs=(1, 3))
    short = [" ".join(h.split()[: max(1, len(h.split()) // 2)]) for h in hyps]
    ours = bleu(short, references)
    assert ours == pytest.approx(_oracle(short, references), abs=TOL)
    # Hand check: unigram-only BLEU of a prefix is BP alone (every precision is 1).
    hand = math.exp(1 - 6 / 3) * 100
    assert bleu(["a b c"], [["a b c d e f"]], max_order=1) == pytest.approx(hand, abs=TOL)
    # r uses the closest reference, shorter on ties: |3−1| = |3−5| → r = 1, so no penalty.
    assert bleu(["a b c"], [["a b c d e", "a"]], max_order=1) == pytest.approx(100.0, abs=TOL)
    assert bleu(["a b c"], [["a b c d e", "a b c d"]], max_order=1) == pytest.approx(
        math.exp(1 - 4 / 3) * 100, abs=TOL)


def test_perfect_match_is_100():
    _, references = _corpus(6, n=200, refs=(1, 3))
    assert bleu([r[-1] for r in references], references) == pytest.approx(100.0, abs=1e-9)


@pytest.mark.parametrize("lowercase", [False, True])
def test_lowercase_matches_sacrebleu(lowercase):
    hyps, references = _corpus(7, n=200, refs=(1, 2))
    hyps = [h.upper() if i % 3 == 0 else h for i, h in enumerate(hyps)]
    ours = bleu(hyps, references, lowercase=lowercase)
    assert ours == pytest.approx(_oracle(hyps, references, lowercase=lowercase), abs=TOL)
    if lowercase:
        assert ours > bleu(hyps, references)


@pytest.mark.parametrize("max_order", [1, 2, 3, 5])
def test_max_order_matches_sacrebleu(max_order):
    hyps, references = _corpus(8, n=200, refs=(1, 2))
    want = BLEU(max_ngram_order=max_order).corpus_score(hyps, _streams(references)).score
    assert bleu(hyps, references, max_order=max_order) == pytest.approx(want, abs=TOL)


TRICKY = [
    "Hello, world!", "It costs $1,000.50 (approx.).", "Items 1-3, 5.", "a.b,c 1.2.3 4,5,6",
    "&quot;quoted&quot; &amp; &lt;tag&gt; &amp;lt; &amp;quot;", "x<skipped>y", "line-\nbreak\nnext",
    "trailing-\n", "e.g. U.S.A. vs. U.K.", "state-of-the-art 3-4 x-3 -5 5-", "don't 'single'",
    "tabs\tand  spaces ", "{braces} [brackets] `ticks` ~tilde ^caret |pipe", "50% #1 @me a/b",
    "...", ".5 5. ,5 5,", "naïve café — “curly” ‘quotes’ …", "", "   ", "a_b_c a+b=c",
]


@pytest.mark.parametrize("line", TRICKY)
def test_tokenize_13a_matches_sacrebleu(line):
    assert tokenize_13a(line) == Tokenizer13a()(line)


def test_tokenize_13a_on_generated_sentences():
    rng, tok = random.Random(9), Tokenizer13a()
    for _ in range(300):
        line = _perturb(_sentence(rng), rng)
        assert tokenize_13a(line) == tok(line)


def test_tricky_lines_as_corpus_match_sacrebleu():
    refs = [[line, line.upper()] for line in TRICKY]
    hyps = [line.replace(",", " ,") for line in TRICKY]
    assert bleu(hyps, refs) == pytest.approx(_oracle(hyps, refs), abs=TOL)


def test_trailing_whitespace_is_stripped_before_tokenizing():
    # sacreBLEU rstrips first, so a final "-\n" keeps its dash instead of joining the lines.
    hyps, refs = ["one two three four-\n", "five six-\n"], [["one two three four -"], ["five six"]]
    assert bleu(hyps, refs) == pytest.approx(_oracle(hyps, refs), abs=TOL)


@pytest.mark.parametrize("hyps,refs,match", [
    (["a"], [["a"], ["b"]], "references\\[i\\]"),
    ([], [], "empty"),
    (["a"], ["a"], "must be a list of strings"),
    (["a"], [[]], "no reference"),
    ("a", [["a"]], "hypotheses must be"),
])
def test_bad_input_raises(hyps, refs, match):
    with pytest.raises(ValueError, match=match):
        bleu(hyps, refs)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="smooth"):
        bleu(["a"], [["a"]], smooth="add-one")
    with pytest.raises(ValueError, match="tokenize"):
        bleu(["a"], [["a"]], tokenize="intl")
    with pytest.raises(ValueError, match="max_order"):
        bleu(["a"], [["a"]], max_order=0)
