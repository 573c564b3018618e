"""seq:tagging: seeded BIO sentences whose entity type only the trigger word next to the span gives."""

from __future__ import annotations

from collections import defaultdict

import pytest

from nnrecipe.data.tagging_task import AFTER, BEFORE, NAMES, make_tagging
from nnrecipe.errors import UserError
from nnrecipe.metrics.tagging import bio_chunks


def test_splits_are_seeded_and_sized():
    a, b, c = make_tagging(seed=3, size=50), make_tagging(seed=3, size=50), make_tagging(seed=4, size=50)
    assert a["train"].tokens == b["train"].tokens and a["test"].tags == b["test"].tags
    assert a["train"].tokens != c["train"].tokens
    assert [len(a[k]) for k in ("train", "val", "test")] == [50, 500, 500]
    assert make_tagging(seed=3, size=80)["test"].tokens == a["test"].tokens  # size changes train alone


def test_every_span_has_its_types_trigger_next_to_it():
    data = make_tagging(seed=0, size=300)["train"]
    sides = defaultdict(int)
    for tokens, tags in zip(data.tokens, data.tags):
        assert len(tokens) == len(tags)
        for kind, first, last in bio_chunks(tags):
            assert all(t in NAMES for t in tokens[first:last + 1])
            before = first > 0 and tokens[first - 1] in BEFORE[kind]
            after = last + 1 < len(tokens) and tokens[last + 1] in AFTER[kind]
            assert before or after
            sides[after] += 1
        assert all(tag == "O" for tok, tag in zip(tokens, tags) if tok not in NAMES)
    assert min(sides.values()) > 0.4 * sum(sides.values())  # the trigger follows the span about half the time


def test_a_name_alone_does_not_give_the_type():
    data = make_tagging(seed=0)["train"]
    types = defaultdict(set)
    for tokens, tags in zip(data.tokens, data.tags):
        for tok, tag in zip(tokens, tags):
            if tag != "O":
                types[tok].add(tag[2:])
    assert len(types) == len(NAMES) and all(len(kinds) == 3 for kinds in types.values())


def test_bad_size_is_refused():
    with pytest.raises(UserError, match="positive number"):
        make_tagging(size=0)
