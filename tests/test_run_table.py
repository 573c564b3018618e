"""The runs registry (`nnrecipe.runs`, ``nnrecipe runs``): one record per run directory, read from
the runs themselves, for every task of the registry; statuses; sorting and filtering; the index
cache (a cache only: deleting, damaging or outdating it changes nothing but speed)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

import nnrecipe
from nnrecipe import run_table
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.driver import fit
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.report.runfiles import flatten
from nnrecipe.rundir import RunInProgress, plots_and_report
from nnrecipe.tasks import TASKS
from test_resume_every_task import CASES

# run name: (data, settings, the headline metrics.json key expected, or None)
EXTRA = {
    "regression": ("diabetes", ["model.hidden=[16]", "train.epochs=2"]),
    "lm": ("seq:charlm", ["text.task_size=200", "model.rnn_hidden=16", "model.embed_dim=8", "train.batch_size=32",
                          "train.epochs=2"]),
    "ensemble": ("digits", ["model.hidden=[16]", "train.epochs=2", "train.ensemble=2"]),
}
HEADLINES = {"tabular": "test.accuracy", "custom": "test.accuracy", "sequence": "test.bleu", "tagging": "test.entity_f1",
             "autoencoder": "test.elbo", "gan": None, "captioning": "test.bleu_4",
             "word2vec": "analogies.overall.accuracy", "regression": "test.r2", "lm": "test.perplexity",
             "ensemble": "test.accuracy", "diverged": "test.accuracy"}
TASK_OF = {**{name: name for name in CASES}, "regression": "tabular", "lm": "sequence", "ensemble": "tabular",
           "diverged": "tabular"}


def _settings(sets: list[str]) -> list[str]:
    return [s for s in sets if not s.startswith(("train.checkpoint_every_steps", "train.keep_checkpoints"))]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """A run of every task (the resume cases' tiny settings), a regressor, a language model, an
    ensemble and a diverged fit, the last two in a nested folder."""
    root = tmp_path_factory.mktemp("runs")
    with plots_and_report(False):  # the registry reads no plots: seconds saved
        for name, (data, sets, _, _) in CASES.items():
            fit(data, overrides=_settings(sets), out=root / name)
        for name, (data, sets) in EXTRA.items():
            fit(data, overrides=sets, out=root / ("group/ensemble" if name == "ensemble" else name))
        with pytest.raises(TrainingDiverged):
            fit("digits", overrides=["model.hidden=[16]", "train.epochs=2", "optimizer.name=sgd", "optimizer.lr=1e8"],
                out=root / "group" / "diverged")
    return root


def _copy(root, tmp_path):
    dest = tmp_path / "runs"
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(run_table.INDEX_NAME))
    return dest


def _key(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def test_every_task_of_the_registry_has_a_headline():
    assert set(run_table.HEADLINE) == set(TASKS)


def test_a_record_per_run_read_from_its_files(runs_root):
    records = nnrecipe.runs(runs_root, use_index=False)
    assert [r["name"] for r in records] == sorted([*CASES, "regression", "lm", "group/ensemble", "group/diverged"])
    for r in records:
        d = runs_root / r["name"]
        metrics = json.loads((d / "metrics.json").read_text())
        config = yaml.safe_load((d / "config.yaml").read_text())
        name = _key(r["name"])
        assert r["task"] == TASK_OF[name], name
        assert r["status"] == ("diverged" if name == "diverged" else "complete"), name
        assert r["metric"] == HEADLINES[name], name
        if r["metric"] is not None:  # the value is the one metrics.json holds at that key
            node = metrics
            for part in r["metric"].split("."):
                node = node[part]
            assert r["value"] == node
        assert r["ece"] == (metrics.get("test") or {}).get("ece")
        assert r["wall_seconds"] == metrics["train_seconds"]
        assert r["best_epoch"] == metrics.get("best_epoch") and r["epochs_run"] == metrics.get("epochs_run")
        assert r["config"] == flatten(config)
        assert r["path"] == str(d.resolve())
    by = {_key(r["name"]): r for r in records}
    assert by["lm"]["model"] == "lstm"  # the model built: the config's model.name says mlp
    assert by["ensemble"]["model"] == "mlp x2"
    assert (by["regression"]["ece"], by["tabular"]["ece"] is not None) == (None, True)


def test_incomplete_and_damaged_runs_are_listed_not_fatal(runs_root, tmp_path):
    root = _copy(runs_root, tmp_path)
    cfg = resolve_config(overrides=["data.source=digits", "model.name=gru"])
    live = RunInProgress(root / "training", cfg)
    live.open()  # the real writer: config.yaml, checkpoints/, INCOMPLETE
    (root / "custom" / "metrics.json").write_text("{not json")
    by = {r["name"]: r for r in nnrecipe.runs(root)}
    live.close()
    assert by["training"]["status"] == "INCOMPLETE" and by["training"]["metric"] is None
    assert by["training"]["model"] == "gru" and by["training"]["task"] == "sequence"
    assert by["custom"]["status"] == "unreadable" and "JSONDecodeError" in by["custom"]["problem"]
    assert "members/0" not in " ".join(by)  # an ensemble's members are part of it, not runs


def _names(records) -> list[str]:
    return [_key(r["name"]) for r in records]


def test_sort_best_first_and_runs_without_the_key_last(runs_root):
    acc = nnrecipe.runs(runs_root, sort="test.accuracy")
    values = [r["metrics"].get("test.accuracy") for r in acc]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True) and len(present) == 4
    assert values[len(present):] == [None] * (len(values) - len(present))
    wall = [r["wall_seconds"] for r in nnrecipe.runs(runs_root, sort="wall_seconds")]
    assert wall == sorted(wall)  # lower is better
    assert [r["wall_seconds"] for r in nnrecipe.runs(runs_root, sort="wall_seconds", reverse=True)] == wall[::-1]
    dates = [r["date"] for r in nnrecipe.runs(runs_root, sort="date")]
    assert dates == sorted(dates, reverse=True)  # newest first
    for key in ("bogus", "value"):
        with pytest.raises(UserError, match="--sort"):
            nnrecipe.runs(runs_root, sort=key)


def test_filters_on_config_keys_and_fields(runs_root):
    assert set(_names(nnrecipe.runs(runs_root, filters=["model=lstm"]))) == {"lm", "tagging"}
    assert set(_names(nnrecipe.runs(runs_root, filters=["task=tabular", "status=complete"]))) == {
        "tabular", "regression", "ensemble"}
    assert _names(nnrecipe.runs(runs_root, filters=["model.name=vae"])) == ["autoencoder"]
    hidden = nnrecipe.runs(runs_root, filters=["model.hidden=[16]", "optimizer.lr=1e8"])
    assert _names(hidden) == ["diverged"]  # a list value and a float written as 1e8
    assert _names(nnrecipe.runs(runs_root, filters={"model.name": "gan"})) == ["gan"]
    for bad in (["model.name"], ["nosuch.key=1"]):
        with pytest.raises(UserError, match="filter"):
            nnrecipe.runs(runs_root, filters=bad)


def test_the_index_is_a_cache_only(runs_root, tmp_path, monkeypatch):
    root = _copy(runs_root, tmp_path)
    fresh = nnrecipe.runs(root, use_index=False)
    assert not (root / run_table.INDEX_NAME).exists()
    assert nnrecipe.runs(root) == fresh and (root / run_table.INDEX_NAME).exists()
    reads = []
    real = run_table.read_record
    monkeypatch.setattr(run_table, "read_record", lambda d, **kw: reads.append(d.name) or real(d, **kw))
    assert nnrecipe.runs(root) == fresh and reads == []  # every record from the index
    metrics = json.loads((root / "tabular" / "metrics.json").read_text())
    metrics["test"]["accuracy"] = 0.123456
    (root / "tabular" / "metrics.json").write_text(json.dumps(metrics))  # a stale entry is read again
    shutil.rmtree(root / "gan")  # a vanished run drops out
    listed = nnrecipe.runs(root)
    assert reads == ["tabular"]
    assert {r["name"]: r["value"] for r in listed}["tabular"] == 0.123456 and "gan" not in _names(listed)
    expected = nnrecipe.runs(root, use_index=False)
    assert listed == expected
    (root / run_table.INDEX_NAME).unlink()  # deleting it changes nothing but speed
    assert nnrecipe.runs(root) == expected
    (root / run_table.INDEX_NAME).write_text("{damaged")
    assert nnrecipe.runs(root) == expected


def test_an_outdated_index_format_is_ignored(runs_root, tmp_path):
    root = _copy(runs_root, tmp_path)
    expected = nnrecipe.runs(root)
    index = json.loads((root / run_table.INDEX_NAME).read_text())
    for entry in index["runs"].values():
        entry["record"]["task"] = "stale"
    index["format"] = run_table.INDEX_FORMAT - 1
    (root / run_table.INDEX_NAME).write_text(json.dumps(index))
    assert nnrecipe.runs(root) == expected


def test_cli_table_json_and_errors(runs_root, capsys):
    assert main(["runs", str(runs_root), "--sort", "test.accuracy", "--filter", "task=tabular"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["run", "data", "model", "task", "status"]
    assert [line.split()[0] for line in lines[2:6]] == [r["name"] for r in nnrecipe.runs(
        runs_root, sort="test.accuracy", filters=["task=tabular"])]
    assert "diverged" in lines[4] + lines[5] and lines[-1].startswith("4 runs under")
    assert main(["runs", "list", str(runs_root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == nnrecipe.runs(runs_root)
    for argv in (["runs", str(runs_root / "nope")], ["runs", str(runs_root), "--sort", "bogus"],
                 ["runs", str(runs_root), "--filter", "model.name"], ["runs", "compare", str(runs_root / "lm")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, argv


def test_cli_lists_runs_by_default_from_the_working_directory(runs_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.symlink(runs_root, tmp_path / "runs")
    assert main(["runs"]) == 0
    assert "regression" in capsys.readouterr().out
