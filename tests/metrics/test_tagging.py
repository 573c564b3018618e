"""Tagging metrics against seqeval (entity level, default conlleval mode) and sklearn (per-tag F1)."""

from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from sklearn.metrics import f1_score as sk_f1

from nnrecipe.metrics.tagging import bio_chunks, entity_scores, is_bio, tag_scores

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG-X", "I-ORG-X"]


def _random_sentences(rng, n, tags=TAGS):
    return [[tags[i] for i in rng.integers(len(tags), size=int(rng.integers(1, 12)))] for _ in range(n)]


def _assert_like_seqeval(gold, pred):
    ours = entity_scores(gold, pred)
    assert ours["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
    assert ours["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-12)
    assert ours["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for kind, row in ours["per_type"].items():
        if row["support"]:  # seqeval lists the gold types only
            assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
                (report[kind]["precision"], report[kind]["recall"], report[kind]["f1-score"], report[kind]["support"]))


@pytest.mark.parametrize("seed", range(20))
def test_entity_scores_equal_seqeval_on_random_tag_sequences(seed):
    rng = np.random.default_rng(seed)
    gold = _random_sentences(rng, 30)
    # predictions: the gold tags with some of them replaced, so that many chunks match and some do not
    pred = [[t if rng.random() < 0.7 else TAGS[int(rng.integers(len(TAGS)))] for t in s] for s in gold]
    _assert_like_seqeval(gold, pred)


CRAFTED = [
    (["I-PER", "I-PER", "O"], [("PER", 0, 1)]),  # I- without B- opens a chunk
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),  # a type change opens a new chunk
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
    (["O", "I-LOC", "B-LOC", "O", "I-LOC"], [("LOC", 1, 1), ("LOC", 2, 2), ("LOC", 4, 4)]),
    (["B-ORG-X", "I-ORG-X"], [("ORG-X", 0, 1)]),
    (["O", "O"], []),
]


@pytest.mark.parametrize("tags,chunks", CRAFTED)
def test_bio_chunks_of_crafted_sequences(tags, chunks):
    assert bio_chunks(tags) == chunks


def test_crafted_sequences_score_like_seqeval():
    gold = [t for t, _ in CRAFTED]
    pred = [["B-PER", "I-PER", "O"], ["B-PER", "B-LOC", "I-LOC"], ["B-PER", "I-PER", "I-PER"],
            ["O", "B-LOC", "B-LOC", "O", "O"], ["I-ORG-X", "I-ORG-X"], ["B-LOC", "O"]]
    _assert_like_seqeval(gold, pred)
    ours = entity_scores(gold, pred)
    assert 0 < ours["f1"] < 1 and ours["chunks"] == 9


def test_chunks_do_not_cross_sentences():
    assert entity_scores([["B-PER"], ["I-PER"]], [["B-PER", ], ["I-PER"]])["chunks"] == 2


def test_perfect_and_empty_predictions():
    gold = [["B-PER", "I-PER", "O"]]
    assert entity_scores(gold, gold)["f1"] == 1.0
    none = entity_scores(gold, [["O", "O", "O"]])
    assert none["precision"] == none["recall"] == none["f1"] == 0.0


def test_is_bio():
    assert is_bio(["O", "B-PER", "I-PER"]) and not is_bio(["O", "PER"]) and not is_bio(["O", "O"])
    assert not is_bio(["B-", "O"]) and not is_bio(["NOUN", "VERB"])


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="sentence 0"):
        entity_scores([["O", "B-PER"]], [["O"]])


@pytest.mark.parametrize("seed", range(5))
def test_tag_macro_f1_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 6
    yt = rng.integers(0, k - 1, size=200)  # tag k−1 never occurs in the gold tags
    yp = np.where(rng.random(200) < 0.6, yt, rng.integers(0, k - 2 + seed % 2, size=200))
    names = [f"t{i}" for i in range(k)]
    ours = tag_scores(yt, yp, names)
    assert ours["f1_macro"] == pytest.approx(sk_f1(yt, yp, average="macro"), abs=1e-12)
    per = sk_f1(yt, yp, average=None, labels=list(range(k)), zero_division=0)
    assert [r["f1"] for r in ours["per_tag"]] == pytest.approx(list(per))
