"""Tokenizers, Vocab, pad_batch and the text CSV loaders, with every bad-input error."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from nnrecipe.data.text import (
    BOS,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    Vocab,
    detokenize,
    flip_numbers,
    load_parallel_csv,
    load_text_csv,
    pad_batch,
    tokenize,
)
from nnrecipe.errors import UserError

TEXTS = ["the cat sat.", "The dog sat, then the cat ran!", "a bird"]


def write_rows(tmp_path, rows, name="texts.csv"):
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def test_tokenize_levels():
    assert tokenize("ab c", "char") == ["a", "b", " ", "c"]
    assert tokenize("Hello, World!  it's", "word") == ["hello", ",", "world", "!", "it", "'", "s"]
    assert detokenize(["a", " ", "b"], "char") == "a b"
    assert detokenize(["hello", ",", "world"], "word") == "hello , world"
    with pytest.raises(UserError, match="unknown tokenizer level 'byte'"):
        tokenize("x", "byte")


def test_vocab_order_is_by_count_then_alphabetical():
    vocab = Vocab.build(["b a c a b a", "d"], "word")
    # counts: a 3, b 2, c 1, d 1 (c before d alphabetically)
    assert vocab.tokens == [*SPECIALS, "a", "b", "c", "d"]
    assert len(vocab) == 8 and vocab.level == "word"


def test_vocab_build_is_deterministic_whatever_the_text_order():
    a = Vocab.build(TEXTS, "char")
    b = Vocab.build(list(reversed(TEXTS)), "char")
    assert a == b and a.tokens == b.tokens


def test_vocab_min_freq_and_max_size():
    texts = ["aaaabbbccd"]
    assert Vocab.build(texts, "char", min_freq=2).tokens == [*SPECIALS, "a", "b", "c"]
    assert Vocab.build(texts, "char", max_size=6).tokens == [*SPECIALS, "a", "b"]
    assert Vocab.build(texts, "char", max_size=4).tokens == list(SPECIALS)
    with pytest.raises(UserError, match="max_size=3"):
        Vocab.build(texts, "char", max_size=3)
    with pytest.raises(UserError, match="min_freq=0"):
        Vocab.build(texts, "char", min_freq=0)


def test_specials_in_text_get_no_second_id():
    vocab = Vocab.build(["<unk>"], "char")
    assert vocab.tokens.count("<unk>") == 1 and set(vocab.tokens[4:]) == set("<unk>")


def test_char_round_trip_with_bos_eos():
    vocab = Vocab.build(TEXTS, "char")
    for text in TEXTS:
        ids = vocab.encode(text, bos=True, eos=True)
        assert ids[0] == BOS and ids[-1] == EOS and len(ids) == len(text) + 2
        assert vocab.decode(ids) == text
        assert vocab.decode(torch.tensor(ids)) == text


def test_word_round_trip_gives_the_tokens_back():
    vocab = Vocab.build(TEXTS, "word")
    for text in TEXTS:
        decoded = vocab.decode(vocab.encode(text))
        assert tokenize(decoded, "word") == tokenize(text, "word")
    assert vocab.decode(vocab.encode("The cat ran!")) == "the cat ran !"


def test_unknown_tokens_and_decode_rules():
    vocab = Vocab.build(["ab"], "char")
    a, b = vocab.encode("ab")
    assert vocab.encode("azb") == [a, UNK, b]
    assert vocab.decode([a, UNK, b]) == "a<unk>b"
    # PAD and BOS are skipped, EOS ends the text unless stop_at_eos=False
    assert vocab.decode([BOS, a, PAD, b, EOS, a, PAD]) == "ab"
    assert vocab.decode([BOS, a, EOS, b], stop_at_eos=False) == "ab"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([len(vocab)])


def test_to_dict_from_dict_round_trip_through_json():
    for level in ("char", "word"):
        vocab = Vocab.build(TEXTS, level, min_freq=1)
        restored = Vocab.from_dict(json.loads(json.dumps(vocab.to_dict())))
        assert restored == vocab
        assert restored.encode(TEXTS[1]) == vocab.encode(TEXTS[1])


@pytest.mark.parametrize("bad, message", [
    ([1, 2], "must be a dict"),
    ({"tokens": list(SPECIALS)}, "keys 'level' and 'tokens'"),
    ({"level": "byte", "tokens": list(SPECIALS)}, "level 'byte'"),
    ({"level": "char", "tokens": "abc"}, "list of non-empty strings"),
    ({"level": "char", "tokens": [*SPECIALS, 5]}, "list of non-empty strings"),
    ({"level": "char", "tokens": ["a", *SPECIALS]}, "must start with <pad>"),
    ({"level": "char", "tokens": [*SPECIALS, "a", "a"]}, r"repeats tokens: \['a'\]"),
    ({"level": "char", "tokens": list(SPECIALS), "reverse_numbers": "yes"}, "true or false"),
    ({"level": "char", "tokens": list(SPECIALS), "extra": 1}, "optionally 'reverse_numbers'"),
])
def test_from_dict_rejects_malformed(bad, message):
    with pytest.raises(UserError, match=message):
        Vocab.from_dict(bad)


def test_pad_batch_shapes_lengths_and_truncation():
    ids, lengths = pad_batch([[5, 6, 7], [8], []])
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    assert ids.tolist() == [[5, 6, 7], [8, PAD, PAD], [PAD, PAD, PAD]]
    assert lengths.tolist() == [3, 1, 0]
    ids, lengths = pad_batch([[5, 6, 7], [8]], max_len=2)
    assert ids.tolist() == [[5, 6], [8, PAD]] and lengths.tolist() == [2, 1]
    ids, lengths = pad_batch([[5]], max_len=4)
    assert ids.shape == (1, 4) and lengths.tolist() == [1]
    assert pad_batch([])[0].shape == (0, 0)
    with pytest.raises(ValueError):
        pad_batch([[1]], max_len=0)


def test_load_text_csv_with_quoted_commas_and_newlines(tmp_path):
    path = write_rows(tmp_path, [["id", "text", "label"],
                                 ["1", "hello, world", " pos "],
                                 ["2", "two\nlines, and \"quotes\"", "neg"]])
    texts, labels = load_text_csv(path)
    assert texts == ["hello, world", 'two\nlines, and "quotes"']
    assert labels == ["pos", "neg"]


def test_load_parallel_csv_named_columns_and_blank_lines(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("\ufeffen,fr\nhi,salut\n\n\"a, b\",\"c, d\"\n", encoding="utf-8")
    sources, targets = load_parallel_csv(path, source_column="en", target_column="fr")
    assert sources == ["hi", "a, b"] and targets == ["salut", "c, d"]


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(UserError, match="file not found") as err:
        load_text_csv(missing)
    assert str(missing) in str(err.value)


def test_missing_column_names_the_columns_present(tmp_path):
    path = write_rows(tmp_path, [["sentence", "label"], ["hi", "a"]])
    with pytest.raises(UserError) as err:
        load_text_csv(path)
    message = str(err.value)
    assert "no column 'text'" in message and "'sentence', 'label'" in message
    assert str(path) in message
    with pytest.raises(UserError, match="no column 'target'.*'source', 'tgt'"):
        load_parallel_csv(write_rows(tmp_path, [["source", "tgt"], ["a", "b"]], "p.csv"))


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(UserError, match="is empty") as err:
        load_text_csv(path)
    assert str(path) in str(err.value)


def test_header_only(tmp_path):
    with pytest.raises(UserError, match="no data rows"):
        load_text_csv(write_rows(tmp_path, [["text", "label"]]))


def test_empty_text_names_the_data_row(tmp_path):
    path = write_rows(tmp_path, [["text", "label"], ["ok", "a"], ["", "b"]])
    with pytest.raises(UserError, match="empty 'text' in data row 2") as err:
        load_text_csv(path)
    assert str(path) in str(err.value)
    path = write_rows(tmp_path, [["source", "target"], ["ok", "  "]], "p.csv")
    with pytest.raises(UserError, match="empty 'target' in data row 1"):
        load_parallel_csv(path)


def test_ragged_row(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\nhello, world,pos\n")
    with pytest.raises(UserError, match="data row 1 has 3 fields but the header has 2"):
        load_text_csv(path)


def test_non_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\u00e9,a\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8") as err:
        load_text_csv(path)
    assert str(path) in str(err.value)


def test_flip_numbers_reverses_each_digit_run_and_is_its_own_inverse():
    assert flip_numbers("123+45") == "321+54"
    assert flip_numbers("x10 y 2005, 7.") == "x01 y 5002, 7."
    for text in ("123+45", "a1b22c333", "no digits", "", "0+0"):
        assert flip_numbers(flip_numbers(text)) == text


@pytest.mark.parametrize("level", ["char", "word"])
def test_reverse_numbers_vocab_feeds_reversed_digits_and_decodes_as_written(level):
    texts = ["123+45", "7+980", "12 apples and 305 pears"]
    plain = Vocab.build([flip_numbers(t) for t in texts], level)
    flipped = Vocab.build(texts, level, reverse_numbers=True)
    assert flipped.tokens == plain.tokens  # counted over the reversed texts
    for text in texts:
        ids = flipped.encode(text, bos=True, eos=True)
        assert ids == plain.encode(flip_numbers(text), bos=True, eos=True)  # the model sees LSB first
        decoded = flipped.decode(ids)
        assert decoded == (text if level == "char" else " ".join(tokenize(text, "word")))
    restored = Vocab.from_dict(json.loads(json.dumps(flipped.to_dict())))
    assert restored == flipped and restored.reverse_numbers
    assert "reverse_numbers" not in plain.to_dict()  # runs saved before the option load unchanged
