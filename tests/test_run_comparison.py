"""``nnrecipe runs compare`` / `nnrecipe.compare_runs`: only the config keys that differ, metrics
side by side from metrics.json with the best marked, and the HTML comparison with --out."""

from __future__ import annotations

import json

import pytest
import yaml

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.errors import UserError
from nnrecipe.report.runfiles import flatten
from nnrecipe.rundir import RunInProgress, plots_and_report

TINY = ["model.hidden=[16]", "train.epochs=2"]


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    with plots_and_report(False):
        nnrecipe.fit("digits", overrides=TINY, out=root / "a")
        nnrecipe.fit("digits", overrides=[*TINY, "optimizer.lr=0.01", "model.hidden=[32]"], out=root / "b")
        nnrecipe.fit("diabetes", overrides=TINY, out=root / "c")
    return root


def _flat(run_dir) -> dict:
    return flatten(yaml.safe_load((run_dir / "config.yaml").read_text()))


def test_only_the_keys_that_differ(three):
    result = nnrecipe.compare_runs([three / "a", three / "b", three / "c"])
    flats = [_flat(three / n) for n in "abc"]
    differing = {k for k in flats[0] if not (flats[0][k] == flats[1][k] == flats[2][k])}
    assert set(result["config"]) == differing and {"optimizer.lr", "model.hidden", "data.source"} <= differing
    for key, values in result["config"].items():
        assert values == [f[key] for f in flats]
    assert result["labels"] == ["A: a", "B: b", "C: c"]


def test_metrics_side_by_side_with_the_best(three):
    result = nnrecipe.compare_runs([three / "a", three / "b", three / "c"])
    tests = [json.loads((three / n / "metrics.json").read_text())["test"] for n in "abc"]
    acc = result["metrics"]["test.accuracy"]
    assert acc["values"] == [tests[0]["accuracy"], tests[1]["accuracy"], None]
    assert acc["best"] == (0 if tests[0]["accuracy"] > tests[1]["accuracy"] else 1)
    assert result["metrics"]["test.rmse"] == {"values": [None, None, tests[2]["rmse"]], "best": None}  # one value
    loss = result["metrics"]["test.loss"]
    assert loss["best"] == (0 if tests[0]["loss"] < tests[1]["loss"] else 1)  # lower is better


def test_identical_configs_and_names_under_dir(three, capsys):
    result = nnrecipe.compare_runs(["a", "a"], dir=three)
    assert result["config"] == {}
    assert main(["runs", "compare", "a", "b", "--dir", str(three)]) == 0
    out = capsys.readouterr().out
    assert "config: " in out and "optimizer.lr" in out and "test.accuracy" in out and "*" in out


def test_out_writes_the_html_comparison(three, tmp_path, capsys):
    out = tmp_path / "compare.html"
    assert main(["runs", "compare", str(three / "a"), str(three / "b"), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Configuration differences" in html and "Learning curves" in html and "data:image/png;base64" in html
    assert f"wrote {out}" in capsys.readouterr().out


def test_bad_input(three, tmp_path):
    with pytest.raises(UserError, match="at least two"):
        nnrecipe.compare_runs([three / "a"])
    with pytest.raises(UserError, match="not a run directory"):
        nnrecipe.compare_runs([three / "a", tmp_path])
    with pytest.raises(UserError, match="HTML"):
        nnrecipe.compare_runs([three / "a", three / "b"], out=tmp_path / "x.png")
    live = RunInProgress(tmp_path / "training", resolve_config(overrides=["data.source=digits"]))
    live.open()
    assert nnrecipe.compare_runs([three / "a", tmp_path / "training"])["runs"][1]["status"] == "INCOMPLETE"
    with pytest.raises(UserError, match="unfinished"):
        nnrecipe.compare_runs([three / "a", tmp_path / "training"], out=tmp_path / "c.html")
    live.close()
    assert not (tmp_path / "c.html").exists()
