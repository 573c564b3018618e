"""EDA on token-id batches (`nnrecipe.data.text_augment`): each operation against its definition
(lengths, what may change and into what, the distributions of positions), the per-row choice of
one operation, seeding, the synonyms file and the vocabulary/table built from it."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from nnrecipe.data import PAD, Vocab
from nnrecipe.data.text_augment import (STOPWORDS, SynonymTable, TextAugmenter, changes, extend_vocab,
                                        random_deletion, random_insertion, random_swap, read_synonyms,
                                        synonym_replacement)
from nnrecipe.errors import UserError

WORDS = [f"w{i}" for i in range(30)]
SYNONYMS = {f"w{i}": [f"s{i}a", f"s{i}b"] for i in range(0, 30, 2)}  # even words have two synonyms each
SYNONYMS["the"] = ["thee"]  # a stopword: never replaced


def vocab_and_table():
    vocab = extend_vocab(Vocab.build([" ".join(WORDS + ["the"])], "word"), SYNONYMS)
    return vocab, SynonymTable.build(vocab, SYNONYMS)


def batch(vocab: Vocab, rows: int = 64, *, seed: int = 0, low: int = 1, high: int = 20, words=WORDS + ["the"]):
    """Rows of distinct words (lengths low..high), right-padded."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(rows, high, dtype=torch.long)
    for r in range(rows):
        n = int(torch.randint(low, high + 1, (), generator=g))
        picked = torch.randperm(len(words), generator=g)[:n]
        out[r, :n] = torch.tensor([vocab.encode(words[i])[0] for i in picked])
    return out


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def words_of(row: torch.Tensor) -> list[int]:
    return [int(t) for t in row if t != PAD]


def synonym_ids(vocab: Vocab, token_id: int) -> set[int]:
    return {vocab.encode(s)[0] for s in SYNONYMS.get(vocab.tokens[token_id], [])}


def is_subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(any(t == u for u in it) for t in short)


def test_n_is_max_one_floor_alpha_l_as_python_computes_it():
    for alpha in (0.05, 0.1, 0.3, 0.7):
        assert changes(alpha, 40, "cpu").tolist() == [max(1, int(alpha * n)) for n in range(41)]


def test_synonym_replacement_changes_n_replaceable_words_into_their_synonyms():
    vocab, table = vocab_and_table()
    x = batch(vocab, 200)
    alpha = 0.3
    out = synonym_replacement(x, alpha=alpha, table=table, g=gen())
    assert out.shape == x.shape
    for row, new in zip(x, out):
        words = words_of(row)
        replaceable = [t for t in words if synonym_ids(vocab, t) and vocab.tokens[t] not in STOPWORDS]
        changed = [(a, b) for a, b in zip(row.tolist(), new.tolist()) if a != b]
        assert len(changed) == min(max(1, int(alpha * len(words))), len(replaceable))
        assert all(b in synonym_ids(vocab, a) for a, b in changed)
        assert (new[row == PAD] == PAD).all()
    the = vocab.encode("the")[0]
    assert ((x == the) <= (out == the)).all()  # the stopword keeps its place


def test_synonym_replacement_picks_positions_and_synonyms_uniformly():
    vocab, table = vocab_and_table()
    row = torch.tensor([[vocab.encode(w)[0] for w in ("w0", "w2", "w4", "w1")]]).repeat(6000, 1)
    out = synonym_replacement(row, alpha=0.25, table=table, g=gen())  # n = 1 of the 3 replaceable words
    where = Counter(int(i) for i in (out != row).float().argmax(1))
    which = Counter(vocab.tokens[int(t)] for t in out[:, 0] if t != row[0, 0])
    chi2(where, {0: 2000, 1: 2000, 2: 2000})
    chi2(which, {"s0a": len(out) / 6, "s0b": len(out) / 6})


def chi2(counts: Counter, expected: dict, limit: float = 25.0) -> None:
    """Pearson's χ² below `limit` (far beyond the 0.999 quantile for the few cells used here)."""
    assert set(counts) == set(expected), (counts, expected)
    stat = sum((counts[k] - e) ** 2 / e for k, e in expected.items())
    assert stat < limit, (stat, counts)


def test_random_insertion_inserts_synonyms_of_the_rows_words_keeping_their_order():
    vocab, table = vocab_and_table()
    x = batch(vocab, 200)
    alpha = 0.2
    out = random_insertion(x, alpha=alpha, table=table, g=gen())
    assert out.shape == (len(x), x.shape[1] + max(1, int(alpha * x.shape[1])))
    for row, new in zip(x, out):
        words, got = words_of(row), words_of(new)
        replaceable = [t for t in words if synonym_ids(vocab, t) and vocab.tokens[t] not in STOPWORDS]
        m = max(1, int(alpha * len(words))) if replaceable else 0
        assert len(got) == len(words) + m and new[len(got):].eq(PAD).all()
        assert is_subsequence(words, got)
        allowed = set().union(*(synonym_ids(vocab, t) for t in replaceable)) if replaceable else set()
        assert set((Counter(got) - Counter(words)).elements()) <= allowed


def test_random_insertion_slots_are_uniform():
    vocab, table = vocab_and_table()
    row = torch.tensor([[vocab.encode(w)[0] for w in ("w0", "w1", "w3")]]).repeat(8000, 1)
    out = random_insertion(row, alpha=0.1, table=table, g=gen())  # one synonym of w0 into 4 slots
    slots = Counter(int(i) for i in torch.isin(out, torch.tensor(sorted(synonym_ids(vocab, row[0, 0])))).float().argmax(1))
    chi2(slots, {k: 2000 for k in range(4)})


def test_random_swap_permutes_n_times_and_pairs_are_uniform():
    vocab, table = vocab_and_table()
    x = batch(vocab, 200, low=0)
    out = random_swap(x, alpha=0.1, g=gen())
    for row, new in zip(x, out):
        assert sorted(row.tolist()) == sorted(new.tolist()) and (new[row == PAD] == PAD).all()
        changed = int((row != new).sum())
        n = max(1, int(0.1 * len(words_of(row))))
        assert changed <= 2 * n and (changed > 0 or len(words_of(row)) < 2 or n > 1)
    row = torch.tensor([[vocab.encode(w)[0] for w in ("w0", "w1", "w2", "w3")]]).repeat(6000, 1)
    pairs = Counter(tuple((r != n).nonzero().flatten().tolist()) for r, n in zip(row, random_swap(row, alpha=0.1, g=gen())))
    chi2(pairs, {p: 1000 for p in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))})


def test_random_deletion_keeps_a_subsequence_never_empties_a_row_and_deletes_at_rate_p():
    vocab, table = vocab_and_table()
    x = batch(vocab, 400, low=1)
    p = 0.3
    out = random_deletion(x, p=p, g=gen())
    deleted = total = 0
    for row, new in zip(x, out):
        words, got = words_of(row), words_of(new)
        assert is_subsequence(got, words) and got and new[len(got):].eq(PAD).all()
        if len(words) == 1:
            assert got == words
        else:
            deleted, total = deleted + len(words) - len(got), total + len(words)
    sd = math.sqrt(total * p * (1 - p))
    assert abs(deleted - p * total) < 5 * sd + len(x)  # the never-empty rule adds back at most one per row
    everything = random_deletion(x, p=0.999999, g=gen())
    assert ((everything != PAD).sum(1) == 1).all()


def test_the_augmenter_gives_each_row_one_operation_with_probability_prob():
    vocab, table = vocab_and_table()
    x = batch(vocab, 2000, low=4)
    swap_only = TextAugmenter(table, {"rs": 0.1}, prob=0.6, max_len=256)
    out, y = swap_only(x, torch.arange(len(x)), gen())
    assert torch.equal(y, torch.arange(len(x)))
    changed = (out != x).any(1).float().mean().item()
    assert abs(changed - 0.6) < 0.05
    both = TextAugmenter(table, {"rs": 0.1, "rd": 0.3}, prob=1.0, max_len=256)
    out, _ = both(x, None, gen())
    shorter = ((out != PAD).sum(1) < (x != PAD).sum(1))
    permuted = torch.tensor([sorted(a.tolist()) == sorted(b.tolist()) and not torch.equal(a, b) for a, b in zip(x, out)])
    assert not (shorter & permuted).any()  # one operation per row, never both
    assert abs(shorter.float().mean().item() - 0.5) < 0.06 and abs(permuted.float().mean().item() - 0.5) < 0.06
    off = TextAugmenter(table, {"rs": 0.1}, prob=0.0, max_len=256)
    assert torch.equal(off(x, None, gen())[0], x)


def test_the_augmenter_is_seeded_by_the_trainers_generator_and_advances_it():
    vocab, table = vocab_and_table()
    x = batch(vocab, 64, low=3)
    aug = TextAugmenter(table, {"sr": 0.2, "ri": 0.2, "rs": 0.2, "rd": 0.2}, prob=0.9, max_len=256)
    g1, g2 = gen(5), gen(5)
    first = aug(x, None, g1)[0]
    assert torch.equal(first, aug(x, None, g2)[0]) and torch.equal(g1.get_state(), g2.get_state())
    assert not torch.equal(first, aug(x, None, g1)[0])  # the next batch draws anew
    assert first.shape[1] == x.shape[1] + max(1, int(0.2 * x.shape[1]))
    assert aug.width(250) == 256  # insertions are cut at max_len


def test_synonym_table_skips_specials_stopwords_and_words_outside_the_vocabulary():
    vocab = Vocab.build(["good fine the cat"], "word")
    table = SynonymTable.build(vocab, {"good": ["fine", "great"], "the": ["thee"], "<unk>": ["cat"], "cat": ["cat"]})
    ids = {t: i for i, t in enumerate(vocab.tokens)}
    assert table.counts[ids["good"]] == 1 and table.words == 1  # "great" is not in the vocabulary
    assert table.replaceable.tolist() == [t == "good" for t in vocab.tokens]
    assert table.draw(torch.tensor([ids["good"], ids["cat"]]), torch.tensor([0.99, 0.5])).tolist() == [ids["fine"], PAD]
    none = SynonymTable.build(vocab, {"the": ["good"]}, stopwords=frozenset())
    assert none.replaceable[ids["the"]]


def test_extend_vocab_appends_synonyms_after_the_counted_words():
    vocab = Vocab.build(["b a a"], "word")
    grown = extend_vocab(vocab, {"a": ["z", "c", "b"], "q": ["never"]})
    assert grown.tokens == [*vocab.tokens, "c", "z"]
    assert extend_vocab(vocab, {"a": ["z", "c"]}, max_size=len(vocab) + 1).tokens == [*vocab.tokens, "c"]


def test_read_synonyms_parses_lines_and_refuses_bad_files(tmp_path):
    good = tmp_path / "syn.txt"
    good.write_text("# groups\nHappy glad cheerful happy\n\nhappy joyful glad\nsad unhappy\n")
    assert read_synonyms(good) == {"happy": ["glad", "cheerful", "joyful"], "sad": ["unhappy"]}
    for text, needle in (("happy\n", "line 1"), ("ok fine\nice-cream gelato\n", "line 2"), ("# nothing\n", "no synonyms")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(UserError, match=needle):
            read_synonyms(bad)
    with pytest.raises(UserError, match="not found"):
        read_synonyms(tmp_path / "missing.txt")
