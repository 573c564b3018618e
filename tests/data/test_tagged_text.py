"""Reading tagged sentences: tokens,tags CSVs, CoNLL files and unlabelled input for predict."""

from __future__ import annotations

import pytest

from nnrecipe.data.tagged_text import read_conll, read_labelled, read_tagged_csv, read_unlabelled
from nnrecipe.errors import UserError
from testutil import write_csv


def test_csv_rows_are_split_on_whitespace_and_kept_verbatim(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["id", "tokens", "tags"],
                     [[1, "U.S. Army  said", "B-ORG I-ORG O"], [2, "Hello", "O"]])
    data = read_tagged_csv(str(path))
    assert data.tokens == [["U.S.", "Army", "said"], ["Hello"]]  # no lower-casing, no re-tokenizing
    assert data.tags == [["B-ORG", "I-ORG", "O"], ["O"]]


def test_csv_with_other_column_names(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["words", "labels"], [["a b", "X Y"]])
    assert read_tagged_csv(str(path), tokens_column="words", tags_column="labels").tags == [["X", "Y"]]


def test_csv_row_with_fewer_tags_than_tokens_is_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["tokens", "tags"], [["a b", "O O"], ["a b c", "O O"]])
    with pytest.raises(UserError, match="data row 2 has 3 tokens but 2 tags"):
        read_tagged_csv(str(path))


def test_conll_reads_sentences_token_first_tag_last(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
                    "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n")  # no blank line at the end
    data = read_conll(str(path))
    assert data.tokens == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert data.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]


def test_conll_line_without_a_tag_is_refused_with_its_number(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("a O\nb\n")
    with pytest.raises(UserError, match="line 2 has a token but no tag"):
        read_labelled(str(path))  # any name but .csv is read as CoNLL
    (tmp_path / "empty.conll").write_text("\n\n")
    with pytest.raises(UserError, match="no sentences"):
        read_conll(str(tmp_path / "empty.conll"))


def test_unlabelled_inputs(tmp_path):
    csv_path = write_csv(tmp_path / "in.csv", ["tokens"], [["mr Bala said"]])
    assert read_unlabelled(str(csv_path)).tokens == [["mr", "Bala", "said"]]
    (tmp_path / "in.conll").write_text("mr\nBala B-PER\n\nsaid\n")
    assert read_unlabelled(str(tmp_path / "in.conll")).tokens == [["mr", "Bala"], ["said"]]
    (tmp_path / "in.txt").write_text("mr Bala said\n\n  in Bata \n")
    assert read_unlabelled(str(tmp_path / "in.txt")).tokens == [["mr", "Bala", "said"], ["in", "Bata"]]
    with pytest.raises(UserError, match="file not found"):
        read_unlabelled(str(tmp_path / "missing.txt"))
