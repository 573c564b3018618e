"""Generated sequence tasks: determinism, correct targets, the length rules, no leakage, sizes."""

from __future__ import annotations

import re

import pytest

from nnrecipe.data.seqtasks import (
    MEMORY_SYMBOLS,
    REVERSE_SYMBOLS,
    SEQ_TASKS,
    SeqTask,
    make_memory,
    make_task,
)
from nnrecipe.errors import UserError
from nnrecipe.data.seqtasks import _draw_unique

SMALL = {"reverse": 400, "addition": 400, "memory": 200, "charlm": 3000}
HELDOUT = {"reverse": (500, 500), "addition": (500, 500), "memory": (500, 1000)}


def splits(task: SeqTask):
    return (task.train, task.val, task.test)


@pytest.mark.parametrize("name", SEQ_TASKS)
def test_same_seed_same_task_other_seed_differs(name):
    a = make_task(name, seed=3, size=SMALL[name])
    b = make_task(name, seed=3, size=SMALL[name])
    c = make_task(name, seed=4, size=SMALL[name])
    assert a == b
    for split_a, split_c in zip(splits(a), splits(c)):
        assert split_a.sources != split_c.sources


@pytest.mark.parametrize("name", SEQ_TASKS)
def test_kind_level_and_fields(name):
    task = make_task(name, size=SMALL[name])
    assert task.name == name and task.level == "char" and task.description
    for split in splits(task):
        assert split.sources and all(isinstance(s, str) and s for s in split.sources)
        assert (split.targets is not None) == (task.kind == "seq2seq")
        assert (split.labels is not None) == (task.kind == "classify")
        for column in (split.targets, split.labels):
            assert column is None or len(column) == len(split.sources)


@pytest.mark.parametrize("name", ["reverse", "addition", "memory"])
def test_sizes(name):
    task = make_task(name, size=SMALL[name])
    assert len(task.train.sources) == SMALL[name]
    assert (len(task.val.sources), len(task.test.sources)) == HELDOUT[name]


def test_default_sizes():
    assert len(make_task("reverse").train.sources) == 6000
    assert len(make_task("addition").train.sources) == 8000
    assert len(make_task("memory").train.sources) == 4000


def test_size_changes_train_only():
    small, big = make_task("reverse", size=100), make_task("reverse", size=300)
    assert small.test == big.test and small.val == big.val
    assert (len(small.train.sources), len(big.train.sources)) == (100, 300)


def test_reverse_targets_alphabet_and_lengths():
    task = make_task("reverse")
    for split in splits(task):
        assert all(t == s[::-1] for s, t in zip(split.sources, split.targets))
        assert set("".join(split.sources)) <= set(REVERSE_SYMBOLS)
    assert len(set(REVERSE_SYMBOLS)) == 26
    train_lengths = [len(s) for s in task.train.sources]
    assert min(train_lengths) == 1 and max(train_lengths) == 12
    # uniform on 1..12: 8 of 12 lengths fall below 9, the shortest held-out length
    assert abs(sum(n < 9 for n in train_lengths) / len(train_lengths) - 8 / 12) < 0.03
    for split in (task.val, task.test):
        lengths = {len(s) for s in split.sources}
        assert lengths == {9, 10, 11, 12}


def test_addition_targets_and_operand_digits():
    task = make_task("addition")
    pattern = re.compile(r"(0|[1-9]\d{0,3})\+(0|[1-9]\d{0,3})")
    for split in splits(task):
        for source, target in zip(split.sources, split.targets):
            match = pattern.fullmatch(source)
            assert match, source
            assert int(target) == int(match[1]) + int(match[2]) and target == str(int(target))
    train_digits = [len(x) for s in task.train.sources for x in s.split("+")]
    assert set(train_digits) == {1, 2, 3, 4}
    for digits in range(1, 5):  # the digit count is uniform, not the number
        assert abs(train_digits.count(digits) / len(train_digits) - 0.25) < 0.02
    for split in (task.val, task.test):
        assert {len(x) for s in split.sources for x in s.split("+")} == {3, 4}


@pytest.mark.parametrize("name", ["reverse", "addition"])
def test_no_heldout_source_in_train(name):
    task = make_task(name)
    train = set(task.train.sources)
    assert not train & set(task.test.sources)
    assert not train & set(task.val.sources)
    assert not set(task.val.sources) & set(task.test.sources)


def test_memory_label_is_first_symbol_and_positions_uniform():
    task = make_task("memory")
    for split in splits(task):
        assert all(len(s) == 60 for s in split.sources)
        assert all(label == s[0] for s, label in zip(split.sources, split.labels))
        assert set("".join(split.sources)) == set(MEMORY_SYMBOLS)
    # the last symbol is independent of the label: agreement near chance (1/8)
    agree = sum(s[-1] == s[0] for s in task.train.sources) / len(task.train.sources)
    assert abs(agree - 1 / 8) < 0.03
    counts = [task.train.labels.count(c) / 4000 for c in MEMORY_SYMBOLS]
    assert max(abs(c - 1 / 8) for c in counts) < 0.03


def test_memory_length_option():
    task = SEQ_TASKS["memory"](seed=1, size=10, length=7)
    assert all(len(s) == 7 for s in task.train.sources)
    with pytest.raises(UserError, match="length=0"):
        make_memory(length=0)


def test_charlm_text_sizes_and_form():
    task = make_task("charlm")
    texts = ["".join(split.sources) for split in splits(task)]
    for text, n in zip(texts, (60_000, 6000, 6000)):
        assert n <= len(text) < n + 1000
    assert all(p.endswith("\n") and "\n" not in p[:-1] for p in task.train.sources)
    sentences = [s for p in task.train.sources for s in p.strip().split(". ")]
    assert all(s[0].isupper() for s in sentences)
    assert "," in texts[0] and len(set(re.findall(r"[a-z]+", texts[0].lower()))) > 250
    assert not re.search(r"\ba [aeiou]", texts[0])  # "an" before a vowel
    assert len(set(texts)) == 3
    assert len("".join(make_task("charlm", size=2000).train.sources)) < 3000


def test_unknown_name_and_bad_size():
    with pytest.raises(UserError, match="unknown sequence task 'revers'; did you mean "
                                        "'reverse'.*reverse, addition, memory, charlm"):
        make_task("revers")
    with pytest.raises(UserError, match="size=0"):
        make_task("reverse", size=0)


def test_draw_unique_rejects_excluded_sources():
    # the real tasks rarely collide by chance, so check the rejection itself on a tiny alphabet
    from itertools import cycle


    draws = cycle(["a", "b", "c"])
    assert _draw_unique(lambda: next(draws), 4, {"b"}) == ["a", "c", "a", "c"]
