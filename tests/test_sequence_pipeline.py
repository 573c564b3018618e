"""Sequence runs end to end: generated tasks, text CSVs, predict, sample, bad input."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.data import Vocab, pad_batch
from nnrecipe.sequence_inference import predict_texts, sample
from nnrecipe.data.text import flip_numbers
from nnrecipe.config import resolve_config, schedule_name

SMALL = ["train.epochs=2", "model.rnn_hidden=32", "model.embed_dim=16", "model.dim=32", "model.depth=1",
         "train.batch_size=32", "train.log_every=5"]


def _fit(data, tmp_path, extra=(), model=None):
    return nnrecipe.fit(data, model=model, overrides=SMALL + list(extra), out=tmp_path / "run")


def test_reverse_seq2seq_writes_sequence_metrics_and_predicts(tmp_path):
    run = _fit("seq:reverse", tmp_path, ["text.task_size=200"])
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["kind"] == "seq2seq" and m["model"] == "seq2seq"
    for key in ("exact_match", "token_accuracy", "bleu"):
        assert 0 <= m["test"][key] <= (100 if key == "bleu" else 1)
    ex = m["test"]["attention_example"]
    w = np.asarray(ex["weights"])
    assert w.shape == (len(ex["output"]), len(ex["source"]))
    np.testing.assert_allclose(w.sum(1), 1, atol=1e-5)  # each output step's attention is a distribution
    assert (tmp_path / "run" / "plots" / "attention.png").exists()
    loaded = nnrecipe.load(tmp_path / "run")
    preds, probs = predict_texts(loaded, ["abc", "1234"])
    assert probs is None and len(preds) == 2 and all(isinstance(p, str) for p in preds)
    same, _ = predict_texts(run, ["abc", "1234"])
    assert preds == same  # the saved vocabularies and weights reproduce the in-memory model


def test_addition_model_reads_and_writes_numbers_as_written(tmp_path):
    """seq:addition defaults to text.reverse_numbers: the model sees and emits digits least-significant
    first, while the examples, predictions and vocabularies on disk use ordinary numbers."""
    run = _fit("seq:addition", tmp_path, ["text.task_size=200", "train.epochs=1"])
    assert run.config["text"]["reverse_numbers"] is True
    example = run.metrics["test"]["examples"][0]
    assert example["target"] == str(eval(example["source"]))  # noqa: S307 - a generated "a+b"
    loaded = nnrecipe.load(tmp_path / "run")
    src, tgt = (Vocab.from_dict(loaded.info["sequence"][k]) for k in ("src_vocab", "tgt_vocab"))
    assert src.reverse_numbers and tgt.reverse_numbers
    plain = Vocab(tokens=tgt.tokens, level="char")  # the same ids read without flipping
    texts = ["123+4567", "80+9"]
    preds, _ = predict_texts(loaded, texts)
    x, _ = pad_batch([src.encode(t) for t in texts])
    assert x[0].tolist()[:4] == [src.tokens.index(c) for c in "321+"]
    raw, _ = loaded.model.greedy_decode(x, None, 2 * x.shape[1] + 10, 2, 3)
    assert preds == [flip_numbers(plain.decode(row)) for row in raw.tolist()]
    assert tgt.encode("168") == plain.encode("861") and tgt.decode(plain.encode("861")) == "168"


def test_memory_task_reports_input_gradient_norms(tmp_path):
    run = _fit("seq:memory", tmp_path, ["text.task_size=100"], model="gru")
    grads = run.metrics["input_grad_norms"]
    assert set(grads) == {"init", "trained"}
    assert all(v["first_step"] >= 0 and v["last_step"] > 0 for v in grads.values())
    assert run.metrics["test"]["accuracy"] >= 0  # a classification block with the usual keys
    assert len(run.class_names) == 8


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_char_lm_perplexity_and_sampling(tmp_path, model):
    extra = ["text.task_size=3000", "text.block_size=32", "text.sample_length=20"]
    if model == "lstm":
        extra.append("text.tbptt=8")
    run = _fit("seq:charlm", tmp_path, extra, model=model)
    test = run.metrics["test"]
    V = run.metrics["vocab_size"]
    assert 1 < test["perplexity"] < V  # better than uniform after a little training
    assert run.metrics["sample"]["text"].startswith(run.metrics["sample"]["prompt"])
    text = sample(nnrecipe.load(tmp_path / "run"), "the ", length=15, temperature=0.5, seed=1)
    assert text.startswith("the ") and len(text) == 4 + 15


def _sentiment_csv(path, n=160, seed=0):
    rng = np.random.default_rng(seed)
    good, bad, filler = ["great", "good", "fine", "nice"], ["awful", "bad", "poor", "sad"], ["the", "a", "film", "was", "very", "plot"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            label = "pos" if i % 2 else "neg"
            words = list(rng.choice(filler, size=rng.integers(2, 8))) + [rng.choice(good if i % 2 else bad)]
            rng.shuffle(words)
            w.writerow([" ".join(words) + ", really.", label])
    return path


@pytest.mark.parametrize("model", ["gru", "transformer"])
def test_text_classification_csv_then_predict_cli(tmp_path, model):
    data = _sentiment_csv(tmp_path / "reviews.csv")
    run = _fit(str(data), tmp_path, ["text.level=word", "train.epochs=30", "optimizer.lr=3e-3"], model=model)
    assert run.metrics["test"]["accuracy"] >= 0.85
    new = tmp_path / "new.txt"
    new.write_text("the film was great\nvery awful plot\n")
    out = tmp_path / "preds.csv"
    assert main(["predict", str(tmp_path / "run"), "--data", str(new), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["input"] for r in rows] == ["the film was great", "very awful plot"]
    assert [r["prediction"] for r in rows] == ["pos", "neg"]
    assert all(abs(float(r["prob_neg"]) + float(r["prob_pos"]) - 1) < 1e-5 for r in rows)


def test_parallel_csv_with_transformer_encoder_decoder(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target"])
        for _ in range(120):
            s = "".join(rng.choice(list("abcd"), size=rng.integers(2, 6)))
            w.writerow([s, s.upper()])
    run = _fit(str(path), tmp_path, model="transformer")
    assert run.info["architecture"]["kind"] == "encoder_decoder"
    assert run.metrics["kind"] == "seq2seq" and "bleu" in run.metrics["test"]


def test_padding_never_changes_a_prediction(tmp_path):
    run = _fit("seq:memory", tmp_path, ["text.task_size=100"], model="lstm")
    vocab = Vocab.from_dict(run.info["sequence"]["src_vocab"])
    short, long = "abcabc", "h" * 60
    alone, _ = pad_batch([vocab.encode(short)])
    both, _ = pad_batch([vocab.encode(short), vocab.encode(long)])
    with torch.no_grad():
        a = run.model(alone)[0]
        b = run.model(both)[0]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_schedule_auto_is_inverse_sqrt_for_transformers(tmp_path):
    run = _fit("seq:memory", tmp_path, ["text.task_size=100", "train.epochs=1"], model="transformer")
    assert run.config["schedule"]["name"] == "auto"
    assert schedule_name(resolve_config(extra=run.config)) == "inverse_sqrt"
    assert schedule_name(resolve_config(extra={"model": {"name": "lstm"}})) == "cosine"


@pytest.mark.parametrize("argv,needles", [
    (["fit", "--data", "seq:revers"], ["reverse"]),
    (["fit", "--data", "seq:memory", "--model", "cnn"], ["cnn", "--model"]),
    (["fit", "--data", "seq:memory", "--model", "seq2seq"], ["seq2seq"]),
])
def test_bad_sequence_input_is_one_clean_line(argv, needles, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(argv + ["--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "Traceback" not in err and not out.exists()
    for needle in needles:
        assert needle in err


def test_text_csv_missing_column_is_named(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("sentence,label\nhello there,a\nbye now,b\n")
    code = main(["fit", "--data", str(path), "--model", "lstm", "--text-column", "text", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "'text'" in err and "sentence" in err  # a named column that is not there
    assert err.count("\n") == 1 and "Traceback" not in err and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_chrono_gates_carry_the_first_symbol_across_60_steps(tmp_path):
    """The long-range memory claim (README Results): the default seq:memory LSTM, 6 of its 10 epochs."""
    run = nnrecipe.fit("seq:memory", model="lstm", overrides=["train.epochs=6", "train.log_every=50"],
                       out=tmp_path / "run")
    assert run.config["init"]["gate_bias"] == "chrono"
    assert run.metrics["test"]["accuracy"] >= 0.9, run.metrics["test"]["accuracy"]
