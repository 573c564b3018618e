"""`nnrecipe doctor` end to end on digits: every step reported, files written, best.yaml trains."""

import json

import pytest
import yaml

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import build_config
from nnrecipe.doctor import LR_TEST_DECAY, _sharpness_note, lr_test_decay
from nnrecipe.recipe.diagnosis import diagnose_history


@pytest.mark.slow
def test_doctor_on_digits(tmp_path, capsys):
    out = tmp_path / "doc"
    assert main(["doctor", "--out", str(out), "--search-epochs", "2"]) == 0
    printed = capsys.readouterr().out
    for step in ("1 initial loss", "2 activations", "3 overfit", "4 LR range test", "5 coarse search",
                 "6 curve diagnosis", "7 sharpness at init", "nnrecipe fit --config"):
        assert step in printed
    report = json.loads((out / "doctor.json").read_text())
    assert report["initial_loss"]["ok"] and report["overfit_small"]["passed"]
    assert 1e-4 <= report["lr_find"]["suggested_lr"] <= 1e-1
    assert report["lr_find"]["weight_decay"] == 0.05 and "(with weight decay 0.05)" in printed  # AdamW's default
    assert len(report["search"]["trials"]) == 9 and report["search"]["epochs"] == 2  # the flag reaches the trials
    diagnosis = report["diagnosis"]  # read off the best trial's own two epochs
    assert [row["epoch"] for row in diagnosis["history"]] == [1, 2]
    assert {k: diagnosis[k] for k in ("verdict", "reasons", "advice")} == \
        diagnose_history(diagnosis["history"], task="classification")
    assert diagnosis["verdict"] != "insufficient history"
    curv = report["curvature"]
    assert curv["lambda_max"] > 0 and curv["lr"] == report["search"]["best"]["lr"] and curv["hvps"] == 30
    assert curv["lambda_max_times_lr"] == pytest.approx(curv["lambda_max"] * curv["lr"])
    assert curv["past_edge_of_stability"] == (curv["note"] is not None) == (curv["lambda_max_times_lr"] > 2)
    assert (out / "plots" / "lr_finder.png").is_file() and (out / "study.db").is_file()
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["optimizer"]["lr"] == report["search"]["best"]["lr"]
    run = nnrecipe.fit(config=out / "best.yaml", out=tmp_path / "best")
    default = nnrecipe.fit("digits", out=tmp_path / "default")
    assert run.metrics["test"]["accuracy"] >= default.metrics["test"]["accuracy"]


def test_doctor_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "doc"
    assert main(["doctor", "--data", "nope.csv", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_search_epochs_out_of_range_is_refused(tmp_path, capsys):
    with pytest.raises(nnrecipe.errors.UserError, match="search_epochs must be 1..5"):
        nnrecipe.doctor("digits", search_epochs=6, out=tmp_path / "api")
    assert main(["doctor", "--search-epochs", "0", "--out", str(tmp_path / "cli")]) == 2
    assert "--search-epochs" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_the_lr_range_test_keeps_a_weight_decay():
    assert lr_test_decay(build_config({"optimizer": {"weight_decay": 0.01}})) == 0.01
    assert lr_test_decay(build_config({"optimizer": {"weight_decay": 0.0}})) == LR_TEST_DECAY > 0


def test_the_sharpness_note_appears_past_two_over_eta():
    at_init = {"lambda_max": 40.0, "trace": 300.0, "hvps": 30}
    below, past = _sharpness_note(at_init, 0.01, rows=256), _sharpness_note(at_init, 0.1, rows=256)
    assert below["note"] is None and not below["past_edge_of_stability"]
    assert past["past_edge_of_stability"] and "λmax·η = 4 > 2" in past["note"] and "2/λmax = 0.05" in past["note"]
