"""The files of a finished run directory, read for the report (files only: no training code).

Required: the directory and, for a single model, ``history.csv`` (a folder without it is not a run;
a header with no rows is a run that diverged in its first epoch and just has no curves). An
ensemble keeps its histories in ``members/<i>/``. Every other file is optional: config.yaml,
metrics.json, model.json, health.csv, predictions.csv (test split: ``y_true,prob_<class>…`` or
``y_true,prediction``), compression.json, embedding/embedding.json. A missing one becomes None and its section says so.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from nnrecipe.errors import UserError
from nnrecipe.report.plots import read_history

_FIX = "re-run `nnrecipe fit` or delete the damaged file"


@dataclass
class RunFiles:
    dir: Path
    config_text: str | None  # config.yaml as written (shown verbatim)
    config: dict | None  # config.yaml parsed
    metrics: dict  # metrics.json ({} when absent)
    model: dict  # model.json ({} when absent)
    history: dict[str, np.ndarray] | None  # None: no epoch recorded (or an ensemble's top level)
    health: list[dict] | None  # health.csv rows; None when the file is absent
    predictions: dict | None  # {"y_true", "probs", "class_names"} or {"y_true", "prediction"}
    compression: dict | None
    members: list["RunFiles"] = field(default_factory=list)
    embedding: dict | None = None  # embedding/embedding.json, written by `nnrecipe embed`

    @property
    def task(self) -> str | None:
        return self.metrics.get("task") or self.model.get("task")

    @property
    def kind(self) -> str:
        """"seq2seq" / "lm" / "sequence" (token inputs), "ensemble", or the task name."""
        if self.metrics.get("kind"):
            return self.metrics["kind"]
        if "sequence" in self.model:
            return "sequence"
        if "ensemble" in self.model:
            return "ensemble"
        return self.task or "unknown"


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path.name} ({type(exc).__name__})", str(path), _FIX) from None
    return data if isinstance(data, dict) else None


def _read_config(path: Path) -> tuple[str | None, dict | None]:
    if not path.exists():
        return None, None
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"cannot parse {path.name} ({type(exc).__name__})", str(path), _FIX) from None
    return text, data if isinstance(data, dict) else None


def _read_history(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        raise UserError(f"no history.csv in {path.parent}", str(path),
                        "pass the directory of a finished run (written by `nnrecipe fit`)")
    with path.open(newline="") as fh:
        if sum(1 for _ in csv.DictReader(fh)) == 0:
            return None  # diverged in epoch 1: a run, but nothing to draw
    return read_history(path)


def _read_health(path: Path) -> list[dict] | None:
    if not path.exists():
        return None
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def read_predictions(path: Path) -> dict | None:
    """predictions.csv as arrays: classification {"y_true" int [N], "probs" [N, C], "class_names"},
    regression {"y_true" [N], "prediction" [N]}; None when the file is absent."""
    if not path.exists():
        return None
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0] if rows else []
    probs = [c for c in header[1:] if c.startswith("prob_")]
    regression = header == ["y_true", "prediction"]
    if not header or header[0] != "y_true" or not (regression or (probs and len(probs) == len(header) - 1)):
        raise UserError("predictions.csv needs columns y_true,prob_<class>... or y_true,prediction",
                        str(path), _FIX)
    try:
        values = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=float).reshape(-1, len(header))
    except ValueError:
        raise UserError("predictions.csv has a non-numeric cell", str(path), _FIX) from None
    if len(values) == 0:
        return None
    if regression:
        return {"y_true": values[:, 0], "prediction": values[:, 1]}
    return {"y_true": values[:, 0].astype(int), "probs": values[:, 1:],
            "class_names": [c[len("prob_"):] for c in probs]}


def read_run(run_dir: str | Path) -> RunFiles:
    """Every file of a run directory the report shows (see the module docstring for which are required)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}", "RUN", "pass a directory written by `nnrecipe fit`")
    model = _read_json(run_dir / "model.json") or {}
    text, config = _read_config(run_dir / "config.yaml")
    members = model.get("ensemble") if isinstance(model.get("ensemble"), list) else None
    return RunFiles(
        dir=run_dir, config_text=text, config=config,
        metrics=_read_json(run_dir / "metrics.json") or {}, model=model,
        history=None if members is not None else _read_history(run_dir / "history.csv"),
        health=_read_health(run_dir / "health.csv"),
        predictions=read_predictions(run_dir / "predictions.csv"),
        compression=_read_json(run_dir / "compression.json"),
        members=[read_run(run_dir / name) for name in members or [] if (run_dir / name).is_dir()],
        embedding=_read_json(run_dir / "embedding" / "embedding.json"))


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested config → {"optimizer.lr": 0.01, "model.hidden": [16], ...} (lists stay values)."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
