"""`nnrecipe evaluate` on sequence runs: text classifiers (original and compressed), seq2seq and
language models score a CSV/text file with fit's own encoding and metrics."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss
from testutil import TINY_SEQ, fit_tiny_memory_lstm, set_args, write_csv

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.sequence_data import load_task
from nnrecipe.sequence_inference import predict_texts

SAME = ("accuracy", "loss", "f1_macro", "ece", "confusion_matrix", "per_class")


def _split(run_dir, name="test"):
    return getattr(load_task(resolve_config(extra=nnrecipe.load(run_dir).config)), name)


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    return fit_tiny_memory_lstm(tmp_path_factory.mktemp("seqeval") / "lstm")


@pytest.fixture(scope="module")
def test_csv(lstm_run):
    split = _split(lstm_run)
    return write_csv(lstm_run.parent / "test.csv", ["text", "label"], list(zip(split.sources, split.labels)))


def _evaluate_cli(capsys, run_dir, data, *extra) -> dict:
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--data", str(data), *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_classifier_on_its_test_split_reproduces_fit_metrics(lstm_run, test_csv, capsys, tmp_path):
    out = tmp_path / "eval.json"
    result = _evaluate_cli(capsys, lstm_run, test_csv, "--out", str(out))
    recorded = json.loads((lstm_run / "metrics.json").read_text())["test"]
    assert {k: result[k] for k in SAME} == {k: recorded[k] for k in SAME}
    assert result["rows"] == len(_split(lstm_run).sources) and result["columns"] == "text/label"
    assert json.loads(out.read_text()) == result


def test_classifier_metrics_agree_with_predict_and_sklearn(lstm_run, test_csv):
    run = nnrecipe.load(lstm_run)
    split = _split(lstm_run)
    # predict encodes row batches its own way (padded per batch); the scores must not depend on it
    preds, probs = predict_texts(run, split.sources)
    result = nnrecipe.evaluate(run, str(test_csv))
    assert result["accuracy"] == pytest.approx(accuracy_score(split.labels, preds), abs=1e-12)
    assert result["f1_macro"] == pytest.approx(
        f1_score(split.labels, preds, labels=run.class_names, average="macro", zero_division=0), abs=1e-12)
    assert result["loss"] == pytest.approx(log_loss(split.labels, probs, labels=run.class_names), rel=1e-6)


def test_compressed_run_evaluates_like_its_own_metrics(lstm_run, test_csv, capsys):
    out = lstm_run.parent / "small"
    assert main(["compress", str(lstm_run), "--max-drop", "1", "--out", str(out)]) == 0
    result = _evaluate_cli(capsys, out, test_csv)
    recorded = json.loads((out / "metrics.json").read_text())["test"]
    assert {k: result[k] for k in SAME} == {k: recorded[k] for k in SAME}
    assert nnrecipe.load(out).info["compression"]["variant"] != "original"


@pytest.mark.parametrize("header, rows, expected", [
    (["text", "tag"], [["abc", "a"]], "no column 'label'"),
    (["text", "label"], [["abc", "a"], ["abc", "zzz"], ["hh", "yyy"]], "'yyy', 'zzz' are not classes"),
])
def test_bad_labelled_csv_is_a_one_line_error(lstm_run, tmp_path, capsys, header, rows, expected):
    data = write_csv(tmp_path / "bad.csv", header, rows)
    capsys.readouterr()
    assert main(["evaluate", str(lstm_run), "--data", str(data), "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err
    assert not (tmp_path / "r.json").exists()


def test_text_and_label_columns_come_from_the_run_config(tmp_path, capsys):
    rows = [[w * n, w[0]] for w in ("ab", "cd") for n in range(1, 31)]
    data = write_csv(tmp_path / "train.csv", ["sentence", "tag"], rows)
    run_dir = tmp_path / "run"
    assert main(["fit", "--data", str(data), "--model", "gru", "--epochs", "1", "--out", str(run_dir),
                 *set_args(["text.text_column=sentence", "text.label_column=tag", "model.rnn_hidden=8",
                            "model.embed_dim=4"])]) == 0
    result = _evaluate_cli(capsys, run_dir, data)
    assert result["rows"] == 60 and result["columns"] == "sentence/tag"
    preds, _ = predict_texts(nnrecipe.load(run_dir), [r[0] for r in rows])
    assert result["accuracy"] == pytest.approx(np.mean([p == r[1] for p, r in zip(preds, rows)]), abs=1e-12)
    renamed = write_csv(tmp_path / "renamed.csv", ["text", "label"], rows)
    assert main(["evaluate", str(run_dir), "--data", str(renamed)]) == 2
    assert "no column 'sentence'" in capsys.readouterr().err


def test_seq2seq_run_reports_exact_match_token_accuracy_and_bleu(tmp_path):
    run_dir = tmp_path / "s2s"
    nnrecipe.fit("seq:reverse", model="seq2seq", out=run_dir, progress=False,
                 overrides=["train.epochs=1", "text.task_size=100", *TINY_SEQ[1:]])
    split = _split(run_dir)
    data = write_csv(tmp_path / "pairs.csv", ["source", "target"], list(zip(split.sources, split.targets)))
    result = nnrecipe.evaluate(nnrecipe.load(run_dir), str(data))
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]
    for key in ("exact_match", "token_accuracy", "bleu", "examples"):
        assert result[key] == recorded[key]
    assert result["kind"] == "seq2seq" and result["rows"] == len(split.sources)


def test_language_model_perplexity_from_a_text_file_or_a_csv_column(tmp_path):
    run_dir = tmp_path / "lm"
    nnrecipe.fit("seq:charlm", model="lstm", out=run_dir, progress=False,
                 overrides=["train.epochs=1", "text.task_size=2000", "text.sample_length=5", *TINY_SEQ[1:]])
    paragraphs = _split(run_dir).sources
    txt = tmp_path / "test.txt"
    txt.write_text("".join(paragraphs))
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]
    run = nnrecipe.load(run_dir)
    from_txt = nnrecipe.evaluate(run, str(txt))
    assert {k: from_txt[k] for k in ("perplexity", "token_accuracy", "tokens")} == \
        {k: recorded[k] for k in ("perplexity", "token_accuracy", "tokens")}
    assert from_txt["windows"] * run.config["text"]["block_size"] == from_txt["tokens"]
    with (tmp_path / "test.csv").open("w", newline="") as fh:  # paragraphs end in newlines: quoted cells
        csv.writer(fh).writerows([["text"], *[[p] for p in paragraphs]])
    assert nnrecipe.evaluate(run, str(tmp_path / "test.csv"))["perplexity"] == from_txt["perplexity"]
