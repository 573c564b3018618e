"""Generative runs end to end through the CLI and the API: files, plots, judge scores, sampling,
and clean errors (predict/evaluate/calibrate on a generative run, bad architectures, vector data)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.generative import load_generative
from testutil import set_args

SMALL = ["train.epochs=2", "train.batch_size=128", "generative.hidden=[32]", "generative.channels=[8,16]",
         "generative.latent_dim=4", "generative.eval_samples=100", "generative.judge_epochs=2",
         "generative.grid=4", "generative.snapshots=2"]


def _columns(path):
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def _assert_clean_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "vae"
    assert main(["fit", "--model", "vae", "--out", str(out), "--quiet", *set_args(SMALL)]) == 0
    return out


@pytest.mark.slow
def test_vae_run_writes_metrics_plots_and_a_judge(vae_run):
    for name in ("config.yaml", "history.csv", "metrics.json", "model.json", "model.safetensors"):
        assert (vae_run / name).exists(), name
    for name in ("samples", "interpolation", "reconstructions", "latent", "learning_curves"):
        assert (vae_run / "plots" / f"{name}.png").stat().st_size > 1000, name
    assert (vae_run / "judge" / "model.safetensors").exists()
    assert json.loads((vae_run / "model.json").read_text())["task"] == "generative"
    assert {"train_loss", "val_loss", "val_reconstruction", "val_kl"} <= set(_columns(vae_run / "history.csv"))
    m = json.loads((vae_run / "metrics.json").read_text())
    test = m["test"]
    assert test["elbo"] == pytest.approx(-(test["reconstruction"] + test["kl"]), rel=1e-5)
    assert test["elbo"] > test["elbo_at_init"]
    scores = m["scores"]
    assert scores["judge"]["dir"] == "judge"
    for kind in ("generated", "real", "noise"):
        s = scores[kind]
        assert s["n"] == 100 and 1 <= s["inception_score"] <= 10 + 1e-9
        assert 0 <= s["class_entropy"] <= s["max_class_entropy"] + 1e-9
    assert scores["real"]["frechet_distance"] < scores["noise"]["frechet_distance"]


@pytest.mark.slow
def test_gan_reuses_a_judge_and_writes_its_own_history(vae_run, tmp_path, capsys):
    out = tmp_path / "gan"
    judge = vae_run / "judge"
    args = set_args(SMALL + ["generative.arch=conv", f"generative.judge={judge}"])
    assert main(["fit", "--model", "gan", "--out", str(out), *args]) == 0
    printed = capsys.readouterr().out
    assert "D(G(z))" in printed and "FD" in printed
    assert _columns(out / "history.csv") == ["epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "seconds"]
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {"samples.png", "gan_curves.png", "samples_epoch_1.png", "samples_epoch_2.png"} <= plots
    assert "learning_curves.png" not in plots  # no standard columns: skipped, not crashed
    m = json.loads((out / "metrics.json").read_text())
    assert m["scores"]["judge"]["dir"] == str(judge) and not (out / "judge").exists()
    assert 0 < m["final"]["d_fake"] < 1
    grid = tmp_path / "grid.png"
    assert main(["sample", str(out), "--out", str(grid), "--count", "9"]) == 0
    assert grid.stat().st_size > 500


def test_autoencoder_through_the_api(tmp_path):
    run = nnrecipe.fit("digits", model="autoencoder", out=tmp_path / "ae",
                       overrides=SMALL + ["generative.arch=conv", "train.epochs=1"])
    assert run.task == "generative"
    assert set(run.metrics["test"]) == {"reconstruction_bce", "reconstruction_mse", "n"}
    assert "scores" not in run.metrics  # nothing to sample from
    plots = {p.name for p in (tmp_path / "ae" / "plots").iterdir()}
    assert {"reconstructions.png", "interpolation.png", "latent.png"} <= plots and "samples.png" not in plots
    loaded = load_generative(tmp_path / "ae")
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.decode(loaded.model.encode(x)[0]),
                                   run.model.eval().decode(run.model.encode(x)[0]))


def test_vae_without_judge_is_quick_and_samples_reproducibly(tmp_path, capsys):
    out = tmp_path / "vae"
    assert main(["fit", "--model", "vae", "--epochs", "1", "--out", str(out),
                 *set_args(SMALL + ["generative.judge=none"])]) == 0
    assert "ELBO" in capsys.readouterr().out
    assert "scores" not in json.loads((out / "metrics.json").read_text())
    run = load_generative(out)
    a = run.model.sample(5, generator=torch.Generator().manual_seed(1))
    b = load_generative(out).model.sample(5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    for argv, needle in ((["predict", str(out), "--data", "digits"], "nnrecipe predict"),
                         (["evaluate", str(out), "--data", "digits"], "nnrecipe evaluate"),
                         (["calibrate", str(out)], "nnrecipe calibrate")):
        code = main(argv)
        _assert_clean_error(code, capsys.readouterr().err, "generative model", needle)


@pytest.mark.parametrize("argv, needles", [
    (["--model", "vae", "--set", "generative.arch=conv", "--set", "generative.channels=[8,8,8,8]"],
     ("divisible by 16", "generative.channels")),
    (["--model", "gan", "--data", "iris"], ("holds vectors",)),
    (["--model", "vae", "--set", "generative.latnt_dim=3"], ("generative.latnt_dim", "latent_dim")),
    (["--model", "vae", "--set", "generative.judge=/nonexistent"], ("judge run not found", "generative.judge")),
    (["--model", "gan", "--data", "seq:reverse"], ()),
])
def test_bad_input_is_one_clean_line_and_writes_nothing(tmp_path, capsys, argv, needles):
    out = tmp_path / "run"
    code = main(["fit", *argv, "--epochs", "1", "--out", str(out)])
    _assert_clean_error(code, capsys.readouterr().err, *needles)
    assert not out.exists()


def test_sampling_an_autoencoder_is_refused(tmp_path, capsys):
    out = tmp_path / "ae"
    nnrecipe.fit("digits", model="autoencoder", out=out, overrides=SMALL + ["train.epochs=1"])
    _assert_clean_error(main(["sample", str(out)]), capsys.readouterr().err, "no prior")
