"""`fit` speed flags from the command line: --device, --precision, --accumulate, --compile."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from nnrecipe.cli import main
from testutil import FAST, set_args


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_clear_error(tmp_path, capsys):
    assert main(["fit", "--data", "iris", "--device", "cuda", "--quiet", "--out", str(tmp_path / "r")]
                + set_args(FAST)) == 2
    line = _one_line_error(capsys)
    assert "cuda" in line and "not available" in line and "--device" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_fp16_on_cpu_suggests_bf16(tmp_path, capsys):
    assert main(["fit", "--data", "iris", "--device", "cpu", "--precision", "fp16", "--quiet",
                 "--out", str(tmp_path / "r")] + set_args(FAST)) == 2
    assert "bf16" in _one_line_error(capsys)


def test_bf16_with_accumulation_end_to_end(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["fit", "--data", "iris", "--device", "cpu", "--precision", "bf16", "--accumulate", "2",
                 "--quiet", "--out", str(out)] + set_args(FAST)) == 0
    cfg = (out / "config.yaml").read_text()
    assert "precision: bf16" in cfg and "accumulate: 2" in cfg and "device: cpu" in cfg
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["compile"] == "off" and metrics["status"] == "ok"
    assert metrics["test"]["accuracy"] > 0.5  # iris: 3 balanced classes, chance is 1/3


@pytest.mark.slow
def test_compile_end_to_end_saves_plain_weights(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["fit", "--data", "iris", "--compile", "--device", "cpu", "--quiet", "--out", str(out)]
                + set_args(FAST)) == 0
    status = json.loads((out / "metrics.json").read_text())["compile"]
    assert status == "on" or status.startswith("fallback: ")
    assert not any(k.startswith("_orig_mod.") for k in load_file(out / "model.safetensors"))
