"""``nnrecipe runs export --mlflow`` / `nnrecipe.export_runs_mlflow` against a real MLflow store (sqlite
under tmp_path), read back with `mlflow.MlflowClient`: params are the config, per-epoch metric
histories are history.csv, metrics.json's numbers are there, the files are artifacts, an
ensemble's members are nested runs; incomplete runs and runs exported before are skipped."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import mlflow
import pytest
import yaml

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.errors import UserError
from nnrecipe.report.runfiles import flatten
from nnrecipe.rundir import RunInProgress, plots_and_report

TINY = ["model.hidden=[16]", "train.epochs=3"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    with plots_and_report(False):
        nnrecipe.fit("digits", overrides=TINY, out=root / "digits")
        nnrecipe.fit("diabetes", overrides=TINY, out=root / "sweep" / "diabetes")
        nnrecipe.fit("digits", overrides=[*TINY, "train.ensemble=2"], out=root / "ensemble")
    return root


@pytest.fixture
def uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts a sqlite store's artifacts in ./mlruns
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _history(path) -> dict[str, list[tuple[int, float]]]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {col: [(int(r["epoch"]), float(r[col])) for r in rows if r[col] != ""]
            for col in rows[0] if col != "epoch"}


def _by_name(client, experiment_id):
    return {r.info.run_name: r for r in client.search_runs([experiment_id])}


def test_params_metric_histories_and_artifacts(root, uri):
    result = nnrecipe.export_runs_mlflow(root, tracking_uri=uri, experiment="team")
    assert sorted(e["name"] for e in result["exported"]) == ["digits", "ensemble", "sweep/diabetes"]
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = _by_name(client, result["experiment_id"])
    for name in ("digits", "sweep/diabetes"):
        run, d = runs[name], root / name
        config = flatten(yaml.safe_load((d / "config.yaml").read_text()))
        assert run.data.params == {k: str(v) for k, v in config.items()}
        history = _history(d / "history.csv")
        assert history and len(history["val_loss"]) == 3
        for column, points in history.items():
            got = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, column)]
            assert sorted(got) == points, column
        test = json.loads((d / "metrics.json").read_text())["test"]
        headline = "accuracy" if name == "digits" else "rmse"
        assert run.data.metrics[f"test.{headline}"] == pytest.approx(test[headline], rel=1e-12)
        assert run.data.metrics["final.lr"] == json.loads((d / "metrics.json").read_text())["lr"]  # lr: a history column
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "metrics.json", "model.json", "model.safetensors", "history.csv"} <= artifacts
        assert "checkpoints" not in artifacts
        assert run.data.tags["nnrecipe.path"] == str(d.resolve()) and run.info.status == "FINISHED"


def test_ensemble_members_are_nested_runs(root, uri):
    result = nnrecipe.export_runs_mlflow(root, tracking_uri=uri, filters=["model=mlp x2"])
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = _by_name(client, result["experiment_id"])
    parent = runs["ensemble"].info.run_id
    members = {n: r for n, r in runs.items() if r.data.tags.get("mlflow.parentRunId") == parent}
    assert sorted(members) == ["ensemble/members/0", "ensemble/members/1"]
    for name, run in members.items():
        history = _history(root / name / "history.csv")
        got = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert sorted(got) == history["train_loss"]


def test_exports_only_what_is_new_and_skips_incomplete_runs(root, uri, tmp_path):
    first = nnrecipe.export_runs_mlflow(root, tracking_uri=uri)
    again = nnrecipe.export_runs_mlflow(root, tracking_uri=uri)
    assert again["exported"] == [] and {s["reason"] for s in again["skipped"]} == {"already exported"}
    live = RunInProgress(root / "training", resolve_config(overrides=["data.source=digits"]))
    live.open()
    try:
        third = nnrecipe.export_runs_mlflow(root, tracking_uri=uri)
    finally:
        live.close()
        shutil.rmtree(root / "training")
    assert {"name": "training", "reason": "incomplete"} in third["skipped"]
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert len(client.search_runs([first["experiment_id"]])) == 5  # 3 runs + 2 members, once


def test_a_class_name_mlflow_refuses_is_renamed(root, uri, tmp_path):
    copy = tmp_path / "runs" / "digits"
    shutil.copytree(root / "digits", copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["test"]["per_class"] = {"c++ (rare)": {"f1": 0.25}}
    (copy / "metrics.json").write_text(json.dumps(metrics))
    result = nnrecipe.export_runs_mlflow(tmp_path / "runs", tracking_uri=uri)
    run = mlflow.MlflowClient(tracking_uri=uri).get_run(result["exported"][0]["run_id"])
    assert run.data.metrics["test.per_class.c__ _rare_.f1"] == 0.25


def test_cli(root, uri, capsys):
    assert main(["runs", "export", str(root), "--mlflow", "--tracking-uri", uri, "--filter", "data=diabetes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("exported 1 runs to MLflow experiment 'nnrecipe'") and "sweep/diabetes -> run " in out


def test_without_mlflow_a_one_line_error(root, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(UserError, match=r'pip install "nnrecipe\[mlflow\]"'):
        nnrecipe.export_runs_mlflow(root)
    assert main(["runs", "export", str(root), "--mlflow"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "nnrecipe[mlflow]"' in err
