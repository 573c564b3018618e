"""`nnrecipe curvature RUN` and `nnrecipe.curvature(...)` end to end: a digits run through the task
registry, in-memory data, a bare module with its loss, and the refusals (exit 2, one line)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.errors import UserError
from nnrecipe.tasks import task_for_info
from nnrecipe.training.setup import loss_function

KEYS = {"eigenvalues", "lambda_min", "trace", "trace_stderr", "condition_number", "hvps", "seconds"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return nnrecipe.fit("digits", overrides=["model.hidden=[16]", "optimizer.lr=0.01"], epochs=2,
                        out=tmp_path_factory.mktemp("curv") / "run")


def test_cli_writes_the_spectrum_of_the_training_loss(run, tmp_path, capsys):
    out = tmp_path / "curvature.json"
    assert main(["curvature", str(run.dir), "--samples", "200", "--top-k", "2", "--probes", "10",
                 "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert KEYS <= set(r) and len(r["eigenvalues"]) == 2
    assert r["eigenvalues"][0] >= r["eigenvalues"][1] >= r["lambda_min"]
    assert r["samples"] == 200 and r["source"] == "training split" and r["parameters"] == 64 * 16 + 16 + 16 * 10 + 10
    assert r["hvps"] == 40 + 10 + 5 * 40 and r["trace_probes"] == 10
    assert "label smoothing 0.1" in r["loss"]
    text = capsys.readouterr().out
    assert "top-2 eigenvalues" in text and f"{r['hvps']} Hessian-vector products" in text


def test_api_on_a_run_matches_a_module_given_the_same_rows_and_loss(run):
    a = nnrecipe.curvature(run.dir, top_k=1, samples=150, seed=3, trace_probes=5, density_probes=1)
    X, y = task_for_info(run.info).rebuild_splits(run, None)["train"]
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(3))[:150]
    b = nnrecipe.curvature(run.model, (X[idx].numpy(), y[idx].numpy()), loss=loss_function("classification", 0.1),
                           top_k=1, seed=3, trace_probes=5, density_probes=1)
    assert a["eigenvalues"][0] == pytest.approx(b["eigenvalues"][0], rel=1e-5)
    assert a["trace"] == pytest.approx(b["trace"], rel=1e-5)


def test_raw_rows_in_memory_go_through_the_run_transform(run):
    X, y = load_digits(return_X_y=True)
    a = nnrecipe.curvature(run, (X[:100], y[:100]), top_k=1, trace_probes=4, density_probes=1)
    b = nnrecipe.curvature(run.model, (run.standardize(X[:100]), y[:100]), loss=nn.CrossEntropyLoss(label_smoothing=0.1),
                           top_k=1, trace_probes=4, density_probes=1)
    assert a["samples"] == 100 and a["eigenvalues"][0] == pytest.approx(b["eigenvalues"][0], rel=1e-5)


def test_a_linear_module_with_mse_has_the_least_squares_spectrum():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 5)) * np.array([2.0, 1.0, 0.5, 0.2, 0.1])
    y = rng.normal(size=128)
    r = nnrecipe.curvature(nn.Linear(5, 1, bias=False), (X.astype(np.float32), y.astype(np.float32)),
                           loss=lambda out, t: nn.functional.mse_loss(out.squeeze(-1), t), top_k=5)
    exact = np.linalg.eigvalsh(2 * X.T @ X / len(X))[::-1]
    assert r["eigenvalues"] == pytest.approx(exact.tolist(), rel=1e-4)
    assert r["condition_number"] == pytest.approx(exact[0] / exact[-1], rel=1e-3)


def test_bad_flags_and_runs_exit_2_with_one_line(run, tmp_path, capsys):
    for flags, message in ((["--top-k", "0"], "top_k must be an integer >= 1"),
                           (["--samples", "0"], "samples must be an integer >= 1"),
                           (["--probes", "1"], "trace_probes must be an integer >= 2"),
                           (["--steps", "0"], "steps must be an integer >= 1"),
                           (["--top-k", "5000"], "exceeds the")):
        assert main(["curvature", str(run.dir), *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert main(["curvature", str(tmp_path / "missing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    with pytest.raises(UserError, match="needs data"):
        nnrecipe.curvature(nn.Linear(2, 1))


def test_a_run_whose_task_has_no_training_loss_is_refused(tmp_path, capsys):
    # the registry refuses on model.json alone, before any weights load: a word2vec run's description
    (tmp_path / "w2v").mkdir()
    (tmp_path / "w2v" / "model.json").write_text(json.dumps({"task": "embedding"}))
    assert main(["curvature", str(tmp_path / "w2v")]) == 2
    err = capsys.readouterr().err
    assert "`nnrecipe curvature` does not apply" in err and err.count("\n") == 1
