"""Word vectors end to end: similar/analogy on hand-made vectors, the word2vec text format, and
`nnrecipe fit --model word2vec` / `similar` / `analogy` / `evaluate --analogies` on the planted corpus."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.data.corpus import format_analogies, synthetic_corpus
from nnrecipe.errors import UserError
from nnrecipe.word_vectors import WordVectors, read_word2vec_text, score_analogies, write_word2vec_text

# unit vectors: x axis "male/capital", y axis "female/country", z an identity direction
WORDS = ["king", "queen", "man", "woman", "apple", "zero"]
VECTORS = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.2],
                        [0.0, 0.0, 0.0]])


def _cos(u, v) -> float:
    return float(u @ v / (u.norm() * v.norm()))


def test_similar_excludes_the_word_and_reports_cosines():
    wv = WordVectors(WORDS, VECTORS)
    result = wv.similar("King", top=3)
    assert "king" not in [w for w, _ in result]
    hand = sorted(((_cos(VECTORS[0], VECTORS[i]) if i < 5 else 0.0, w) for i, w in enumerate(WORDS) if i),
                  reverse=True)[:3]  # the zero vector scores 0
    assert [w for w, _ in result] == [w for _, w in hand]
    assert [c for _, c in result] == pytest.approx([c for c, _ in hand], rel=1e-5)
    assert len(wv.similar("king", top=50)) == len(WORDS) - 1


def test_analogy_is_3cosadd_and_excludes_the_query_words():
    wv = WordVectors(WORDS, VECTORS)
    unit = VECTORS[:5] / VECTORS[:5].norm(dim=1, keepdim=True)
    query = unit[0] - unit[2] + unit[3]  # king - man + woman
    result = wv.analogy("king", "man", "woman", top=10)
    assert [w for w, _ in result][0] == "queen"
    assert not {"king", "man", "woman"} & {w for w, _ in result}
    assert result[0][1] == pytest.approx(_cos(query, VECTORS[1]), rel=1e-5)


def test_unknown_word_and_bad_top_are_user_errors():
    wv = WordVectors(WORDS, VECTORS)
    with pytest.raises(UserError, match="'kng' is not in the vocabulary.*king"):
        wv.similar("kng")
    with pytest.raises(UserError, match="not in the vocabulary"):
        wv.analogy("king", "man", "alien")
    with pytest.raises(UserError, match="top"):
        wv.similar("king", top=0)


def test_score_analogies_counts_correct_and_skipped():
    wv = WordVectors(WORDS, VECTORS)
    sections = {"gender": [("man", "woman", "king", "queen"), ("man", "woman", "king", "apple")],
                "oov": [("man", "woman", "duke", "duchess")]}
    result = score_analogies(wv, sections)
    assert result["sections"]["gender"] == {"accuracy": 0.5, "correct": 1, "answered": 2, "skipped": 0}
    assert result["sections"]["oov"] == {"accuracy": None, "correct": 0, "answered": 0, "skipped": 1}
    assert result["overall"] == {"accuracy": 0.5, "correct": 1, "answered": 2, "skipped": 1}


def test_vectors_text_round_trip_and_errors(tmp_path):
    path = tmp_path / "v.txt"
    vectors = torch.randn(4, 7) * 3
    write_word2vec_text(path, ["a", "bb", "c1", "d"], vectors)
    lines = path.read_text().splitlines()
    assert lines[0] == "4 7" and lines[2].split(" ")[0] == "bb" and len(lines[2].split(" ")) == 8
    back = read_word2vec_text(path)
    assert back.words == ["a", "bb", "c1", "d"]
    assert torch.allclose(back.vectors, vectors, rtol=1e-6, atol=1e-7)
    path.write_text("2 3\na 1 2 3\n")
    with pytest.raises(UserError, match="word2vec text format"):
        read_word2vec_text(path)


@pytest.fixture(scope="module")
def sg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("w2v") / "sg"
    assert main(["fit", "--model", "word2vec", "--data", "w2v:synthetic", "--epochs", "3", "--quiet",
                 "--set", "word2vec.dim=50", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_fit_writes_the_run_contract_and_reaches_analogy_accuracy(sg_run):
    assert {"config.yaml", "history.csv", "metrics.json", "model.json", "model.safetensors", "vectors.txt",
            "plots"} <= {p.name for p in sg_run.iterdir()}
    metrics = json.loads((sg_run / "metrics.json").read_text())
    assert metrics["task"] == "embedding" and metrics["architecture"] == "skip-gram"
    assert metrics["words_per_second"] > 0 and metrics["epochs_run"] == 3
    # measured 0.957 (dim 50, 3 epochs); chance is about 1/480
    assert metrics["analogies"]["overall"]["accuracy"] >= 0.75
    assert len((sg_run / "history.csv").read_text().splitlines()) == 4
    parsed = read_word2vec_text(sg_run / "vectors.txt")
    weights = load_file(str(sg_run / "model.safetensors"))["target.weight"]
    assert parsed.words == json.loads((sg_run / "model.json").read_text())["vocab"]
    assert torch.allclose(parsed.vectors, weights, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_similar_and_analogy_commands(sg_run, capsys):
    capsys.readouterr()
    assert main(["analogy", str(sg_run), "king", "man", "woman", "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].split("\t")[0] == "queen"
    assert not {"king", "man", "woman"} & {line.split("\t")[0] for line in lines}
    assert main(["similar", str(sg_run), "paris", "--top", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and "paris" not in [line.split("\t")[0] for line in lines]
    assert all(-1 <= float(line.split("\t")[1]) <= 1 for line in lines)
    assert nnrecipe.analogy(sg_run, "paris", "france", "italy", top=1)[0][0] == "rome"
    assert main(["similar", str(sg_run), "atlantis"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_analogies_and_refusals_on_a_word2vec_run(sg_run, tmp_path, capsys):
    questions = tmp_path / "q.txt"
    questions.write_text(format_analogies({"gender": [("man", "woman", "king", "queen")],
                                           "oov": [("man", "woman", "duke", "duchess")]}))
    capsys.readouterr()
    assert main(["evaluate", str(sg_run), "--analogies", str(questions), "--out", str(tmp_path / "a.json")]) == 0
    assert "gender: accuracy 1.0000 (1/1 answered, 0 skipped)" in capsys.readouterr().out
    assert json.loads((tmp_path / "a.json").read_text())["overall"]["skipped"] == 1
    for argv in (["predict", str(sg_run), "--data", str(questions)], ["calibrate", str(sg_run)]):
        assert main(argv) == 2
        assert "word2vec run" in capsys.readouterr().err
    with pytest.raises(UserError, match="word2vec run"):
        nnrecipe.load(sg_run)


@pytest.mark.slow
def test_cbow_on_a_text_file_with_an_analogy_file(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in synthetic_corpus(1)) + "\n")
    questions = tmp_path / "q.txt"
    questions.write_text(format_analogies({"capital-country": [("paris", "france", "rome", "italy"),
                                                               ("berlin", "germany", "madrid", "spain"),
                                                               ("oslo", "norway", "lima", "peru"),
                                                               ("paris", "france", "gotham", "nowhere")]}))
    run = nnrecipe.fit(str(corpus), model="word2vec", epochs=5, out=tmp_path / "cbow",
                       overrides=["word2vec.sg=0", "word2vec.dim=50", f"word2vec.analogies={questions}"])
    a = run.metrics["analogies"]
    assert run.metrics["architecture"] == "cbow" and a["overall"]["skipped"] == 1
    assert a["overall"]["correct"] >= 2  # measured: 3 of 3
    full = nnrecipe.evaluate_analogies(run.dir, "w2v:synthetic")
    assert full["overall"]["accuracy"] >= 0.7  # measured 0.89 (seed-1 corpus, dim 50, 5 epochs)


def test_a_diverging_fit_keeps_the_last_finite_weights(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in synthetic_corpus(0, sentences_per_word=3)) + "\n")
    with pytest.raises(nnrecipe.TrainingDiverged) as info:
        nnrecipe.fit(str(corpus), model="word2vec", epochs=3, out=tmp_path / "r",
                     overrides=["word2vec.lr=1e30", "word2vec.dim=8", "word2vec.min_count=1"])
    metrics = json.loads((info.value.run_dir / "metrics.json").read_text())
    assert metrics["status"].startswith("diverged") and metrics["epochs_run"] == 1
    assert torch.isfinite(load_file(str(info.value.run_dir / "model.safetensors"))["target.weight"]).all()

