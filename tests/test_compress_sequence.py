"""`nnrecipe compress` on sequence classifiers: dynamic int8 LSTM, pruned recurrent weights (sparse
int8 cells), the compressed run loads and predicts."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import torch
from testutil import fit_tiny_memory_lstm

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.post.compressed_io import load_compressed_model, save_compressed
from nnrecipe.post.prune import global_magnitude_prune
from nnrecipe.post.quantize import quantize_dynamic_int8
from nnrecipe.post.quantized_rnn_io import unpack_cell
from nnrecipe.sequence_data import prepare_sequences
from nnrecipe.sequence_inference import predict_texts


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    return fit_tiny_memory_lstm(tmp_path_factory.mktemp("seqcompress") / "lstm")


@pytest.fixture(scope="module")
def compressed(lstm_run):
    out = lstm_run / "small"
    # any budget this large admits every variant, so the smallest file (int8) is chosen
    assert main(["compress", str(lstm_run), "--max-drop", "1", "--methods", "quantize", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def pruned_report(lstm_run, tmp_path_factory):
    """compression.json of both methods on a copy of the run (the fixture above owns the original's)."""
    run_dir = tmp_path_factory.mktemp("seqprune") / "lstm"
    shutil.copytree(lstm_run, run_dir, ignore=shutil.ignore_patterns("small", "compressed*", "compression.json"))
    # a budget of 1 admits s = 0.99 at the first bisection step: every variant is as sparse as allowed
    assert main(["compress", str(run_dir), "--max-drop", "1", "--structured", "--out", str(run_dir / "both")]) == 0
    return run_dir, json.loads((run_dir / "compression.json").read_text())


def _test_split(run_dir):
    run = nnrecipe.load(run_dir)
    return prepare_sequences(resolve_config(extra=run.config)).tensors["test"]


def test_compression_json_has_a_smaller_int8_lstm(lstm_run, compressed):
    report = json.loads((lstm_run / "compression.json").read_text())
    original, quantized = report["variants"]
    assert [original["name"], quantized["name"]] == ["original", "quantized"]
    assert quantized["quantized"] == "dynamic" and quantized["size_bytes"] < original["size_bytes"]
    assert original["size_bytes"] == (lstm_run / "model.safetensors").stat().st_size
    assert report["chosen"] == "quantized" and report["chosen_dir"] == str(compressed)
    assert quantized["drop"] == pytest.approx(original["val_metric"] - quantized["val_metric"], abs=1e-12)
    # the rebuilt token splits reproduce fit's own test accuracy
    recorded = json.loads((lstm_run / "metrics.json").read_text())["test"]["accuracy"]
    assert original["test_metric"] == recorded == report["original_test_metric_recorded"]
    assert report["skipped"] == []


def test_recurrent_weights_are_pruned_and_stored_sparse(lstm_run, pruned_report):
    run_dir, report = pruned_report
    variants = {v["name"]: v for v in report["variants"]}
    assert list(variants) == ["original", "quantized", "pruned", "pruned+quantized"]
    # rows of a recurrent matrix are gates, not channels: --structured has nothing to prune here
    assert [s["name"] for s in report["skipped"]] == ["channel, channel+quantized"]
    pruned, both, quantized = variants["pruned"], variants["pruned+quantized"], variants["quantized"]
    assert pruned["amount"] == both["amount"] == 0.99
    # the pool is W_ih and W_hh of the LSTM alone (the embedding and the head stay dense)
    lstm = nnrecipe.load(lstm_run).model.rnn
    pool = lstm.weight_ih_l0.numel() + lstm.weight_hh_l0.numel()
    assert pruned["sparsity"] == pytest.approx(0.99, abs=1 / pool) and both["sparsity"] == pruned["sparsity"]
    # ~1% of the int8 weights left: the bitmask file is smaller than the dense int8 one
    assert both["size_bytes"] < quantized["size_bytes"] < variants["original"]["size_bytes"]
    assert both["nonzero_params"] < quantized["nonzero_params"]
    chosen = min((v for v in report["variants"] if v["within_budget"]), key=lambda v: v["size_bytes"])
    assert report["chosen"] == chosen["name"] and nnrecipe.load(run_dir / "both").info["compression"]["sparsity"] > 0


def test_pruned_int8_lstm_keeps_its_zeros_and_reloads(lstm_run, tmp_path):
    run = nnrecipe.load(lstm_run)
    pruned = global_magnitude_prune(run.model, 0.9)
    q = quantize_dynamic_int8(pruned)
    cell = unpack_cell(q.rnn._all_weight_values[0].param)
    for w, qw in ((pruned.rnn.weight_ih_l0, cell.w_ih), (pruned.rnn.weight_hh_l0, cell.w_hh)):
        assert qw.q_zero_point() == 0 and torch.all(qw.int_repr()[w == 0] == 0)  # symmetric int8: 0 → 0
    dense = save_compressed(quantize_dynamic_int8(run.model), tmp_path / "q.safetensors")
    sparse = save_compressed(q, tmp_path / "pq.safetensors")
    assert sparse < dense
    (tmp_path / "pq.safetensors").rename(tmp_path / "model.safetensors")
    X, _ = _test_split(lstm_run)
    info = {"architecture": run.info["architecture"],
            "compression": {"quantized": "dynamic", "example_shape": [1, *X.shape[1:]]}}
    with torch.no_grad():
        assert torch.equal(load_compressed_model(tmp_path, info)(X), q(X))


def test_compressed_lstm_loads_with_the_in_memory_int8_logits(lstm_run, compressed):
    loaded = nnrecipe.load(compressed)
    assert loaded.info["compression"]["quantized"] == "dynamic" and "sequence" in loaded.info
    assert isinstance(loaded.model.rnn, torch.ao.nn.quantized.dynamic.LSTM)
    q = quantize_dynamic_int8(nnrecipe.load(lstm_run).model)
    X, y = _test_split(lstm_run)
    with torch.no_grad():
        logits = loaded.model(X)
        assert torch.equal(logits, q(X))
    accuracy = float((logits.argmax(1) == y).double().mean())
    chosen = json.loads((lstm_run / "compression.json").read_text())["variants"][1]
    assert chosen["name"] == "quantized"
    assert accuracy == pytest.approx(chosen["test_metric"], abs=1e-12) == loaded.metrics["test"]["accuracy"]


def test_cli_predict_on_the_compressed_run(lstm_run, compressed, tmp_path, capsys):
    texts = ["abcabc", "hhhh", "gfedcba"]
    path = tmp_path / "inputs.txt"
    path.write_text("\n".join(texts) + "\n")
    capsys.readouterr()
    assert main(["predict", str(compressed), "--data", str(path)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    loaded = nnrecipe.load(compressed)
    assert [r["input"] for r in rows] == texts
    assert all(r["prediction"] in loaded.class_names for r in rows)
    original = nnrecipe.load(lstm_run)
    original.model = quantize_dynamic_int8(original.model)  # the same int8 model, never written to disk
    preds, probs = predict_texts(original, texts)
    assert [r["prediction"] for r in rows] == preds
    assert [float(r[f"prob_{loaded.class_names[0]}"]) for r in rows] == pytest.approx(probs[:, 0], abs=1e-6)


@pytest.mark.parametrize("kind", ["lm", "seq2seq"])
def test_language_models_and_seq2seq_are_refused(lstm_run, tmp_path, capsys, kind):
    run_dir = tmp_path / kind  # the same weights, described as another kind of sequence run
    shutil.copytree(lstm_run, run_dir, ignore=shutil.ignore_patterns("small", "compressed*"))
    info = json.loads((run_dir / "model.json").read_text())
    info["sequence"]["kind"] = kind
    (run_dir / "model.json").write_text(json.dumps(info))
    assert main(["compress", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "seq2seq" in err
    assert not (run_dir / "compressed").exists()


def test_data_option_is_refused_for_sequence_runs(lstm_run, tmp_path, capsys):
    assert main(["compress", str(lstm_run), "--data", "digits", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--data" in err and not (tmp_path / "x").exists()


def test_transformer_classifier_compresses_and_reloads(tmp_path):
    run_dir = tmp_path / "tf"
    nnrecipe.fit("seq:memory", model="transformer", out=run_dir,
                 overrides=["train.epochs=1", "text.task_size=100", "model.dim=16", "model.depth=1"])
    r = nnrecipe.compress(run_dir, max_drop=1.0, methods="quantize")
    original, quantized = r["variants"]
    assert r["chosen"] == "quantized" and quantized["size_bytes"] < original["size_bytes"] and not r["skipped"]
    q = quantize_dynamic_int8(nnrecipe.load(run_dir).model)
    X, _ = _test_split(run_dir)
    with torch.no_grad():
        assert torch.equal(nnrecipe.load(r["chosen_dir"]).model(X), q(X))
