"""`nnrecipe report`: a self-contained HTML page per run (real quick fits), the comparison page,
missing files, and the numbers shown checked against sklearn on the run's predictions.csv."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import mean_squared_error, precision_recall_fscore_support, roc_auc_score

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.errors import UserError
from nnrecipe.report.compare import config_differences
from nnrecipe.report.figures import threshold_curves
from nnrecipe.report.html import write_report
from testutil import FAST

CLASSIFICATION_SECTIONS = ["overview", "config", "data", "model", "learning-curves", "health", "test-metrics",
                           "confusion-matrix", "roc-pr", "calibration", "per-class", "compression"]
REGRESSION_SECTIONS = ["overview", "config", "data", "model", "learning-curves", "health", "test-metrics",
                       "residuals", "compression"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Section ids, the cells of each section's tables (with their class attribute), image sources."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._section = self._cell = None
        self._row_class = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "src" in a or "href" in a:
            self.links.append(a.get("src") or a.get("href"))
        if tag == "section":
            self._section = self.sections.setdefault(a["id"], {"rows": [], "text": "", "images": 0})
        elif tag == "img":
            self.images.append(a["src"])
            if self._section is not None:
                self._section["images"] += 1
        elif tag == "tr" and self._section is not None:
            self._section["rows"].append([])
            self._row_class = a.get("class") or ""
        elif tag in ("td", "th") and self._section is not None:  # a row's class is given to its cells
            self._cell = [f"{self._row_class} {a.get('class') or ''}".strip(), ""]
            self._section["rows"][-1].append(self._cell)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._section is not None:
            self._section["text"] += data


def _read(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    return text, _Page(text)


def _fmt(x: float) -> str:  # how the report prints a float (4 significant digits)
    return f"{x:.4g}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    nnrecipe.fit("digits", overrides=FAST + ["train.epochs=3"], out=root / "digits")
    nnrecipe.fit("diabetes", overrides=FAST, out=root / "diabetes")
    return root


@pytest.fixture(scope="module")
def digits_page(runs):
    before = torch.get_rng_state()
    path = write_report(runs / "digits")
    assert torch.equal(torch.get_rng_state(), before)  # fit calls it: it must not shift the training RNG
    assert path == runs / "digits" / "report.html"
    return _read(path)


def _predictions(run: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = list(csv.reader((run / "predictions.csv").open()))
    values = np.array(rows[1:], dtype=float)
    return values[:, 0], values[:, 1:]


def _table(section: dict) -> dict[str, list[str]]:
    """First column → the other cells' texts."""
    return {r[0][1].strip(): [c[1].strip() for c in r[1:]] for r in section["rows"] if r}


def test_single_report_is_self_contained_with_every_section(digits_page):
    text, page = digits_page
    assert list(page.sections) == CLASSIFICATION_SECTIONS
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links
    assert not re.search(r"""(?:src|href)\s*=\s*["']?https?:""", text)
    assert "<script" not in text.lower()
    assert len(page.images) == 5  # curves, health, confusion matrix, ROC/PR, reliability
    for src in page.images:
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(PNG_SIGNATURE)
        Image.open(io.BytesIO(png)).verify()
    for sid in ("learning-curves", "health", "confusion-matrix", "roc-pr", "calibration"):
        assert page.sections[sid]["images"] >= 1, sid
    assert "Not available: no compression.json" in page.sections["compression"]["text"]


def test_single_report_numbers_match_the_run_files(runs, digits_page):
    _, page = digits_page
    metrics = json.loads((runs / "digits" / "metrics.json").read_text())
    s = page.sections
    test, val = metrics["test"], metrics["val"]
    assert _table(s["test-metrics"])["accuracy"] == [_fmt(test["accuracy"]), _fmt(val["accuracy"])]
    assert metrics["diagnosis"]["verdict"] in s["learning-curves"]["text"]
    assert _fmt(metrics["calibration"]["temperature"]) in s["calibration"]["text"]
    assert "config.yaml" in s["config"]["text"] and "optimizer:" in s["config"]["text"]
    # parameters: the loaded model's own count
    n_params = sum(p.numel() for p in nnrecipe.load(runs / "digits").model.parameters())
    assert f"{n_params:,} parameters" in s["model"]["text"]
    # ROC AUC and per-class F1: sklearn on predictions.csv
    y, probs = _predictions(runs / "digits")
    auc = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert f"macro ROC AUC (one-vs-rest): {_fmt(auc)}" in s["roc-pr"]["text"]
    _, _, f1, support = precision_recall_fscore_support(y, probs.argmax(1), labels=range(10), zero_division=0)
    table = _table(s["per-class"])
    assert [table[str(c)][2] for c in range(10)] == [_fmt(v) for v in f1]
    assert [table[str(c)][3] for c in range(10)] == [str(n) for n in support]
    worst = [r[0][1] for r in s["per-class"]["rows"][1:] if r[0][0] == "chosen"]
    assert worst == [str(int(np.argmin(f1)))]
    assert _table(s["data"])["test rows"] == [f"{len(y):,}"]


def test_regression_report_has_residuals_and_metrics(runs):
    text, page = _read(write_report(runs / "diabetes"))
    assert list(page.sections) == REGRESSION_SECTIONS
    assert page.sections["residuals"]["images"] == 1
    y, pred = _predictions(runs / "diabetes")
    rmse = math.sqrt(mean_squared_error(y, pred[:, 0]))
    assert _table(page.sections["test-metrics"])["rmse"][0] == _fmt(rmse)
    assert _fmt(float((y - pred[:, 0]).mean())) in page.sections["residuals"]["text"]
    assert "accuracy" not in _table(page.sections["test-metrics"])


def test_missing_optional_files_say_not_available(runs, tmp_path):
    run = shutil.copytree(runs / "digits", tmp_path / "old")
    for name in ("predictions.csv", "health.csv", "config.yaml", "plots/learning_curves.png"):
        (run / name).unlink()
    _, page = _read(write_report(run))
    assert list(page.sections) == CLASSIFICATION_SECTIONS
    for sid, file in (("roc-pr", "predictions.csv"), ("health", "health.csv"), ("config", "config.yaml")):
        assert f"Not available: no {file}" in page.sections[sid]["text"], sid
    assert page.sections["learning-curves"]["images"] == 1  # redrawn from history.csv
    assert page.sections["confusion-matrix"]["images"] == 1


def test_missing_history_is_a_user_error_naming_the_file(runs, tmp_path, capsys):
    run = shutil.copytree(runs / "digits", tmp_path / "broken", ignore=shutil.ignore_patterns("report.html"))
    (run / "history.csv").unlink()
    with pytest.raises(UserError, match="history.csv"):
        nnrecipe.make_report(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no history.csv") and "report.html" not in err
    assert not (run / "report.html").exists()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "run directory not found" in capsys.readouterr().err


def test_history_without_epochs_and_compression_table(runs, tmp_path):
    run = shutil.copytree(runs / "digits", tmp_path / "diverged", ignore=shutil.ignore_patterns("report.html"))
    header = (run / "history.csv").read_text().splitlines()[0]
    (run / "history.csv").write_text(header + "\n")
    variants = [{"name": n, "val_metric": 0.9, "test_metric": 0.9 - d, "drop": d, "size_bytes": s,
                 "nonzero_params": p, "latency_ms": 0.1} for n, d, s, p in
                (("float32", 0.0, 4840, 1210), ("int8", 0.004, 1210, 1210), ("pruned50", 0.02, 2420, 605))]
    (run / "compression.json").write_text(json.dumps({"variants": variants, "chosen": "int8",
                                                      "chosen_dir": "compressed/int8"}))
    _, page = _read(write_report(run))
    assert "Not available: history.csv has no epochs" in page.sections["learning-curves"]["text"]
    rows = page.sections["compression"]["rows"]
    assert [r[0][1] for r in rows[1:]] == ["float32", "int8", "pruned50"]
    assert [r[0][0] for r in rows[1:]] == ["", "chosen", ""]
    assert "compressed/int8" in page.sections["compression"]["text"]


def test_comparison_highlights_exactly_the_differing_keys(runs, tmp_path, capsys):
    other = shutil.copytree(runs / "digits", tmp_path / "other")
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["optimizer"]["lr"] = 0.003
    cfg["model"]["hidden"] = [32, 16]
    del cfg["train"]["patience"]
    (other / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = tmp_path / "cmp.html"
    assert main(["report", str(runs / "digits"), str(other), str(runs / "diabetes"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    text, page = _read(out)
    assert list(page.sections) == ["runs", "config-diff", "learning-curves", "metrics"]
    assert all(link.startswith(("data:", "#")) for link in page.links)
    rows = page.sections["config-diff"]["rows"][1:]
    marked = {r[0][1] for r in rows if r[0][0] == "diff"}
    assert marked == {r[0][1] for r in rows} == {"optimizer.lr", "model.hidden", "train.patience", "data.source"}
    lr = next(r for r in rows if r[0][1] == "optimizer.lr")
    assert [c[0] for c in lr[1:]] == ["", "changed", ""]  # only B's value differs from A's
    metrics = _table(page.sections["metrics"])
    acc = json.loads((runs / "digits" / "metrics.json").read_text())["test"]["accuracy"]
    assert metrics["test accuracy"] == [_fmt(acc), _fmt(acc), "–"]
    assert metrics["test rmse"][:2] == ["–", "–"] and metrics["test rmse"][2] != "–"
    assert page.sections["learning-curves"]["images"] == 1


@pytest.mark.slow
def test_sequence_and_ensemble_runs_render(tmp_path):
    small = ["train.epochs=1", "model.rnn_hidden=32", "model.embed_dim=16", "train.batch_size=32"]
    seq = nnrecipe.fit("seq:reverse", overrides=small + ["text.task_size=100"], out=tmp_path / "seq")
    _, page = _read(write_report(seq.dir))
    assert list(page.sections) == ["overview", "config", "data", "model", "learning-curves", "health",
                                   "test-metrics", "sequence-examples", "compression"]
    test = seq.metrics["test"]
    assert _table(page.sections["test-metrics"])["bleu"][0] == _fmt(test["bleu"])
    assert test["examples"][0]["target"] in page.sections["sequence-examples"]["text"]
    assert page.sections["sequence-examples"]["images"] == 1  # the attention map
    n_params = sum(p.numel() for p in seq.model.parameters())
    assert f"{n_params:,} parameters" in page.sections["model"]["text"]

    ens = nnrecipe.fit("digits", overrides=FAST + ["train.epochs=1", "train.ensemble=2"], out=tmp_path / "ens")
    _, page = _read(write_report(ens.dir))
    assert list(page.sections) == ["overview", "config", "data", "model", "learning-curves", "test-metrics",
                                   "confusion-matrix", "roc-pr", "calibration", "per-class", "members",
                                   "compression"]
    members = _table(page.sections["members"])
    assert set(members) == {"member", "0", "1", "ensemble"}
    assert members["ensemble"][2] == _fmt(ens.metrics["test"]["accuracy"])
    assert "ensemble of 2" in page.sections["model"]["text"]
    assert page.sections["learning-curves"]["images"] == 1


def test_config_differences_unit():
    a = {"optimizer": {"lr": 0.1, "name": "adamw"}, "model": {"hidden": [16]}}
    b = {"optimizer": {"lr": 0.1, "name": "sgd"}, "model": {"hidden": [16], "dropout": None}}
    diff = config_differences([a, b])
    assert list(diff) == ["model.dropout", "optimizer.name"]
    assert diff["optimizer.name"] == ["adamw", "sgd"]


def test_threshold_curves_against_sklearn():
    g = np.random.default_rng(0)
    y = g.integers(0, 3, 200)
    probs = g.dirichlet(np.ones(3), 200) + np.eye(3)[y] * 0.3
    probs /= probs.sum(1, keepdims=True)
    s = threshold_curves(y, probs, ["a", "b", "c"])
    assert s["macro_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    binary = threshold_curves(y % 2, np.stack([1 - probs[:, 1], probs[:, 1]], 1), ["neg", "pos"])
    assert [c["name"] for c in binary["curves"]] == ["pos"]
    assert binary["macro_auc"] == pytest.approx(roc_auc_score(y % 2, probs[:, 1]))
    absent = threshold_curves(np.where(y == 2, 0, y), probs, ["a", "b", "c"])  # class c never occurs
    assert absent["skipped"] == ["c"] and len(absent["curves"]) == 2


def test_report_rejects_a_non_html_out(runs, tmp_path):
    with pytest.raises(UserError, match="--out"):
        nnrecipe.make_report([runs / "digits"], out=tmp_path / "r.pdf")
