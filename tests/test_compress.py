"""`nnrecipe compress` end to end: variants, the choice, compression.json, the compressed run."""

from __future__ import annotations

import importlib
import json
import math
import shutil

import pytest
import torch

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.compress import compress
from nnrecipe.config import resolve_config
from nnrecipe.post.prune import channel_prune, global_magnitude_prune
from nnrecipe.post.quantize import quantize_dynamic_int8
from nnrecipe.prepare import prepare_for

VARIANT_KEYS = {"name", "val_metric", "test_metric", "drop", "test_drop", "size_bytes", "nonzero_params",
                "latency_ms", "sparsity", "pruned", "quantized", "amount", "within_budget", "compression_ratio"}


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compress") / "mlp"
    nnrecipe.fit("digits", overrides=["train.epochs=5"], out=out)
    return out


@pytest.fixture(scope="module")
def report(mlp_run):
    return compress(mlp_run, max_drop=0.005)


def _test_split(run_dir):
    run = nnrecipe.load(run_dir)
    prepared = prepare_for(resolve_config(extra=run.config))
    return torch.as_tensor(prepared.X["test"], dtype=torch.float32), prepared.y["test"]


def test_compression_json_schema_and_choice(mlp_run, report):
    saved = json.loads((mlp_run / "compression.json").read_text())
    assert saved == json.loads(json.dumps(report))
    names = [v["name"] for v in saved["variants"]]
    assert names == ["original", "quantized", "pruned", "pruned+quantized"]
    original = saved["variants"][0]
    assert original["size_bytes"] == (mlp_run / "model.safetensors").stat().st_size
    for v in saved["variants"]:
        assert VARIANT_KEYS <= v.keys()
        assert v["drop"] == pytest.approx(original["val_metric"] - v["val_metric"], abs=1e-12)  # accuracy: a fall
        assert v["test_drop"] == pytest.approx(original["test_metric"] - v["test_metric"], abs=1e-12)
        assert v["within_budget"] == (v["drop"] <= 0.005 + 1e-12)
        assert v["compression_ratio"] == pytest.approx(original["size_bytes"] / v["size_bytes"])
        assert v["latency_ms"] > 0 and 0 < v["nonzero_params"] <= original["nonzero_params"]
    by_name = {v["name"]: v for v in saved["variants"]}
    assert by_name["quantized"]["quantized"] == "dynamic" and by_name["pruned"]["pruned"] == "global"
    assert by_name["pruned"]["nonzero_params"] < original["nonzero_params"]
    assert 4 * by_name["quantized"]["size_bytes"] < 1.2 * original["size_bytes"]  # int8: about a quarter
    eligible = [v for v in saved["variants"] if v["within_budget"]]
    assert saved["chosen"] == min(eligible, key=lambda v: v["size_bytes"])["name"]
    chosen = by_name[saved["chosen"]]
    assert saved["test_drop_exceeds_budget"] == (chosen["test_drop"] > 0.005)
    assert (mlp_run / "compressed" / "model.safetensors").exists()
    assert saved["chosen_dir"] == str(mlp_run / "compressed")


def test_recomputed_split_reproduces_the_runs_test_metric(mlp_run, report):
    recorded = json.loads((mlp_run / "metrics.json").read_text())["test"]["accuracy"]
    assert report["variants"][0]["test_metric"] == recorded == report["original_test_metric_recorded"]


def test_compressed_run_predicts_like_the_in_memory_model(mlp_run, report, capsys):
    chosen = next(v for v in report["variants"] if v["name"] == report["chosen"])
    original = nnrecipe.load(mlp_run)
    model = original.model
    if chosen["pruned"]:
        model = {"global": global_magnitude_prune, "channel": channel_prune}[chosen["pruned"]](model, chosen["amount"])
    if chosen["quantized"]:
        model = quantize_dynamic_int8(model)
    loaded = nnrecipe.load(report["chosen_dir"])
    assert loaded.info["compression"]["quantized"] == chosen["quantized"]
    X, y = _test_split(mlp_run)
    with torch.no_grad():
        assert torch.equal(loaded.logits_standardized(X.numpy()), model(X))
    accuracy = float((loaded.logits_standardized(X.numpy()).argmax(1).numpy() == y).mean())
    assert accuracy == pytest.approx(chosen["test_metric"], abs=1e-12) == loaded.metrics["test"]["accuracy"]
    assert main(["predict", report["chosen_dir"], "--data", "digits"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("prediction,prob_0") and len(lines) == 1797 + 1


def test_cli_prunes_structured_and_measures_on_given_data(mlp_run, tmp_path, capsys):
    out = tmp_path / "small"
    assert main(["compress", str(mlp_run), "--methods", "prune", "--structured", "--max-drop", "0.01",
                 "--data", "digits", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    header, *rows = text.splitlines()
    assert header.split()[:3] == ["variant", "sparsity", "val"]
    assert [r.split()[0] for r in rows[:3]] == ["original", "pruned", "channel"]
    assert f"-> {out}" in text.splitlines()[-1]
    saved = json.loads((mlp_run / "compression.json").read_text())
    assert saved["validation"] == "digits" and saved["chosen_dir"] == str(out)
    # the budget was measured on all 1797 digits rows: the original's "val" accuracy is evaluate()'s
    full = nnrecipe.evaluate(nnrecipe.load(mlp_run), "digits")["accuracy"]
    assert saved["variants"][0]["val_metric"] == pytest.approx(full, abs=1e-12)
    assert nnrecipe.load(out).info["compression"]["variant"] == saved["chosen"]


def test_cli_warns_when_the_test_drop_exceeds_the_budget(monkeypatch, capsys):
    variant = {"name": "pruned", "sparsity": 0.5, "val_metric": 0.95, "drop": 0.0, "test_metric": 0.9,
               "test_drop": 0.02, "size_bytes": 1024, "compression_ratio": 2.0, "nonzero_params": 10,
               "latency_ms": 1.0, "within_budget": True}
    canned = {"metric": "accuracy", "max_drop": 0.005, "validation": "validation split", "variants": [variant],
              "chosen": "pruned", "chosen_dir": "R/compressed", "test_drop_exceeds_budget": True, "skipped": []}
    # the module, not nnrecipe.compress (the package attribute is the function)
    monkeypatch.setattr(importlib.import_module("nnrecipe.compress"), "compress", lambda *a, **k: canned)
    assert main(["compress", "R"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: ") and "+0.0200" in captured.err
    assert "chosen: pruned" in captured.out


@pytest.mark.parametrize("args", [
    ["--max-drop", "-0.1"],
    ["--max-drop", "nan"],
    ["--methods", "quantize,distill"],
    ["--metric", "rmse"],
    ["--structured", "--methods", "quantize"],
], ids=["negative", "nan", "method", "metric", "structured"])
def test_bad_options_exit_2_with_one_error_line(mlp_run, tmp_path, capsys, args):
    assert main(["compress", str(mlp_run), "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_missing_run_and_used_out_exit_2(mlp_run, report, tmp_path, capsys):
    assert main(["compress", str(tmp_path / "nope")]) == 2
    assert main(["compress", str(mlp_run)]) == 2  # RUN/compressed already holds the first result
    errs = capsys.readouterr().err.splitlines()
    assert len(errs) == 2 and all(e.startswith("error: ") for e in errs)
    assert "not found" in errs[0] and "not empty" in errs[1]


def test_regression_drop_is_the_rmse_increase(tmp_path):
    run_dir = tmp_path / "reg"
    nnrecipe.fit("diabetes", overrides=["train.epochs=3"], out=run_dir)
    r = compress(run_dir, max_drop=1e9, methods="quantize")
    original, quantized = r["variants"]
    assert r["metric"] == "rmse" and not r["higher_is_better"]
    assert quantized["drop"] == pytest.approx(quantized["val_metric"] - original["val_metric"], abs=1e-12)
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]["rmse"]
    assert original["test_metric"] == pytest.approx(recorded, rel=1e-12)
    assert r["chosen"] == "quantized"  # any budget this large admits the smaller file
    lines = nnrecipe.predict(nnrecipe.load(r["chosen_dir"]), "diabetes").splitlines()
    assert lines[0] == "prediction" and len(lines) == 442 + 1 and all(math.isfinite(float(v)) for v in lines[1:])


def test_ensembles_are_refused(mlp_run, tmp_path, capsys):
    run_dir = tmp_path / "ens"  # an ensemble directory as `fit --ensemble` lays it out, with one member
    shutil.copytree(mlp_run, run_dir / "member0", ignore=shutil.ignore_patterns("compressed"))
    info = json.loads((mlp_run / "model.json").read_text())
    (run_dir / "model.json").write_text(json.dumps({"format": info["format"], "task": info["task"],
                                                    "ensemble": ["member0"]}))
    assert len(nnrecipe.load(run_dir).members) == 1
    assert main(["compress", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "ensemble" in err


@pytest.mark.slow
def test_static_quantization_of_a_conv_net(tmp_path):
    run_dir = tmp_path / "cnn"
    nnrecipe.fit("digits", overrides=["model.name=cnn", "model.channels=[8,16]", "train.epochs=2"], out=run_dir)
    r = compress(run_dir, max_drop=1.0, methods=("quantize",))
    original, quantized = r["variants"]
    assert quantized["quantized"] == "static" and r["chosen"] == "quantized"
    assert quantized["size_bytes"] < original["size_bytes"]
    loaded = nnrecipe.load(r["chosen_dir"])
    assert loaded.info["compression"]["quantized"] == "static"
    X, y = _test_split(run_dir)
    accuracy = float((loaded.logits_standardized(X.numpy()).argmax(1).numpy() == y).mean())
    assert accuracy == pytest.approx(quantized["test_metric"], abs=1e-12)


@pytest.mark.slow
def test_default_digits_mlp_compresses_four_times_within_half_a_percent(tmp_path):
    run_dir = tmp_path / "digits"
    nnrecipe.fit("digits", out=run_dir)
    r = compress(run_dir, max_drop=0.005)
    best = next(v for v in r["variants"] if v["name"] == "pruned+quantized")
    assert best["within_budget"] and best["drop"] <= 0.005
    assert best["size_bytes"] * 4 <= r["variants"][0]["size_bytes"]
    chosen = next(v for v in r["variants"] if v["name"] == r["chosen"])
    assert chosen["size_bytes"] <= best["size_bytes"]
