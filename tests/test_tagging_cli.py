"""Sequence tagging end to end: which data is tagging, `nnrecipe fit` / `predict` / `evaluate` on
seq:tagging, a tokens,tags CSV and CoNLL files, the API, entity F1 equal to seqeval on the run's
own predictions, and the one-line errors."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from seqeval.metrics import f1_score

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.data.tagging_task import make_tagging
from nnrecipe.tagging import tag_sentences
from nnrecipe.tasks import task_name
from testutil import set_args, write_csv

TINY = ["text.task_size=800", "model.rnn_hidden=32", "model.embed_dim=16", "train.batch_size=16", "train.epochs=5",
        "optimizer.lr=0.01"]  # about 2 s; test entity F1 0.97 (seed 0)


def _tagging_csv(path, sentences):
    return write_csv(path, ["tokens", "tags"], [[" ".join(w), " ".join(t)] for w, t in zip(sentences.tokens,
                                                                                         sentences.tags)])


def _conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(ws, ts))
                                for ws, ts in zip(sentences.tokens, sentences.tags)) + "\n")
    return path


def test_which_data_is_tagging(tmp_path):
    tagged = write_csv(tmp_path / "ner.csv", ["tokens", "tags"], [["a b", "O B-X"]])
    text = write_csv(tmp_path / "reviews.csv", ["text", "label"], [["fine", "pos"]])
    (tmp_path / "corpus.txt").write_text("a O\nb O\n")
    cases = {"seq:tagging": "tagging", str(tagged): "tagging", str(tmp_path / "x.conll"): "tagging",
             str(text): "tabular", str(tmp_path / "corpus.txt"): "sequence", "seq:reverse": "sequence"}
    for source, name in cases.items():
        cfg = resolve_config(overrides=[f"data.source={source}"])
        assert task_name(cfg) == name, source
        assert cfg.model.bidirectional == (name == "tagging") and (cfg.data.task == "tagging") == (name == "tagging")
    assert task_name(resolve_config(overrides=[f"data.source={tmp_path / 'corpus.txt'}", "data.task=tagging"])) \
        == "tagging"  # a .txt is CoNLL only when asked: plain text stays a language model's
    assert task_name(resolve_config(overrides=[f"data.source={tagged}", "data.task=classification"])) == "tabular"
    assert not resolve_config(overrides=["data.source=seq:tagging", "model.bidirectional=false"]).model.bidirectional


def test_a_transformer_tagger_gets_its_own_defaults_and_a_classifier_does_not(tmp_path):
    tagger = resolve_config(overrides=["data.source=seq:tagging", "model.name=transformer"])
    assert (tagger.init.name, tagger.optimizer.lr, tagger.train.epochs) == ("torch", 3e-3, 20)
    assert resolve_config(overrides=["data.source=seq:tagging", "model.name=transformer",
                                     "optimizer.lr=1e-3"]).optimizer.lr == 1e-3  # the user's value wins
    classifier = resolve_config(overrides=["data.source=seq:memory", "model.name=transformer"])
    assert classifier.init.name == "normal" and classifier.optimizer.lr is None
    assert resolve_config(overrides=["data.source=seq:tagging", "model.name=lstm"]).init.name != "torch"


@pytest.fixture(scope="module")
def tagging_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tag") / "run"
    assert main(["fit", "--data", "seq:tagging", "--out", str(out), *set_args(TINY)]) == 0
    return out


def test_fit_writes_a_tagging_run(tagging_run, capsys):
    config = yaml.safe_load((tagging_run / "config.yaml").read_text())
    assert config["data"]["task"] == "tagging" and config["model"]["bidirectional"] is True
    info = json.loads((tagging_run / "model.json").read_text())
    assert info["task"] == "tagging" and info["architecture"]["pattern"] == "many_to_many"
    assert info["tagging"]["scheme"] == "bio" and info["tagging"]["vocab"]["level"] == "whitespace"
    test = json.loads((tagging_run / "metrics.json").read_text())["test"]
    assert 0.5 < test["entity_f1"] <= 1 and 0.5 < test["f1_macro"] <= 1 and test["token_accuracy"] > 0.9
    assert len(test["confusion_matrix"]) == len(test["class_names"]) == 7 == len(test["per_tag"])
    assert sum(map(sum, test["confusion_matrix"])) == test["tokens"]
    html = (tagging_run / "report.html").read_text()
    assert "Entities and examples" in html and "Per-class metrics" in html


def test_evaluate_on_the_test_split_reproduces_fit_and_seqeval_agrees(tagging_run, tmp_path, capsys):
    split = make_tagging(seed=0)["test"]  # the run's test split (its seed; the size changes train alone)
    data = _tagging_csv(tmp_path / "test.csv", split)
    fitted = json.loads((tagging_run / "metrics.json").read_text())["test"]
    capsys.readouterr()
    assert main(["evaluate", str(tagging_run), "--data", str(data)]) == 0
    again = json.loads(capsys.readouterr().out)
    for key in ("token_accuracy", "f1_macro", "entity_f1", "entity_precision", "loss", "tokens"):
        assert again[key] == pytest.approx(fitted[key], abs=1e-12), key
    assert main(["predict", str(tagging_run), "--data", str(data), "--out", str(tmp_path / "pred.csv")]) == 0
    with (tmp_path / "pred.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    predicted = [r["tags"].split() for r in rows]
    assert [r["tokens"].split() for r in rows] == split.tokens
    assert [len(p) for p in predicted] == [len(t) for t in split.tokens]  # one tag per token
    assert f1_score(split.tags, predicted) == pytest.approx(fitted["entity_f1"], abs=1e-12)


def test_csv_and_conll_files_with_a_transformer(tmp_path, capsys):
    sentences = make_tagging(seed=5, size=200)["train"]
    csv_path = _tagging_csv(tmp_path / "ner.csv", sentences)
    sets = [*TINY, "model.dim=16", "model.heads=2", "model.depth=1", "train.epochs=2"]
    assert main(["fit", "--data", str(csv_path), "--model", "transformer", "--out", str(tmp_path / "csv"),
                 *set_args(sets)]) == 0
    out = capsys.readouterr().out
    assert "token accuracy" in out and "entity P/R/F1" in out
    info = json.loads((tmp_path / "csv" / "model.json").read_text())
    assert info["architecture"]["pool"] == "none" and info["data"] == "ner"
    conll = _conll(tmp_path / "ner.txt", sentences)  # not .conll: read as CoNLL because --task says so
    assert main(["fit", "--data", str(conll), "--task", "tagging", "--model", "gru", "--quiet",
                 "--out", str(tmp_path / "conll"), *set_args(TINY)]) == 0
    (tmp_path / "in.conll").write_text("mr\nBala\nsaid\n\nin\nBata\n")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "conll"), "--data", str(tmp_path / "in.conll")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "tokens,tags" and [len(line.split(",")[1].split()) for line in lines[1:]] == [3, 2]


def test_the_api(tmp_path):
    run = nnrecipe.fit("seq:tagging", model="gru", overrides=TINY, out=tmp_path / "run")
    assert run.task == "tagging" and "entity_f1" in run.metrics["test"]
    loaded = nnrecipe.load(run.dir)
    tags = tag_sentences(loaded, [["mr", "Bala", "said"], ["Bela", "froze"]])
    assert [len(t) for t in tags] == [3, 2] and all(t in loaded.info["tagging"]["tags"] for s in tags for t in s)
    (tmp_path / "in.txt").write_text("mr Bala said\n")
    assert nnrecipe.predict(loaded, str(tmp_path / "in.txt")).splitlines()[1].startswith("mr Bala said,")


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_errors_are_one_line(tagging_run, tmp_path, capsys):
    bad = write_csv(tmp_path / "bad.csv", ["tokens", "tags"], [["a b", "O O"], ["a b c", "O O"]])
    assert main(["fit", "--data", str(bad), "--out", str(tmp_path / "r1")]) == 2
    assert "data row 2 has 3 tokens but 2 tags" in _error(capsys) and not (tmp_path / "r1").exists()
    assert main(["fit", "--data", "seq:tagging", "--model", "cnn", "--out", str(tmp_path / "r2")]) == 2
    assert "does not tag" in _error(capsys) and not (tmp_path / "r2").exists()
    assert main(["fit", "--data", "seq:tagging", "--model", "gan", "--out", str(tmp_path / "r3")]) == 2
    assert "does not tag" in _error(capsys)
    unknown = write_csv(tmp_path / "unknown.csv", ["tokens", "tags"], [["mr Bala", "O B-DATE"]])
    assert main(["evaluate", str(tagging_run), "--data", str(unknown)]) == 2
    assert "B-DATE" in _error(capsys)
    assert main(["compress", str(tagging_run)]) == 2
    assert "sequence tagger" in _error(capsys)


def test_a_bidirectional_tagger_sees_the_trigger_after_the_span(tagging_run, tmp_path):
    """seq:tagging gives half the entity types only after the span: a left-to-right LSTM must guess them."""
    both = json.loads((tagging_run / "metrics.json").read_text())["test"]["entity_f1"]
    left = nnrecipe.fit("seq:tagging", overrides=[*TINY, "model.bidirectional=false"], out=tmp_path / "uni")
    assert both > left.metrics["test"]["entity_f1"] + 0.15
