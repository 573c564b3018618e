"""A user's own text through the plain command: the text column and the tokenizer level are
inferred and recorded, a .txt file trains a language model, and the defaults reach a long-range
label nobody tuned for (`nnrecipe.data.long_range`; the full table: benchmarks/text_defaults.py)."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from nnrecipe.cli import main
from nnrecipe.data.long_range import write_long_range_csv
from nnrecipe.driver import fit

TINY = ["model.rnn_hidden=16", "model.embed_dim=8", "train.epochs=1"]


def test_a_review_column_trains_at_word_level_and_config_records_it(tmp_path):
    data = write_long_range_csv(tmp_path / "t.csv", 120, text_column="review", min_len=5, max_len=9)
    run = fit(str(data), target="label", model="lstm", overrides=TINY, out=tmp_path / "run")
    text = yaml.safe_load((run.dir / "config.yaml").read_text())
    assert (text["text"]["text_column"], text["text"]["level"]) == ("review", "word")
    assert text["model"]["bidirectional"] is True and text["init"]["gate_bias"] == "chrono"
    assert run.metrics["vocab_size"] > 40  # words: the 21 letters and the space would give 26 ids


def test_an_ambiguous_csv_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "two.csv"
    path.write_text("a,b,label\n" + "".join(f"x y {i},z w {i},c{i % 2}\n" for i in range(20)))
    assert main(["fit", "--data", str(path), "--model", "lstm", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot tell the text column") and "--text-column" in err
    assert not (tmp_path / "r").exists()
    assert main(["fit", "--data", str(path), "--model", "lstm", "--text-column", "b", "--quiet",
                 "--set", "train.epochs=1", "--out", str(tmp_path / "r")]) == 0
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["text"]["text_column"] == "b"


def test_a_txt_file_trains_a_character_language_model(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("the cat sat on the mat. " * 200)
    run = fit(str(book), overrides=[*TINY, "text.block_size=16"], out=tmp_path / "lm")
    m = run.metrics
    assert m["kind"] == "lm" and json.loads((run.dir / "model.json").read_text())["sequence"]["level"] == "char"
    assert m["test"]["bits_per_token"] == pytest.approx(math.log2(m["test"]["perplexity"]))
    assert m["test"]["perplexity"] < 20  # one epoch of a 9-symbol text beats the uniform 12+ symbols
    assert main(["sample", str(run.dir), "--length", "20", "--prompt", "the"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lstm", "gru", "transformer"])
def test_the_plain_command_reaches_a_first_word_label(model, tmp_path):
    """The issue's case: 1,500 rows of 30–60 words, the label carried by the first word."""
    data = write_long_range_csv(tmp_path / "text.csv", 1500, text_column="review", place="first", seed=7)
    run = fit(str(data), target="label", model=model, out=tmp_path / "run")
    assert run.metrics["test"]["accuracy"] >= 0.95
