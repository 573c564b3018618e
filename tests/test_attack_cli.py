"""`nnrecipe attack` and `nnrecipe fit --adversarial` end to end on digits."""

from __future__ import annotations

import json

import pytest

import nnrecipe
from nnrecipe.cli import main

SMALL = ["model.hidden=[32]", "optimizer.lr=0.01"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return nnrecipe.fit("digits", overrides=SMALL, epochs=4, out=tmp_path_factory.mktemp("atk") / "run")


def test_attack_cli_reports_clean_and_attacked_accuracy(run, capsys):
    assert main(["attack", str(run.dir), "--eps", "0.25,1", "--method", "fgsm"]) == 0
    out = capsys.readouterr().out
    report = json.loads((run.dir / "attack.json").read_text())
    # the rebuilt test split is the one fit scored
    assert report["clean_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    assert (report["method"], report["source"], report["rows"], report["range"]) == ("fgsm", "test split", 360,
                                                                                      [0.0, 16.0])
    accs = [r["accuracy"] for r in report["results"]]
    assert [r["eps"] for r in report["results"]] == [0.25, 1.0]
    assert accs[1] <= accs[0] < report["clean_accuracy"]
    assert f"clean accuracy {report['clean_accuracy']:.4f}" in out and "eps 1: accuracy" in out
    assert "wrote" in out and "attack.json" in out


def test_attack_api_with_pgd_on_other_data(run):
    fgsm = nnrecipe.attack(run.dir, eps=0.5, method="fgsm", data="digits", write=False)
    pgd = nnrecipe.attack(run.dir, eps=[0.5], method="pgd", steps=10, data="digits", write=False)
    assert fgsm["rows"] == pgd["rows"] == 1797 and fgsm["source"] == "digits"
    assert pgd["results"][0]["accuracy"] <= fgsm["results"][0]["accuracy"]
    wide = nnrecipe.attack(run.dir, eps=[0.5], method="pgd", raw_range=(-100.0, 100.0), write=False)
    assert wide["range"] == [-100.0, 100.0]


def test_attack_errors_exit_2(run, tmp_path, capsys):
    assert main(["attack", str(run.dir), "--eps", "one"]) == 2
    assert "bad --eps 'one'" in capsys.readouterr().err
    assert main(["attack", str(run.dir), "--eps", "-1"]) == 2
    assert "eps must be >= 0" in capsys.readouterr().err
    assert main(["attack", str(run.dir), "--eps", "1", "--range", "16,0"]) == 2
    assert "empty input range" in capsys.readouterr().err
    assert main(["attack", str(tmp_path / "missing"), "--eps", "1"]) == 2


@pytest.mark.slow
def test_adversarial_training_raises_robust_accuracy(tmp_path, capsys):
    # Measured (hidden [64], 20 epochs, eps 1 raw pixel unit, PGD-10 at test): plain training 0.02
    # robust accuracy, PGD-5 adversarial training 0.89 at 0.98 clean accuracy.
    common = ["--set", "model.hidden=[64]", "--set", "optimizer.lr=0.01", "--epochs", "20"]
    assert main(["fit", *common, "--out", str(tmp_path / "plain"), "--quiet"]) == 0
    assert main(["fit", *common, "--adversarial", "pgd", "--eps", "1", "--adv-steps", "5",
                 "--out", str(tmp_path / "adv")]) == 0
    assert "PGD accuracy" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "adv" / "metrics.json").read_text())["adversarial"]
    assert (metrics["method"], metrics["eps"], metrics["train_steps"]) == ("pgd", 1.0, 5)
    assert metrics["clean_accuracy"] > 0.9
    plain = nnrecipe.attack(tmp_path / "plain", eps=1.0, method="pgd", write=False)["results"][0]["accuracy"]
    robust = nnrecipe.attack(tmp_path / "adv", eps=1.0, method="pgd", write=False)["results"][0]["accuracy"]
    assert robust == pytest.approx(metrics["robust_accuracy"])  # fit's report = the attack command's
    assert robust >= plain + 0.4, (plain, robust)
