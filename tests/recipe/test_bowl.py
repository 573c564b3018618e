"""The optimizer bowl against theory: gradient descent's step count, the heavy ball's √κ, the
divergence past 2/λmax; `nnrecipe bowl` writes its figure and JSON, and refuses bad flags."""

from __future__ import annotations

import json
import math

import pytest
import torch

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.recipe.bowl import Bowl, best_run, bowl_experiment, run_optimizer, theory


def test_the_bowl_has_the_stated_spectrum_and_start():
    bowl = Bowl(25.0, 40.0)
    assert torch.linalg.eigvalsh(bowl.H).tolist() == pytest.approx([1 / 25, 1.0])
    assert float(bowl().detach()) == pytest.approx(1.0)  # both eigendirections hold half of f(θ₀)
    axis = bowl.U[:, 0]
    assert math.degrees(math.atan2(axis[1], axis[0])) == pytest.approx(40.0)


def test_gradient_descent_at_the_optimal_lr_takes_theory_s_steps():
    t = theory("sgd", 10.0, 1e-6)
    run = run_optimizer("sgd", kappa=10.0, angle=30.0, lr=t["lr"], tol=1e-6, max_steps=1000)
    # f_t = r^{2t} f₀ exactly on both directions: the count is theory's, rounded up
    assert run["steps_to_tol"] == math.ceil(t["steps"])
    best = best_run("sgd", kappa=10.0, angle=30.0, tol=1e-6, max_steps=1000)
    # theory's η is in the grid, and no fixed η contracts both directions faster
    assert 0.8 * best["theory_steps"] <= best["steps_to_tol"] <= best["theory_steps"]


def test_heavy_ball_needs_far_fewer_steps_than_gradient_descent_at_kappa_100():
    r = bowl_experiment(kappa=100.0, optimizers=["sgd", "momentum"], max_steps=3000)
    gd, hb = r["optimizers"]["sgd"], r["optimizers"]["momentum"]
    assert hb["steps_to_tol"] < gd["steps_to_tol"] / 4
    # √κ against κ: within a factor 2 of theory's count (the transient of the double root)
    assert hb["theory_steps"] <= hb["steps_to_tol"] <= 2 * hb["theory_steps"]
    assert hb["momentum"] == pytest.approx(((10 - 1) / (10 + 1)) ** 2)


def test_a_run_just_past_two_over_lambda_max_diverges_and_says_so():
    r = bowl_experiment(kappa=10.0, optimizers=["sgd"], max_steps=500)
    d = r["divergence"]
    assert d["lr"] > d["threshold_lr"] == 2.0 and d["diverged"] and d["final_loss"] > 1e8
    below = run_optimizer("sgd", kappa=10.0, angle=0.0, lr=0.99 * 2.0, tol=1e-6, max_steps=20000)
    assert not below["diverged"] and below["steps_to_tol"] is not None


def test_cli_writes_png_and_json(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["bowl", "--kappa", "10", "--optimizers", "sgd,momentum,adam", "--lr", "adam=0.1",
                 "--out", str(out)]) == 0
    r = json.loads((out / "bowl.json").read_text())
    assert r["kappa"] == 10.0 and set(r["optimizers"]) == {"sgd", "momentum", "adam"}
    for name, o in r["optimizers"].items():
        assert {"lr", "steps_to_tol", "theory_steps"} <= set(o)
    assert r["optimizers"]["adam"]["lr"] == 0.1 and r["optimizers"]["adam"]["theory_steps"] is None
    assert (out / "bowl.png").read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "theory" in text and "diverged after" in text


def test_api_without_out_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = nnrecipe.bowl(kappa=5.0, optimizers="sgd", out=None)
    assert "png" not in r and not list(tmp_path.iterdir())


@pytest.mark.parametrize("flags, message", [(["--kappa", "0.5"], "kappa must be >= 1"),
                                            (["--tol", "2"], "tol must be in (0, 1)"),
                                            (["--optimizers", "sgdd"], "unknown optimizer 'sgdd'"),
                                            (["--lr", "sgd=abc"], "bad --lr"),
                                            (["--lr", "adam=0.1", "--optimizers", "sgd"], "not a listed optimizer")])
def test_bad_flags_exit_2(flags, message, tmp_path, capsys):
    assert main(["bowl", *flags, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
