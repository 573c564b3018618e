"""Corpus and sentence BLEU (Papineni et al., 2002), scored exactly as sacreBLEU 2.x scores it.

Hand-written on purpose: nnrecipe's metrics are dependency-free pure functions, and sacreBLEU is
only the test oracle (tests/metrics/test_bleu.py matches ``sacrebleu.corpus_bleu(...).score`` to
1e-6); it is in the ``test`` extra, never a runtime dependency.

Layout: ``references[i]`` is the list of references of hypothesis i (sacreBLEU takes them
transposed, one list per reference stream); the count may differ between hypotheses.
After tokenizing (optionally lowercased), with n = 1..N (N = ``max_order``, 4 by default):

- m_n  = Σ_i Σ_g min(count_hyp_i(g), max_r count_ref_ir(g))   clipped n-gram matches
- t_n  = Σ_i (number of n-grams in hypothesis i)
- p_n  = m_n / t_n
- c    = Σ_i |hyp_i|,  r = Σ_i |reference of i closest in length to hyp_i| (ties: the shorter)
- BP   = 1 if c ≥ r else exp(1 − r/c)   (0 when c = 0)
- BLEU = 100 · BP · exp((1/N) Σ_n log p_n)     on 0..100; 0 when no n-gram matches at all

Smoothing (Chen & Cherry, WMT 2014; sacreBLEU's names), for an order with m_n = 0:
"none": p_n = 0, so BLEU = 0; "floor": p_n = ε/t_n (ε = ``smooth_value``, 0.1 by default);
"exp" (mteval-v13a/NIST): p_n = 1/(2^k t_n) for the k-th such order; "add-k": every order n ≥ 2
uses p_n = (m_n + k)/(t_n + k) (k = ``smooth_value``, 1 by default). An order with t_n = 0 gives
BLEU = 0, except in ``sentence_bleu`` which uses sacreBLEU's "effective order": the mean runs
over orders 1..n' only, n' the highest order with t_n > 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

SMOOTH_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1.0, "exp": None}
TOKENIZERS = ("13a", "none")

# mteval-v13a's language-dependent rules, copied from sacreBLEU's TokenizerRegexp in this order.
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # symbols and punctuation
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma not preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period/comma not followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash preceded by a digit
)


def tokenize_13a(line: str) -> str:
    """mteval-v13a tokenization (sacreBLEU's ``Tokenizer13a``), tokens joined by single spaces.

    Drops ``<skipped>``, joins ``-`` + newline, turns newlines into spaces, unescapes
    ``&quot; &amp; &lt; &gt;``, then splits off symbols and punctuation; a period or comma stays
    attached only between two digits (``1,000.5``), a dash is split off after a digit.
    """
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    # Same order as mteval: "&amp;quot;" becomes "&quot;", not '"'.
    for escaped, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(escaped, char)
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def _check_args(hypotheses, references, smooth, smooth_value, tokenize, max_order) -> None:
    if isinstance(hypotheses, str) or not all(isinstance(h, str) for h in hypotheses):
        raise ValueError("hypotheses must be a list of strings")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} reference lists; references[i] "
            "must be the list of references of hypothesis i (sacreBLEU's layout transposed)")
    if not hypotheses:
        raise ValueError("BLEU of an empty corpus is undefined")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"references[{i}] must be a list of strings ([ref] for one reference)")
        if len(refs) == 0:
            raise ValueError(f"hypothesis {i} has no reference")
    if smooth not in SMOOTH_DEFAULTS:
        raise ValueError(f"unknown smooth {smooth!r}; choose one of {sorted(SMOOTH_DEFAULTS)}")
    if smooth_value is not None and smooth_value < 0:
        raise ValueError(f"smooth_value must be >= 0, got {smooth_value}")
    if tokenize not in TOKENIZERS:
        raise ValueError(f"unknown tokenize {tokenize!r}; choose one of {list(TOKENIZERS)}")
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}")


def _ngram_counts(tokens: list[str], max_order: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for n in range(1, max_order + 1)
                   for i in range(len(tokens) - n + 1))


def _statistics(hypotheses, references, prepare: Callable[[str], list[str]], max_order: int):
    """Corpus sums: clipped matches m_n, hypothesis n-gram totals t_n, lengths c and r."""
    matches, totals, hyp_len, ref_len = [0] * max_order, [0] * max_order, 0, 0
    for hyp, refs in zip(hypotheses, references):
        hyp_tokens, ref_tokens = prepare(hyp), [prepare(ref) for ref in refs]
        ref_counts = Counter()
        for tokens in ref_tokens:
            ref_counts |= _ngram_counts(tokens, max_order)  # | keeps the max count per n-gram
        for ngram, count in _ngram_counts(hyp_tokens, max_order).items():
            totals[len(ngram) - 1] += count
            matches[len(ngram) - 1] += min(count, ref_counts[ngram])
        hyp_len += len(hyp_tokens)
        ref_len += min((len(t) for t in ref_tokens), key=lambda n: (abs(n - len(hyp_tokens)), n))
    return matches, totals, hyp_len, ref_len


def _score(matches, totals, hyp_len, ref_len, smooth, smooth_value, effective_order) -> float:
    """BP · exp(mean log p_n) on 0..100, the same float operations as sacreBLEU's compute_bleu."""
    if not any(matches):
        return 0.0
    value = SMOOTH_DEFAULTS[smooth] if smooth_value is None else smooth_value
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0)
    log_sum, order, exp_divisor = 0.0, len(matches), 1.0
    for n, (m, t) in enumerate(zip(matches, totals), start=1):
        if smooth == "add-k" and n > 1:
            m, t = m + value, t + value
        if t == 0:
            if not effective_order:
                return 0.0  # a missing order is p_n = 0
            order = n - 1
            break
        if m > 0:
            p = 100.0 * m / t
        elif smooth == "exp":
            exp_divisor *= 2
            p = 100.0 / (exp_divisor * t)
        elif smooth == "floor":
            p = 100.0 * value / t
        else:
            p = 0.0
        if p == 0.0:
            return 0.0  # log 0 = −inf
        log_sum += math.log(p)
    return bp * math.exp(log_sum / order)


def _preparer(tokenize: str, lowercase: bool) -> Callable[[str], list[str]]:
    def prepare(sentence: str) -> list[str]:
        sentence = sentence.lower() if lowercase else sentence
        sentence = sentence.rstrip()  # before tokenizing, as sacreBLEU: a trailing "-\n" stays "-"
        return (tokenize_13a(sentence) if tokenize == "13a" else sentence).split()
    return prepare


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, smooth: str = "exp",
         smooth_value: float | None = None, tokenize: str = "13a", lowercase: bool = False,
         max_order: int = 4) -> float:
    """Corpus BLEU on 0..100; ``references[i]`` lists the references of ``hypotheses[i]``."""
    _check_args(hypotheses, references, smooth, smooth_value, tokenize, max_order)
    stats = _statistics(hypotheses, references, _preparer(tokenize, lowercase), max_order)
    return _score(*stats, smooth, smooth_value, effective_order=False)


def sentence_bleu(hypothesis: str, references: Sequence[str], *, smooth: str = "exp",
                  smooth_value: float | None = None, tokenize: str = "13a",
                  lowercase: bool = False, max_order: int = 4) -> float:
    """BLEU of one sentence on 0..100 with the effective order (``sacrebleu.sentence_bleu``)."""
    _check_args([hypothesis], [references], smooth, smooth_value, tokenize, max_order)
    stats = _statistics([hypothesis], [references], _preparer(tokenize, lowercase), max_order)
    return _score(*stats, smooth, smooth_value, effective_order=True)
