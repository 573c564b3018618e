"""ONNX export: parity with torch checked by onnxruntime in the test itself, dynamic batch, CLI, refusals."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.data.transform import InputTransform
from nnrecipe.models.rnn import RecurrentNet
from nnrecipe.onnx_export import InputTransformModule, LastStepRecurrent, export_onnx

ort = pytest.importorskip("onnxruntime")

FAST = ["train.epochs=1", "train.batch_size=64", "optimizer.lr=0.01"]
TOL = 1e-4


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    nnrecipe.fit("digits", overrides=FAST + ["model.hidden=[32]"], out=root / "mlp", progress=False)
    nnrecipe.fit("digits", model="cnn", overrides=FAST + ["model.channels=[8,16]", "model.convs_per_stage=1"],
                 out=root / "cnn", progress=False)
    return root


def _onnx_logits(path, name: str, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits", "probabilities"], {name: X.astype(np.float32)})


def test_mlp_export_matches_torch_on_raw_rows_at_any_batch_size(runs):
    report = export_onnx(runs / "mlp")
    path = runs / "mlp" / "model.onnx"
    assert path.is_file() and report["path"] == str(path)
    saved = json.loads((runs / "mlp" / "export.json").read_text())
    assert saved == report
    for key in ("format", "path", "max_abs_diff", "opset", "inputs", "outputs", "rows_checked"):
        assert key in saved
    assert saved["format"] == "onnx" and saved["max_abs_diff"] <= TOL and saved["rows_checked"] > 0
    assert [o["name"] for o in saved["outputs"]] == ["logits", "probabilities"]
    run = nnrecipe.load(runs / "mlp")
    X = load_digits().data  # raw 0..16 pixels, as `nnrecipe predict` gets them: the transform is in the graph
    for n in (1, 37):
        logits, probs = _onnx_logits(path, "features", X[:n])
        assert logits.shape == (n, 10)
        np.testing.assert_allclose(logits, run.logits(X[:n]).numpy(), rtol=0, atol=TOL)
        np.testing.assert_allclose(probs, run.predict_proba(X[:n]), rtol=0, atol=1e-5)  # softmax(z/T) inside
    z = torch.as_tensor(run.standardize(X[:37]), dtype=torch.float32)
    with torch.no_grad():  # the graph must differ from the bare model fed raw pixels (transform really folded in)
        assert np.abs(run.model(torch.as_tensor(X[:37], dtype=torch.float32)).numpy() - logits).max() > 1e-2
        np.testing.assert_allclose(run.model(z).numpy(), logits, rtol=0, atol=TOL)


def test_cnn_export_via_cli_prints_the_difference_and_takes_images(runs, tmp_path, capsys):
    out = tmp_path / "digits_cnn.onnx"
    assert main(["export", str(runs / "cnn"), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max abs difference" in printed and str(out) in printed
    report = json.loads((tmp_path / "export.json").read_text())
    assert report["inputs"][0]["shape"] == ["batch", 1, 8, 8] and report["max_abs_diff"] <= TOL
    assert f"{report['max_abs_diff']:.3g}" in printed
    run = nnrecipe.load(runs / "cnn")
    images = load_digits().images[:, None]  # [N, 1, 8, 8]
    for n in (1, 37):
        logits, _ = _onnx_logits(out, "images", images[:n])
        np.testing.assert_allclose(logits, run.logits(images[:n].reshape(n, -1)).numpy(), rtol=0, atol=TOL)
        assert (logits.argmax(1) == run.predict_proba(images[:n].reshape(n, -1)).argmax(1)).all()


def test_ensemble_run_is_refused_with_one_error_line(runs, tmp_path, capsys):
    ens = tmp_path / "ens"  # an ensemble run's layout: model.json lists member run directories
    shutil.copytree(runs / "mlp", ens / "members" / "0")
    (ens / "model.json").write_text(json.dumps({"format": 1, "task": "classification",
                                                "ensemble": ["members/0"]}))
    assert main(["export", str(ens)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: an ensemble")
    assert not (ens / "model.onnx").exists()


def test_missing_onnxruntime_says_how_to_install(runs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    assert main(["export", str(runs / "mlp"), "--out", str(runs / "never.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "nnrecipe[export]"' in err[0]
    assert not (runs / "never.onnx").exists()


@pytest.mark.parametrize("whiten,image_shape", [("zca", None), ("pca", None), ("zca", (2, 5, 5)),
                                                ("patch_zca", (2, 5, 5))])
def test_transform_module_equals_input_transform(whiten, image_shape):
    g = np.random.default_rng(0)
    d = 30 if image_shape is None else int(np.prod(image_shape))
    X = g.normal(3.0, 2.0, size=(200, d))
    X[:, 0] = 5.0  # a constant column/pixel: σ = 0 is only centred
    t = InputTransform.fit(X, image_shape=image_shape, whiten=whiten)
    raw = X[:17] if image_shape is None else X[:17].reshape(17, *image_shape)
    got = InputTransformModule(t)(torch.as_tensor(raw, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, t.apply(X[:17]), rtol=0, atol=1e-4)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_last_step_recurrent_equals_the_packed_network(cell):
    torch.manual_seed(0)
    net = RecurrentNet(cell=cell, out_features=4, vocab_size=11, embed_dim=6, hidden=8, num_layers=2).eval()
    lengths = torch.tensor([9, 1, 4, 9, 6])
    x = torch.randint(1, 11, (5, 9))
    x[torch.arange(9)[None, :] >= lengths[:, None]] = 0  # right padding, as pad_batch writes it
    with torch.no_grad():
        torch.testing.assert_close(LastStepRecurrent(net)(x), net(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(LastStepRecurrent(net)(x[:, :9]), net(x, lengths), rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gru", "transformer"])
def test_sequence_classifier_export_takes_token_ids_of_any_length(model, tmp_path):
    small = ["train.epochs=1", "model.rnn_hidden=16", "model.embed_dim=8", "model.dim=16", "model.depth=1",
             "model.heads=2", "train.batch_size=32", "text.task_size=100"]
    run = nnrecipe.fit("seq:memory", model=model, overrides=small, out=tmp_path / "run", progress=False)
    report = export_onnx(tmp_path / "run")
    assert report["inputs"][0]["name"] == "tokens" and report["max_abs_diff"] <= TOL
    session = ort.InferenceSession(str(tmp_path / "run" / "model.onnx"), providers=["CPUExecutionProvider"])
    g = np.random.default_rng(0)
    vocab = len(run.info["sequence"]["src_vocab"]["tokens"])
    for n, t in [(1, 7), (37, 70)]:
        ids = g.integers(1, vocab, size=(n, t))
        ids[np.arange(t)[None, :] >= g.integers(1, t + 1, size=(n, 1))] = 0  # right-padded, random lengths
        (logits,) = session.run(["logits"], {"tokens": ids})
        with torch.no_grad():
            want = run.model.eval()(torch.as_tensor(ids)).numpy()  # the packed/masked torch model
        np.testing.assert_allclose(logits, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_unpacked_bidirectional_recurrent_equals_the_packed_model(cell, layers):
    """The export's unpacked forward reads each sequence's backward direction within its length, so
    padded rows of different lengths give the packed model's logits."""
    torch.manual_seed(0)
    net = RecurrentNet(out_features=3, cell=cell, vocab_size=20, embed_dim=6, hidden=5, num_layers=layers,
                       bidirectional=True).eval()
    tokens = torch.randint(1, 20, (4, 9))
    for row, length in enumerate((9, 5, 1, 3)):
        tokens[row, length:] = 0
    assert torch.allclose(LastStepRecurrent(net)(tokens), net(tokens), atol=1e-6)
