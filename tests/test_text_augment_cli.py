"""EDA (`augment.text`) end to end: from the CLI with a synonyms file, through the API with a
word2vec run's neighbours, what it changes (training batches only) and the one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from nnrecipe import fit
from nnrecipe.cli import main
from nnrecipe.word_vectors import WordVectors
from testutil import history_rows, set_args, write_csv

TINY = ["text.level=word", "model.rnn_hidden=16", "model.embed_dim=8", "train.batch_size=16", "train.epochs=2"]
FILLERS = "today the people said it was a very long day in town".split()


def texts(rows: int, seed: int = 0) -> list[list[str]]:
    """Positive rows hold "happy", negative ones "sad", among fillers ("glad"/"gloomy" never occur)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(rows):
        label = ("pos", "neg")[i % 2]
        words = [*rng.choice(FILLERS, size=int(rng.integers(3, 8))), "happy" if label == "pos" else "sad"]
        rng.shuffle(words)
        out.append([" ".join(words), label])
    return out


@pytest.fixture
def mood(tmp_path):
    csv = write_csv(tmp_path / "mood.csv", ["text", "label"], texts(120))
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("happy glad joyful\nsad gloomy\n")
    return csv, synonyms


def eda(synonyms, *more) -> list[str]:
    return [f"augment.text.synonyms={synonyms}", "augment.text.alpha=0.2", *more]


def test_fit_with_a_synonyms_file_from_the_cli(mood, tmp_path, capsys):
    csv, synonyms = mood
    out = tmp_path / "run"
    assert main(["fit", "--data", str(csv), "--model", "lstm", "--out", str(out), "--quiet",
                 *set_args([*TINY, *eda(synonyms)])]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    summary = metrics["augment_text"]
    assert summary["rates"] == {"sr": 0.2, "ri": 0.2, "rs": 0.2, "rd": 0.2} and summary["prob"] == 0.9
    assert summary["words_with_synonyms"] == 2 and summary["added_to_vocab"] == 3
    tokens = json.loads((out / "model.json").read_text())["sequence"]["src_vocab"]["tokens"]
    assert tokens[-3:] == ["glad", "gloomy", "joyful"]  # words only augmented rows hold get their own ids
    assert yaml.safe_load((out / "config.yaml").read_text())["augment"]["text"]["synonyms"] == str(synonyms)
    unseen = write_csv(tmp_path / "unseen.csv", ["text", "label"], [["a glad day", "pos"], ["gloomy town", "neg"]])
    capsys.readouterr()
    assert main(["predict", str(out), "--data", str(unseen)]) == 0
    assert "<unk>" not in capsys.readouterr().out


def test_eda_changes_the_training_batches_only_and_augment_enabled_turns_it_off(mood, tmp_path):
    csv, synonyms = mood
    plain = fit(str(csv), model="lstm", overrides=TINY, out=tmp_path / "plain")
    swaps = ["augment.text.alpha_rs=0.3", "augment.text.p_rd=0.2"]  # no synonyms needed
    augmented = fit(str(csv), model="lstm", overrides=[*TINY, *swaps], out=tmp_path / "eda")
    off = fit(str(csv), model="lstm", overrides=[*TINY, *swaps, "augment.enabled=false"], out=tmp_path / "off")
    assert history_rows(off.dir) == history_rows(plain.dir)
    assert history_rows(augmented.dir)[0]["train_loss"] != history_rows(plain.dir)[0]["train_loss"]
    assert "augment_text" not in off.metrics and augmented.metrics["augment_text"]["synonyms"] is None
    # the vocabulary and the encoded splits are the same: only training batches are augmented
    assert augmented.info["sequence"] == plain.info["sequence"]


def test_neighbours_are_the_nearest_words_above_the_threshold():
    vectors = WordVectors(["a", "b", "c", "d"], torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]]))
    assert vectors.neighbours(["a", "c", "zz"], top=2, min_similarity=0.5) == {"a": ["b"]}
    assert vectors.neighbours(["a"], top=3, min_similarity=-1.0) == {"a": ["b", "c", "d"]}
    assert vectors.neighbours(["c"], top=1, min_similarity=0.1) == {"c": ["b"]}  # cos = 0.11


def test_synonyms_from_a_word2vec_run(mood, tmp_path):
    csv, _ = mood
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t.replace("happy", w) for t, _ in texts(400, seed=1) for w in ("happy", "glad")))
    w2v = fit(str(corpus), model="word2vec", overrides=["word2vec.dim=8", "word2vec.min_count=2", "train.epochs=1"],
              out=tmp_path / "w2v")
    run = fit(str(csv), model="lstm", out=tmp_path / "run",
              overrides=[*TINY, f"augment.text.synonyms_from={w2v.dir}", "augment.text.alpha=0.2",
                         "augment.text.min_similarity=-1", "augment.text.neighbours=2"])
    summary = run.metrics["augment_text"]
    assert summary["synonyms"] == str(w2v.dir)
    # every word the word2vec run knows gets its 2 neighbours; stopwords among them are never replaced
    assert summary["words_with_synonyms"] > 5 and summary["synonym_ids"] == 2 * summary["words_with_synonyms"]
    assert "glad" in run.info["sequence"]["src_vocab"]["tokens"]


def _clean_error(code: int, err: str, needle: str, out) -> None:
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and needle in err, err
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".run")]


def test_bad_synonyms_and_runs_that_eda_does_not_apply_to_are_one_line_errors(mood, tmp_path, capsys):
    csv, synonyms = mood
    malformed = tmp_path / "malformed.txt"
    malformed.write_text("happy glad\nsad\n")
    tabular = write_csv(tmp_path / "table.csv", ["a", "y"], [[float(i), i % 2] for i in range(40)])
    classifier = tmp_path / "classifier"  # what a classifier run's model.json says
    classifier.mkdir()
    (classifier / "model.json").write_text(json.dumps({"task": "classification"}))
    cases = [
        (str(csv), [*TINY, *eda(tmp_path / "missing.txt")], "synonyms file not found"),
        (str(csv), [*TINY, *eda(malformed)], "line 2"),
        (str(csv), [*TINY, f"augment.text.synonyms_from={tmp_path}", "augment.text.alpha=0.1"], "word2vec run"),
        (str(csv), [*TINY, f"augment.text.synonyms_from={classifier}", "augment.text.alpha=0.1"],
         "says task 'classification'"),
        (str(csv), [*TINY, "augment.text.alpha=0.1"], "need augment.text.synonyms"),
        (str(csv), [*TINY, *eda(synonyms, f"augment.text.synonyms_from={tmp_path}")], "not both"),
        (str(csv), [*TINY, f"augment.text.synonyms={synonyms}"], "no EDA operation is on"),
        (str(csv), [*TINY, "text.level=char", "augment.text.alpha_rs=0.1"], "character-level"),
        ("seq:reverse", ["text.task_size=20", "augment.text.alpha_rs=0.1"], "character-level"),
        (str(tabular), ["train.epochs=1", "augment.text.alpha_rs=0.1"], "tabular run"),
    ]
    for data, sets, needle in cases:
        out = tmp_path / "run"
        model = ["--model", "lstm"] if data != str(tabular) else []
        code = main(["fit", "--data", data, *model, "--out", str(out), "--quiet", *set_args(sets)])
        _clean_error(code, capsys.readouterr().err, needle, out)
