"""The runs registry: one record per run directory under a folder (default ``runs/``), read from
the run directories themselves, so there is no second source of truth to drift from them.

A run is a directory holding ``config.yaml`` and either ``model.json`` (finished) or the
``INCOMPLETE`` marker (training, or interrupted; `nnrecipe.rundir`). Folders that are not runs are
searched below (``runs/sweep-1/…``); a run's own folders (an ensemble's ``members/``,
``checkpoints/``, ``plots/``) and hidden ones (a fit's ``.final-*`` staging) are not.

Each record holds: name (the path below DIR), data, model, task (`task_name_of_run`), status
(``complete``; ``INCOMPLETE``; ``diverged`` when metrics.json's status says so; ``unreadable`` with
a ``problem`` when a file is damaged), epochs_run, best_epoch, the task's headline test metric
(`HEADLINE`, the one table of it), the test ECE (classifiers), wall_seconds (metrics.json's
train_seconds), date (when metrics.json was written: the commit; for an incomplete run, when it
started), the config flattened to dotted keys, and metrics.json's numeric leaves (dotted keys,
lists left out).

``DIR/.nnrecipe-index.json`` is a cache only: for each run it keeps the record and the mtime and
size of the files the record was read from (config.yaml, metrics.json, model.json, INCOMPLETE);
an entry whose files changed is read again, runs that vanished drop out, and deleting the index
changes nothing but speed. It is written atomically (a temporary file renamed over it) and not at
all where DIR is read-only.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

from nnrecipe.config import Config, build_config, config_to_dict
from nnrecipe.errors import UserError
from nnrecipe.report.runfiles import flatten
from nnrecipe.run import INCOMPLETE
from nnrecipe.tasks import task_name, task_name_of_run

INDEX_NAME = ".nnrecipe-index.json"
INDEX_FORMAT = 2  # bump when a record changes shape or meaning: an older index is then ignored
STAMPED = ("config.yaml", "metrics.json", "model.json", INCOMPLETE)  # what a record is read from
NOT_RUNS = {"checkpoints", "plots", "tensorboard", "members"}  # folders of a run, never searched for runs

# The headline test metric of each task: dotted metrics.json paths, the first one present wins
# (a tabular run is a classifier or a regressor; a sequence run classifies, translates or models
# language). tests/test_run_table.py fails when a task of the registry has no entry.
HEADLINE: dict[str, tuple[str, ...]] = {
    "tabular": ("test.accuracy", "test.r2"),
    "custom": ("test.accuracy", "test.r2"),
    "sequence": ("test.accuracy", "test.bleu", "test.perplexity", "test.r2"),
    "tagging": ("test.entity_f1", "test.token_accuracy"),
    "captioning": ("test.bleu_4",),
    "autoencoder": ("test.elbo", "test.reconstruction_bce"),
    "gan": ("scores.generated.frechet_distance",),
    "word2vec": ("analogies.overall.accuracy", "final_loss"),
}
# metric names (the last part of a dotted key) where lower is better; every other metric: higher
LOWER_IS_BETTER = {"loss", "ece", "mce", "rmse", "mae", "mse", "perplexity", "bits_per_token", "frechet_distance",
                   "reconstruction", "reconstruction_bce", "reconstruction_mse", "kl", "final_loss", "d_loss",
                   "g_loss", "train_seconds", "total_seconds", "wall_seconds", "seconds"}
FIELDS = ("name", "path", "data", "model", "task", "status", "epochs_run", "best_epoch", "metric", "value", "ece",
          "wall_seconds", "date")
TEXT_FIELDS = {"name", "path", "data", "model", "task", "status"}


def lower_is_better(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in LOWER_IS_BETTER


def _numeric_leaves(tree: dict) -> dict[str, float]:
    return {k: v for k, v in flatten(tree).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _yaml(path: Path) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on a 200-key config
    tree = yaml.load(path.read_text(), Loader=loader)
    if not isinstance(tree, dict):
        raise ValueError(f"{path.name} is not a mapping")
    return tree


def _json(path: Path) -> dict:
    tree = json.loads(path.read_text())
    if not isinstance(tree, dict):
        raise ValueError(f"{path.name} is not an object")
    return tree


def _stamp(run_dir: Path) -> dict[str, list[int] | None]:
    stamp = {}
    for name in STAMPED:
        try:
            st = os.stat(run_dir / name)
            stamp[name] = [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            stamp[name] = None
    return stamp


def is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() and ((path / "model.json").is_file() or (path / INCOMPLETE).exists())


def find_run_dirs(root: Path) -> list[Path]:
    """Every run directory below `root` (module docstring), sorted by path."""
    found = []
    for folder, subfolders, _ in os.walk(root):
        here = Path(folder)
        if is_run_dir(here):
            found.append(here)
            subfolders.clear()  # a run's own folders hold no other runs
            continue
        subfolders[:] = sorted(s for s in subfolders if not s.startswith(".") and s not in NOT_RUNS)
    return sorted(found)


def _model_name(run_dir: Path, config: dict, info: dict, metrics: dict) -> str | None:
    """The model that was built: model.json's architecture (config.yaml's ``model.name: mlp`` is
    an LSTM on tokens), metrics.json's "model" (word2vec), else the config's name; an ensemble's
    is its first member's, times K."""
    ensemble = info.get("ensemble")
    if isinstance(ensemble, list) and ensemble:
        try:
            member = _json(run_dir / ensemble[0] / "model.json")
        except (OSError, UnicodeDecodeError, ValueError):
            member = {}
        return f"{_model_name(run_dir, config, member, {})} x{len(ensemble)}"
    architecture = info.get("architecture") if isinstance(info.get("architecture"), dict) else {}
    model = config.get("model") or {}
    name = architecture.get("name") or metrics.get("model") or model.get("name")
    return (architecture.get("class") or model.get("class_path")) if name == "custom" else name


def _task_of_config(config: dict) -> str | None:
    try:
        return task_name(build_config(config, where="config.yaml"))
    except (UserError, ValueError, TypeError):
        return None


def headline(task: str | None, metrics: dict) -> tuple[str | None, float | None]:
    """(dotted metrics.json key, value) of the task's headline test metric, or (None, None)."""
    flat = _numeric_leaves(metrics)
    for key in HEADLINE.get(task or "", ()):
        if key in flat:
            return key, flat[key]
    return None, None


def _date(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")


def read_record(run_dir: str | Path, *, root: str | Path | None = None) -> dict:
    """The registry's record of one run directory (module docstring); a damaged file makes the
    status ``unreadable`` (with ``problem``) rather than an error, so one bad run spoils no table."""
    run_dir = Path(run_dir)
    name = run_dir.relative_to(root).as_posix() if root is not None else run_dir.name
    record = {field: None for field in FIELDS} | {"name": name, "path": str(run_dir.resolve()),
                                                  "config": {}, "metrics": {}}
    try:
        config = _yaml(run_dir / "config.yaml")
        record["config"] = flatten(config)
        record["data"] = (config.get("data") or {}).get("source")
        if (run_dir / INCOMPLETE).exists():
            return record | {"status": "INCOMPLETE", "task": _task_of_config(config), "model": _model_name(run_dir, config, {}, {}),
                             "date": _date(run_dir / "config.yaml")}
        info = _json(run_dir / "model.json")
        metrics = _json(run_dir / "metrics.json")
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return record | {"status": "unreadable", "problem": f"{type(exc).__name__}: {exc}"}
    task = task_name_of_run(info)
    metric, value = headline(task, metrics)
    ece = (metrics.get("test") or {}).get("ece")
    status = str(metrics.get("status") or "ok")
    return record | {
        "data": info.get("data") or record["data"], "model": _model_name(run_dir, config, info, metrics), "task": task,
        "status": "diverged" if status.startswith("diverged") else "complete",
        "epochs_run": metrics.get("epochs_run"), "best_epoch": metrics.get("best_epoch"),
        "metric": metric, "value": value, "ece": ece if isinstance(ece, (int, float)) else None,
        "wall_seconds": metrics.get("train_seconds"), "date": _date(run_dir / "metrics.json"),
        "metrics": _numeric_leaves(metrics)}


def _read_index(path: Path) -> dict:
    try:
        index = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}  # absent or damaged: a cache, rebuilt from the runs
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT or not isinstance(index.get("runs"), dict):
        return {}
    return index["runs"]


def _write_index(path: Path, entries: dict) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".nnrecipe-index.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump({"format": INDEX_FORMAT, "runs": entries}, fh)
        os.replace(tmp, path)
    except OSError:  # a read-only folder: list without the cache
        pass


def scan(root: str | Path | None = None, *, use_index: bool = True) -> list[dict]:
    """The records of every run below `root` (default ``runs/``), sorted by name; through the
    index cache unless `use_index` is False."""
    root = Path(root) if root is not None else Path("runs")
    if not root.is_dir():
        raise UserError(f"runs directory not found: {root}", "DIR",
                        "pass a folder of run directories (default ./runs, where `nnrecipe fit` writes)")
    index_path = root / INDEX_NAME
    cached = _read_index(index_path) if use_index else {}
    entries, changed = {}, False
    for run_dir in find_run_dirs(root):
        name = run_dir.relative_to(root).as_posix()
        stamp = _stamp(run_dir)
        hit = cached.get(name)
        if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("record"), dict):
            record = hit["record"] | {"path": str(run_dir.resolve())}
        else:
            record, changed = read_record(run_dir, root=root), True
        entries[name] = {"stamp": stamp, "record": record}
    if use_index and (changed or set(entries) != set(cached)):
        _write_index(index_path, entries)
    return [entries[name]["record"] for name in sorted(entries)]


def _config_keys() -> set[str]:
    return set(flatten(config_to_dict(Config())))


def _matches(actual, text: str) -> bool:
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = text
    if actual == parsed:
        return True
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return float(text) == float(actual)
        except ValueError:
            return False
    return str(actual) == text


def parse_filters(filters: list[str] | dict | None) -> dict[str, str]:
    """``["model.name=lstm", "status=complete"]`` (or a dict) → {key: value text}."""
    if not filters:
        return {}
    if isinstance(filters, dict):
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in filters.items()}
    pairs = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad filter '{item}'", "--filter", "write KEY=VALUE, e.g. --filter model.name=lstm")
        pairs[key.strip()] = value.strip()
    return pairs


def apply_filters(records: list[dict], filters: dict[str, str]) -> list[dict]:
    """The records whose field (name, data, model, task, status, …) or config key equals each value."""
    known = _config_keys() | {k for r in records for k in r["config"]}
    for key in filters:
        if key not in FIELDS and key not in known:
            raise UserError(f"unknown filter key '{key}'", "--filter",
                            "use a config key (e.g. model.name, optimizer.lr) or one of " + ", ".join(FIELDS))

    def value_of(record: dict, key: str):
        return record.get(key) if key in FIELDS else record["config"].get(key, _ABSENT)

    return [r for r in records if all((v := value_of(r, key)) is not _ABSENT and _matches(v, text)
                                      for key, text in filters.items())]


_ABSENT = object()


def sort_records(records: list[dict], key: str, *, reverse: bool = False) -> list[dict]:
    """Best first by `key`: a record field, a metrics.json key (``test.accuracy``: higher first;
    ``test.rmse``, ``ece``, ``wall_seconds``: lower first) or a config key (ascending); ``date``
    newest first, text fields alphabetically. Runs without the key go last either way."""
    if key in ("metric", "value"):
        raise UserError(f"cannot sort by '{key}': headline metrics differ between tasks", "--sort",
                        "sort by the metric itself, e.g. --sort test.accuracy or --sort test.r2")
    in_metrics = any(key in r["metrics"] for r in records)
    in_config = any(key in r["config"] for r in records)
    if key not in FIELDS and not in_metrics and not in_config:
        raise UserError(f"unknown sort key '{key}'", "--sort",
                        "use a field (" + ", ".join(f for f in FIELDS if f not in ("metric", "value"))
                        + "), a metrics.json key such as test.accuracy, or a config key")

    def value_of(record: dict):
        if key in FIELDS:
            return record.get(key)
        return record["metrics"].get(key) if in_metrics else record["config"].get(key)

    descending = key == "date" or (key not in TEXT_FIELDS and key not in ("epochs_run", "best_epoch")
                                   and (key in FIELDS or in_metrics) and not lower_is_better(key))
    present = [r for r in records if _sortable(value_of(r))]
    missing = [r for r in records if not _sortable(value_of(r))]
    try:
        present.sort(key=value_of, reverse=descending != reverse)
    except TypeError:  # mixed types in a config key: compare their text
        present.sort(key=lambda r: str(value_of(r)), reverse=descending != reverse)
    return present + missing


def _sortable(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def runs(dir: str | Path | None = None, *, sort: str | None = None, filters: list[str] | dict | None = None,
         reverse: bool = False, use_index: bool = True) -> list[dict]:
    """Every run under `dir` (default ``runs/``) as a record (module docstring), filtered by
    ``key=value`` pairs (config keys or record fields) and sorted by `sort` (`sort_records`;
    default: by name)."""
    records = apply_filters(scan(dir, use_index=use_index), parse_filters(filters))
    if sort:
        return sort_records(records, sort, reverse=reverse)
    return records[::-1] if reverse else records
