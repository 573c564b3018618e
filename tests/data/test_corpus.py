"""Corpus reading, the word vocabulary, the planted-analogy corpus and analogy files."""

from __future__ import annotations

from collections import Counter

import pytest

from nnrecipe.data.corpus import (FAMILIES, MARKERS, WordVocab, encode_corpus, format_analogies, load_corpus,
                                  read_analogies, synthetic_analogies, synthetic_corpus, tokenize_words)
from nnrecipe.errors import UserError


def test_tokenize_lowercases_and_splits_on_non_alphanumerics():
    assert tokenize_words("Hello, World! it's 2024_x Ünïcode-ok") == ["hello", "world", "it", "s", "2024", "x",
                                                                       "ünïcode", "ok"]


def test_load_corpus_from_a_file_and_a_folder(tmp_path):
    (tmp_path / "a.txt").write_text("The cat sat.\n\n  \nA dog ran!\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Birds fly\n")
    (tmp_path / "notes.md").write_text("ignored words\n")
    sentences, name = load_corpus(str(tmp_path / "a.txt"))
    assert sentences == [["the", "cat", "sat"], ["a", "dog", "ran"]] and name == "a"
    sentences, _ = load_corpus(str(tmp_path))
    assert sentences == [["the", "cat", "sat"], ["a", "dog", "ran"], ["birds", "fly"]]


@pytest.mark.parametrize("make, source", [
    (lambda p: None, "missing.txt"),
    (lambda p: (p / "empty").mkdir(), "empty"),
    (lambda p: (p / "blank.txt").write_text("  ,,, !\n"), "blank.txt"),
])
def test_load_corpus_errors(tmp_path, make, source):
    make(tmp_path)
    with pytest.raises(UserError):
        load_corpus(str(tmp_path / source))
    with pytest.raises(UserError, match="w2v:synthetic"):
        load_corpus("w2v:nope")


def test_vocab_order_min_count_and_cap():
    sentences = [["b", "a", "c", "a"], ["b", "d", "c", "e"], ["a"]]
    vocab = WordVocab.build(sentences, min_count=2)
    assert vocab.words == ["a", "b", "c"] and vocab.counts == [3, 2, 2]  # ties alphabetical
    assert WordVocab.build(sentences, min_count=1, max_size=2).words == ["a", "b"]
    with pytest.raises(UserError, match="min_count"):
        WordVocab.build(sentences, min_count=4)
    ids, sentence = encode_corpus(sentences, vocab)
    assert ids.tolist() == [1, 0, 2, 0, 1, 2, 0]  # d and e dropped before windowing
    assert sentence.tolist() == [0, 0, 0, 0, 1, 1, 2]


def test_synthetic_corpus_is_deterministic_and_planted():
    a, b = synthetic_corpus(0, sentences_per_word=5), synthetic_corpus(0, sentences_per_word=5)
    assert a == b and a != synthetic_corpus(1, sentences_per_word=5)
    variant_of = {w: v for _, variants, pairs in FAMILIES.values() for pair in pairs for w, v in zip(pair, variants)}
    marker_of = {m: v for v, ms in MARKERS.items() for m in ms}
    assert len(marker_of) == sum(len(ms) for ms in MARKERS.values())  # no marker shared by two variants
    assert not set(variant_of) & set(marker_of)
    counts = Counter()
    for tokens in a:
        words = [t for t in tokens if t in variant_of]
        assert len(words) == 1  # one analogy word per sentence ...
        assert {marker_of[t] for t in tokens if t in marker_of} == {variant_of[words[0]]}  # ... with its markers
        counts[words[0]] += 1
    assert set(counts.values()) == {5} and len(counts) == len(variant_of)
    vocab = Counter(t for tokens in synthetic_corpus(0, sentences_per_word=60) for t in tokens)
    assert min(vocab.values()) >= 5  # every word survives the default min_count
    assert len(vocab) == 168 + 32 + 12 + 20 + 84 * 3  # analogy, marker, topic, filler, private words: all distinct


def test_synthetic_analogies_round_trip_through_the_file_format(tmp_path):
    sections = synthetic_analogies()
    for name, (_, _, pairs) in zip(sections, FAMILIES.values()):
        assert len(sections[name]) == len(pairs) * (len(pairs) - 1)
    assert ("paris", "france", "rome", "italy") in sections["capital-country"]
    path = tmp_path / "q.txt"
    path.write_text(format_analogies(sections).replace("paris france rome italy", "Paris France  Rome Italy"))
    assert read_analogies(path) == sections
    assert read_analogies("w2v:synthetic") == sections


def test_read_analogies_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(": s\na b c\n")
    with pytest.raises(UserError, match="line 2"):
        read_analogies(bad)
    with pytest.raises(UserError, match="not found"):
        read_analogies(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text(": only headers\n")
    with pytest.raises(UserError, match="no analogy"):
        read_analogies(tmp_path / "empty.txt")
