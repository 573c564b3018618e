"""`nnrecipe embed RUN` and `nnrecipe.embed(...)`: the measures checked against scikit-learn on
features taken independently of the hook, the projector files parsed back (TensorBoard's own
protobuf for the pbtxt), each family that answers, and the refusals (exit 2, one line, nothing written)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from google.protobuf import text_format
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
from testutil import TINY_SEQ, fit_tiny_memory_lstm, set_args, write_csv

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.errors import UserError
from nnrecipe.generative import load_images
from nnrecipe.tasks import task_for_info
from nnrecipe.word_vectors import load_vectors

FILES = {"embedding.json", "embedding.csv", "tensors.tsv", "metadata.tsv", "projector_config.pbtxt", "tsne.png",
         "pca.png"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return nnrecipe.fit("digits", overrides=["model.hidden=[32, 16]", "optimizer.lr=0.01"], epochs=3,
                        out=tmp_path_factory.mktemp("embed") / "run")


def _clean_error(code, capsys, *needles):
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err


def _metadata(path):
    with path.open(newline="") as fh:
        return list(csv.reader(fh, delimiter="\t"))


def test_cli_measures_equal_sklearn_on_the_penultimate_features(run, capsys):
    assert main(["embed", str(run.dir)]) == 0
    out = run.dir / "embedding"
    assert FILES <= {p.name for p in out.iterdir()}
    r = json.loads((out / "embedding.json").read_text())
    X, y = task_for_info(run.info).rebuild_splits(run, None)["test"]
    with torch.no_grad():  # the head's input, computed without the hook: the MLP's body in eval mode
        F = run.model.eval().body(X).numpy()
    labels = np.asarray(run.class_names)[y.numpy()]
    assert r["rows"] == len(y) and r["dim"] == 16 and r["source"] == "test split" and "'head'" in r["features"]
    assert r["explained_variance"] == pytest.approx(PCA(10, svd_solver="full").fit(F).explained_variance_ratio_,
                                                    rel=1e-4, abs=1e-7)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    assert r["knn_accuracy"] == pytest.approx(cross_val_score(KNeighborsClassifier(5), F, labels, cv=cv).mean())
    with (out / "embedding.csv").open(newline="") as fh:
        table = list(csv.DictReader(fh))
    found = np.array([int(row["cluster"]) for row in table])
    assert [row["label"] for row in table] == labels.tolist() and len(np.unique(found)) == r["k"]
    assert 2 <= r["k"] <= 10 and r["silhouette"] == max(r["silhouettes"].values())
    assert r["silhouette"] == pytest.approx(silhouette_score(F, found), rel=1e-4)
    assert r["ari"] == pytest.approx(adjusted_rand_score(labels, found))
    text = capsys.readouterr().out
    assert f"k = {r['k']}" in text and f"{r['knn_accuracy']:.4f}" in text
    report = (run.dir / "report.html").read_text()
    assert 'id="embedding"' in report and "t-SNE of the features" in report


def test_projector_files_parse_back_to_the_features_and_labels(run):
    out = run.dir / "projector"
    r = nnrecipe.embed(run, out=out, samples=100, seed=1)
    assert r["rows"] == 100 and "100 of 360 rows (seed 1)" in r["source"]
    config = text_format.Parse((out / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (info,) = config.embeddings
    assert (info.tensor_path, info.metadata_path, list(info.tensor_shape)) == ("tensors.tsv", "metadata.tsv", [100, 16])
    tensors = np.loadtxt(out / "tensors.tsv", delimiter="\t")
    X, y = task_for_info(run.info).rebuild_splits(run, None)["test"]
    idx = np.sort(np.random.default_rng(1).choice(len(y), 100, replace=False))
    with torch.no_grad():
        F = run.model.eval().body(X[idx]).numpy()
    np.testing.assert_allclose(tensors, F, rtol=1e-6, atol=1e-6)
    meta = _metadata(out / "metadata.tsv")
    assert meta[0] == ["name", "label", "cluster"] and len(meta) == 101
    assert [m[0] for m in meta[1:]] == [str(i) for i in idx]  # the row numbers within the test split
    assert [m[1] for m in meta[1:]] == np.asarray(run.class_names)[y.numpy()[idx]].tolist()


def test_a_named_layer_gives_its_output(run, tmp_path):
    r = nnrecipe.embed(run.dir, layer="body.1", out=tmp_path / "e", samples=60)
    X, _ = task_for_info(run.info).rebuild_splits(run, None)["test"]
    idx = np.sort(np.random.default_rng(0).choice(len(X), 60, replace=False))
    with torch.no_grad():
        F = torch.relu(run.model.body[0](X[idx])).numpy()
    assert r["dim"] == 32 and r["features"] == "output of 'body.1'"
    np.testing.assert_allclose(np.loadtxt(tmp_path / "e" / "tensors.tsv", delimiter="\t"), F, rtol=1e-6, atol=1e-6)


def test_bad_input_exits_2_with_one_line_and_writes_nothing(run, tmp_path, capsys):
    out = tmp_path / "nothing"
    _clean_error(main(["embed", str(run.dir), "--layer", "body.9", "--out", str(out)]), capsys,
                 "no module named 'body.9'", "body.0", "head")
    _clean_error(main(["embed", str(tmp_path / "missing")]), capsys, "run directory not found")
    bad = write_csv(tmp_path / "bad.csv", ["a", "b"], [[1, 2], [3, 4]])
    _clean_error(main(["embed", str(run.dir), "--data", str(bad), "--out", str(out)]), capsys, "columns missing")
    _clean_error(main(["embed", str(run.dir), "--samples", "1", "--out", str(out)]), capsys, "samples must be")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".nothing")]


@pytest.mark.parametrize("info, holds", [({"task": "generative", "architecture": {"name": "gan"}}, "generative model"),
                                         ({"task": "tagging"}, "sequence tagger"),
                                         ({"task": "captioning"}, "image captioner")])
def test_tasks_without_features_are_refused_by_the_registry(tmp_path, capsys, info, holds):
    (tmp_path / "model.json").write_text(json.dumps(info))
    _clean_error(main(["embed", str(tmp_path)]), capsys, holds, "`nnrecipe embed` does not apply")
    assert not (tmp_path / "embedding").exists()


def test_given_rows_are_standardized_and_labelled(blobs_csv, tmp_path):
    run = nnrecipe.fit(str(blobs_csv), overrides=["model.hidden=[8]"], epochs=3, out=tmp_path / "blobs")
    r = nnrecipe.embed(run.dir, str(blobs_csv), out=tmp_path / "e")
    assert r["rows"] == 120 and r["source"] == str(blobs_csv) and r["knn_accuracy"] is not None
    with open(blobs_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    X = np.array([[float(row[c]) for c in "abc"] for row in rows])
    with torch.no_grad():
        F = run.model.eval().body(torch.as_tensor(run.standardize(X), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(np.loadtxt(tmp_path / "e" / "tensors.tsv", delimiter="\t"), F, rtol=1e-5, atol=1e-6)
    assert [m[1] for m in _metadata(tmp_path / "e" / "metadata.tsv")[1:]] == [row["animal"] for row in rows]


def test_word2vec_vectors_with_the_words_as_metadata(tmp_path, capsys):
    out = tmp_path / "w2v"
    assert main(["fit", "--model", "word2vec", "--data", "w2v:synthetic", "--epochs", "1", "--quiet",
                 "--set", "word2vec.dim=8", "--out", str(out)]) == 0
    vectors = load_vectors(out)
    r = nnrecipe.embed(out, samples=50)
    assert r["rows"] == min(50, len(vectors.words)) and r["dim"] == 8 and not r["labels"]
    assert r["ari"] is None and r["knn_accuracy"] is None
    np.testing.assert_allclose(np.loadtxt(out / "embedding" / "tensors.tsv", delimiter="\t"),
                               vectors.vectors[:r["rows"]].numpy(), rtol=1e-6, atol=1e-7)
    assert [m[0] for m in _metadata(out / "embedding" / "metadata.tsv")[1:]] == vectors.words[:r["rows"]]
    with pytest.raises(UserError, match="--layer does not apply"):
        nnrecipe.embed(out, layer="target")


def test_autoencoder_latent_is_the_code(tmp_path):
    run = nnrecipe.fit("digits", model="vae", out=tmp_path / "vae",
                       overrides=["train.epochs=1", "train.batch_size=128", "generative.hidden=[32]",
                                  "generative.latent_dim=4", "generative.judge=none", "generative.grid=4",
                                  "generative.eval_samples=50"])
    r = nnrecipe.embed(run.dir, out=tmp_path / "e", samples=80)
    assert r["dim"] == 4 and "μ" in r["features"] and r["labels"] and r["ari"] is not None
    loaded = nnrecipe.load(run.dir)
    tensors = np.loadtxt(tmp_path / "e" / "tensors.tsv", delimiter="\t")
    assert tensors.shape == (80, 4)
    X = load_images(resolve_config(extra=loaded.config), torch.device("cpu")).X["test"]
    idx = np.sort(np.random.default_rng(0).choice(len(X), 80, replace=False))
    with torch.no_grad():
        np.testing.assert_allclose(tensors, loaded.model.encode(X[idx])[0].numpy(), rtol=1e-5, atol=1e-6)


def test_sequence_classifier_pooled_representation(tmp_path):
    out = fit_tiny_memory_lstm(tmp_path / "lstm")
    run = nnrecipe.load(out)
    r = nnrecipe.embed(run, out=tmp_path / "e", samples=60)
    assert r["dim"] == run.model.head.in_features and r["rows"] == 60 and r["knn_accuracy"] is not None


def test_a_language_model_is_refused_after_loading(tmp_path, capsys):
    out = tmp_path / "lm"
    assert main(["fit", "--data", "seq:charlm", "--model", "lstm", "--epochs", "1", "--quiet",
                 *set_args(TINY_SEQ), "--out", str(out)]) == 0
    _clean_error(main(["embed", str(out)]), capsys, "a language model has one vector per token")
    assert not (out / "embedding").exists()
