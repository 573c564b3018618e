"""Which CSV columns hold the text and the label, the tokenizer level, and .txt corpora."""

from __future__ import annotations

import csv

import pytest

from nnrecipe.data.long_range import long_range_rows, write_long_range_csv
from nnrecipe.data.text_inference import infer_columns, infer_level, is_free_text, read_corpus
from nnrecipe.errors import UserError

PAIR = ("source", "target")


def _csv(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def test_the_one_free_text_column_is_the_text(tmp_path):
    path = _csv(tmp_path / "a.csv", ["id", "review", "label"],
                [[i, f"words number {i} here", "pos" if i % 2 else "neg"] for i in range(20)])
    cols = infer_columns(path, text=None, label=None, pair=PAIR)
    assert (cols.kind, cols.first, cols.second) == ("classify", "review", "label")


def test_named_columns_win_and_the_target_names_the_label(tmp_path):
    path = _csv(tmp_path / "a.csv", ["body", "title", "y"], [[f"a b c {i}", f"t {i} x", str(i % 2)] for i in range(20)])
    with pytest.raises(UserError, match="--text-column"):  # two free-text columns: ambiguous
        infer_columns(path, text=None, label="y", pair=PAIR)
    cols = infer_columns(path, text="title", label="y", pair=PAIR)
    assert (cols.first, cols.second) == ("title", "y")


def test_two_free_text_columns_alone_are_a_parallel_corpus(tmp_path):
    path = _csv(tmp_path / "p.csv", ["english", "french"], [[f"the cat {i}", f"le chat {i}"] for i in range(20)])
    cols = infer_columns(path, text=None, label=None, pair=PAIR)
    assert (cols.kind, cols.first, cols.second) == ("seq2seq", "english", "french")


def test_numbers_and_short_labels_are_not_free_text():
    assert not is_free_text(["1", "2.5", "3"])
    assert not is_free_text(["pos", "neg"] * 10)
    assert is_free_text(["abcab", "bacda", "ddcab", "aabbc"])  # distinct strings: char-level text


def test_level_is_word_for_word_separated_texts_and_char_otherwise():
    assert infer_level([t for t, _ in long_range_rows(20)]) == "word"
    assert infer_level(["12+7", "abcab", "hello world"]) == "char"


def test_a_folder_of_txt_files_is_one_corpus_in_name_order(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    assert read_corpus(tmp_path) == "first\n\nsecond"
    (tmp_path / "c.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(UserError, match="not UTF-8"):
        read_corpus(tmp_path)


def test_long_range_label_is_the_cue_at_its_place(tmp_path):
    rows = long_range_rows(200, place="last", min_len=5, max_len=9, seed=3)
    cue = {}
    for text, label in rows:
        cue.setdefault(text.split()[-1], set()).add(label)
    assert len(cue) == 4 and all(len(labels) == 1 for labels in cue.values())
    path = write_long_range_csv(tmp_path / "x.csv", 10, text_column="review")
    assert path.read_text().splitlines()[0] == "review,label"
