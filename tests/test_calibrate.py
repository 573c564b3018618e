"""Temperature scaling end to end: an overconfident model, the reliability plot, `nnrecipe calibrate`."""

from __future__ import annotations

import json

import pytest

import nnrecipe
from nnrecipe.cli import main

# A wide MLP trained long with nothing that tempers confidence: no label smoothing, no dropout, no
# weight decay, no early stopping. Its validation NLL rises while accuracy stays: overconfidence.
OVERCONFIDENT = ["model.hidden=[512,512]", "model.dropout=0", "regularization.label_smoothing=0",
                 "optimizer.weight_decay=0", "train.patience=0", "train.epochs=80", "data.val_fraction=0.3"]


@pytest.fixture(scope="module")
def overconfident_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "run"
    return nnrecipe.fit("digits", overrides=OVERCONFIDENT, out=out), out


def test_temperature_softens_an_overconfident_model(overconfident_run):
    run, out = overconfident_run
    cal = run.metrics["calibration"]
    assert cal["temperature"] > 1.0  # overconfident: logits must be softened
    assert cal["nll_after"] < cal["nll_before"]
    for key in ("reliability_before", "reliability_after"):
        bins = cal[key]
        assert sum(bins["count"]) == sum(cal["reliability_before"]["count"]) > 0
        assert len(bins["edges"]) == len(bins["count"]) + 1
    assert (out / "plots" / "reliability.png").stat().st_size > 0


def test_temperature_halves_ece_of_the_label_smoothed_default(tmp_path):
    # Label smoothing (0.1 by default) caps confidence: the default digits MLP is underconfident.
    run = nnrecipe.fit("digits", out=tmp_path / "run")
    cal = run.metrics["calibration"]
    assert cal["temperature"] < 1.0
    assert cal["ece_after"] <= 0.5 * cal["ece_before"]


def test_calibrate_cli_refits_on_given_data_and_predict_uses_it(overconfident_run, tmp_path, capsys):
    _, out = overconfident_run
    before = json.loads((out / "model.json").read_text())["temperature"]
    assert main(["calibrate", str(out)]) == 0  # the run's own validation split: same T again
    text = capsys.readouterr().out
    assert "ECE" in text and "validation split" in text
    again = json.loads((out / "model.json").read_text())["temperature"]
    assert again == pytest.approx(before, rel=1e-6)

    assert main(["calibrate", str(out), "--data", "digits"]) == 0  # all 1797 rows: a different T
    info = json.loads((out / "model.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["calibration"]["source"] == "digits"
    assert info["temperature"] == metrics["calibration"]["temperature"] != pytest.approx(before, rel=1e-3)
    assert nnrecipe.load(out).temperature == info["temperature"]


def test_calibrate_refuses_regression_runs(tmp_path, capsys):
    out = tmp_path / "reg"
    nnrecipe.fit("diabetes", overrides=["train.epochs=2"], out=out)
    assert main(["calibrate", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "classifier" in err
