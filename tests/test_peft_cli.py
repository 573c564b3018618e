"""`nnrecipe fit --init-from BASE --peft lora|adapter|prompt` end to end on digits: what is trained,
what is saved (adapter tensors only, plus the base's path and SHA-256), and reloading."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.datasets import load_digits

import nnrecipe
from nnrecipe.cli import main

HIDDEN = 32


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("peft")
    base = root / "base"
    assert main(["fit", "--data", "digits", "--set", f"model.hidden=[{HIDDEN}]", "--epochs", "3",
                 "--out", str(base), "--quiet"]) == 0
    return root, base


@pytest.fixture(scope="module")
def lora(runs):
    root, base = runs
    out, printed = root / "lora", io.StringIO()
    with redirect_stdout(printed):
        code = main(["fit", "--config", str(base / "config.yaml"), "--init-from", str(base), "--peft", "lora",
                     "--peft-rank", "4", "--peft-alpha", "8", "--peft-targets", "body.*", "--epochs", "2",
                     "--out", str(out)])
    assert code == 0
    (out.parent / "lora.stdout").write_text(printed.getvalue())
    return out


def test_lora_run_reports_and_saves_only_the_adapters(runs, lora):
    _, base = runs
    metrics = json.loads((lora / "metrics.json").read_text())["peft"]
    base_total = 64 * HIDDEN + HIDDEN + HIDDEN * 10 + 10
    lora_params = 4 * (64 + HIDDEN)  # one wrapped Linear (body.0): r·(k + d)
    assert (metrics["trainable"], metrics["total"]) == (lora_params, base_total + lora_params)
    assert metrics["trainable_percent"] == pytest.approx(100 * lora_params / (base_total + lora_params))
    assert not (lora / "model.safetensors").exists()
    tensors = load_file(str(lora / "adapter.safetensors"))
    assert set(tensors) == {"body.0.lora_A", "body.0.lora_B"}
    assert (lora / "adapter.safetensors").stat().st_size < (base / "model.safetensors").stat().st_size / 3
    info = json.loads((lora / "model.json").read_text())["peft"]
    assert (info["method"], info["rank"], info["alpha"], info["modules"]) == ("lora", 4, 8.0, ["body.0"])
    assert info["base"] == str(base.resolve())
    assert info["base_sha256"] == hashlib.sha256((base / "model.safetensors").read_bytes()).hexdigest()
    assert torch.count_nonzero(tensors["body.0.lora_B"]) > 0  # B trained away from its zero init


def test_lora_fit_prints_the_trainable_share(lora):
    printed = (lora.parent / "lora.stdout").read_text()
    assert f"peft lora: trainable {4 * (64 + HIDDEN)} of" in printed and "1 layers wrapped" in printed


def test_lora_run_reloads_to_the_same_predictions_and_evaluates(lora, capsys):
    X, _ = load_digits(return_X_y=True)
    run = nnrecipe.load(lora)
    p = run.predict_proba(X[:100])
    assert np.array_equal(p, nnrecipe.load(lora).predict_proba(X[:100]))
    assert main(["evaluate", str(lora), "--data", "digits"]) == 0
    X, y = load_digits(return_X_y=True)
    expected = np.mean(run.predict(X) == y.astype(str))
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(expected)


def test_a_changed_base_is_refused(runs, lora, tmp_path, capsys):
    _, base = runs
    base2, run2 = tmp_path / "base2", tmp_path / "lora2"
    shutil.copytree(base, base2)
    shutil.copytree(lora, run2)
    info = json.loads((run2 / "model.json").read_text())
    info["peft"]["base"] = str(base2)
    (run2 / "model.json").write_text(json.dumps(info))
    nnrecipe.load(run2)  # an identical copy of the base is accepted
    state = load_file(str(base2 / "model.safetensors"))
    state["body.0.weight"] = state["body.0.weight"] + 0.01
    save_file(state, str(base2 / "model.safetensors"))
    assert main(["evaluate", str(run2), "--data", "digits"]) == 2
    assert "base model changed" in capsys.readouterr().err


def test_peft_errors_exit_2(runs, tmp_path, capsys):
    _, base = runs
    assert main(["fit", "--peft", "lora", "--epochs", "1", "--out", str(tmp_path / "a")]) == 2
    assert "--init-from" in capsys.readouterr().err
    # the default MLP (256, 128) is not the base's architecture (32)
    assert main(["fit", "--init-from", str(base), "--peft", "lora", "--epochs", "1", "--out", str(tmp_path / "b")]) == 2
    assert "base model differs" in capsys.readouterr().err
    assert main(["fit", "--config", str(base / "config.yaml"), "--init-from", str(base), "--peft", "lora",
                 "--peft-targets", "nothing", "--out", str(tmp_path / "c")]) == 2
    assert "no Linear/Conv2d layer matches 'nothing'" in capsys.readouterr().err


def test_adapters_with_a_new_head_save_the_head_and_reload(runs, tmp_path):
    _, base = runs
    X, y = load_digits(return_X_y=True)
    high = y >= 5  # classes 5–9: other classes than the base's 0–9, so the head is new
    np.savez(tmp_path / "high.npz", X=X[high][:400], y=y[high][:400])
    run = nnrecipe.fit(str(tmp_path / "high.npz"), config=base / "config.yaml", init_from=base, epochs=2,
                       overrides=["peft.method=adapter", "peft.adapter_hidden=4"], out=tmp_path / "ad")
    peft = run.metrics["peft"]
    assert peft["new_head"] and peft["modules"] == ["body.0"]
    adapters = HIDDEN * 4 + 4 + 4 * HIDDEN + HIDDEN
    assert peft["trainable"] == adapters + HIDDEN * 5 + 5  # adapter + the new 5-class head
    assert set(load_file(str(run.dir / "adapter.safetensors"))) == {
        "body.0.down.weight", "body.0.down.bias", "body.0.up.weight", "body.0.up.bias", "head.weight", "head.bias"}
    again = nnrecipe.load(run.dir)
    assert np.array_equal(again.predict_proba(X[high][400:450]), run.predict_proba(X[high][400:450]))
    assert list(again.predict(X[high][400:450])) == list(run.predict(X[high][400:450]))


@pytest.mark.slow
def test_prompt_tuning_a_vit(tmp_path, capsys):
    vit = ["--model", "vit", "--set", "model.dim=16", "--set", "model.depth=1", "--set", "model.heads=2",
           "--epochs", "1"]
    assert main(["fit", *vit, "--out", str(tmp_path / "vit"), "--quiet"]) == 0
    assert main(["fit", *vit, "--init-from", str(tmp_path / "vit"), "--peft", "prompt", "--set",
                 "peft.prompt_tokens=4", "--out", str(tmp_path / "prompt")]) == 0
    assert "peft prompt: trainable 64 of" in capsys.readouterr().out  # 4 prompt vectors of width 16
    assert set(load_file(str(tmp_path / "prompt" / "adapter.safetensors"))) == {"prompt"}
    X, _ = load_digits(return_X_y=True)
    run = nnrecipe.load(tmp_path / "prompt")
    assert run.predict_proba(X[:5]).shape == (5, 10)


@pytest.mark.parametrize("args", [["--data", "seq:memory", "--model", "lstm"], ["--model", "autoencoder"],
                                  ["--model", "gan"]])
def test_families_other_than_tabular_and_image_refuse_peft_in_one_place(tmp_path, capsys, args):
    out = tmp_path / "run"
    code = main(["fit", *args, "--set", "peft.method=lora", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: peft and adversarial training are for tabular and image models, not ")
    assert err.count("\n") == 1 and not out.exists()
