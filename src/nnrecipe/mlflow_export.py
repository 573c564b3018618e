"""``nnrecipe runs export --mlflow``: every finished run under a folder, logged to MLflow, so a team
that already runs an MLflow tracking server sees nnrecipe's runs next to its others.

Per run directory, one MLflow run (named after the directory) in the experiment `experiment`:
  params     the config flattened to dotted keys (``optimizer.lr``), values as text
  metrics    each history.csv column per epoch (step = epoch; an empty cell is not logged) and,
             once, metrics.json's numeric leaves (``test.accuracy``; a name history.csv also has,
             such as ``lr``, gets the prefix ``final.``; characters MLflow refuses in a name, as
             in a class called ``c++``, become ``_``)
  artifacts  the run directory's files, without checkpoints/ and tensorboard/ (resume state and
             event files, not results)
  tags       nnrecipe.path (the absolute directory), nnrecipe.task, nnrecipe.status,
             nnrecipe.stamp (metrics.json's mtime and size)
An ensemble's members become nested runs (``mlflow.parentRunId``) with their own metrics and
per-epoch history. Incomplete and unreadable runs are skipped, and so is a run the experiment
already holds with the same path and stamp: exporting again adds only what is new or changed.

MLflow is an optional dependency (``pip install "nnrecipe[mlflow]"``), imported only here, when an
export runs. The client API (`mlflow.MlflowClient`: create_run / log_batch / log_artifacts /
set_terminated) is used rather than the fluent ``mlflow.start_run`` one, which keeps a global
active run.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from nnrecipe.errors import UserError
from nnrecipe.run_table import read_record, runs

SKIP_ARTIFACTS = {"checkpoints", "tensorboard"}
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000  # MLflow's log_batch limits
PARAM_VALUE_LIMIT = 6000  # MLflow's longest param value (longer ones are cut, with a marker)
_NOT_IN_NAMES = re.compile(r"[^\w.\- :/]")  # MLflow refuses other characters in metric names


def metric_name(key: str) -> str:
    """A metrics.json key as an MLflow metric name: a class name with, say, '+' in
    ``test.per_class.<class>.f1`` gets '_' for each character MLflow does not allow."""
    return _NOT_IN_NAMES.sub("_", key)


def _mlflow():
    try:
        import mlflow
        from mlflow.entities import Metric, Param
    except ImportError:
        raise UserError("MLflow is not installed", "runs export --mlflow",
                        'install it with `pip install "nnrecipe[mlflow]"`') from None
    return mlflow, Metric, Param


def read_history_rows(path: Path) -> list[dict[str, float]]:
    """history.csv as {column: value} per epoch (empty cells left out; ``epoch`` kept)."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [{k: float(v) for k, v in row.items() if k and v not in ("", None)} for row in csv.DictReader(fh)]


def _param_text(value) -> str:
    text = str(value)
    return text if len(text) <= PARAM_VALUE_LIMIT else text[:PARAM_VALUE_LIMIT - 12] + "...(cut)"


def _metrics_of(run_dir: Path, record: dict, Metric, timestamp: int) -> list:
    history = read_history_rows(run_dir / "history.csv")
    columns = {k for row in history for k in row}
    out = [Metric(key=key, value=value, timestamp=timestamp, step=int(row["epoch"]))
           for row in history for key, value in row.items() if key != "epoch"]
    for key, value in record["metrics"].items():
        name = f"final.{key}" if key in columns else metric_name(key)
        out.append(Metric(key=name, value=float(value), timestamp=timestamp, step=0))
    return out


def _log(client, run_id: str, *, params: list, metrics: list) -> None:
    for i in range(0, len(params), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[i:i + PARAMS_PER_BATCH])
    for i in range(0, len(metrics), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + METRICS_PER_BATCH])


def _log_artifacts(client, run_id: str, run_dir: Path) -> None:
    for entry in sorted(run_dir.iterdir()):
        if entry.name.startswith(".") or entry.name in SKIP_ARTIFACTS:
            continue
        if entry.is_dir():
            client.log_artifacts(run_id, str(entry), artifact_path=entry.name)
        else:
            client.log_artifact(run_id, str(entry))


def _stamp(run_dir: Path) -> str:
    st = (run_dir / "metrics.json").stat()
    return f"{st.st_mtime_ns}:{st.st_size}"


def _exported(client, experiment_id: str) -> set[tuple[str, str]]:
    """(path, stamp) of the nnrecipe runs the experiment already holds."""
    seen, token = set(), None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        seen |= {(r.data.tags.get("nnrecipe.path"), r.data.tags.get("nnrecipe.stamp")) for r in page}
        token = page.token
        if not token:
            return seen


def _export_one(client, experiment_id: str, run_dir: Path, record: dict, *, Metric, Param,
                parent: str | None = None) -> str:
    tags = {"nnrecipe.path": str(run_dir.resolve()), "nnrecipe.task": str(record["task"]),
            "nnrecipe.status": record["status"], "nnrecipe.stamp": _stamp(run_dir)}
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, run_name=record["name"], tags=tags)
    run_id = run.info.run_id
    try:
        params = [Param(key, _param_text(value)) for key, value in sorted(record["config"].items())]
        _log(client, run_id, params=params, metrics=_metrics_of(run_dir, record, Metric, run.info.start_time))
        if parent is None:
            _log_artifacts(client, run_id, run_dir)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def export_runs_mlflow(dir: str | Path | None = None, *, tracking_uri: str | None = None,
                       experiment: str = "nnrecipe", filters: list[str] | dict | None = None) -> dict:
    """Log every finished run under `dir` (default ``runs/``; `filters` as in `nnrecipe.runs`) to
    the MLflow tracking server at `tracking_uri` (default: MLflow's own, e.g. $MLFLOW_TRACKING_URI)
    in `experiment` (module docstring). Returns ``{"tracking_uri", "experiment", "experiment_id",
    "exported": [{"name", "run_id"}], "skipped": [{"name", "reason"}]}``."""
    records = runs(dir, filters=filters)
    mlflow, Metric, Param = _mlflow()
    tracking_uri = tracking_uri or mlflow.get_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    done = _exported(client, experiment_id)
    exported, skipped = [], []
    for record in records:
        run_dir = Path(record["path"])
        if record["status"] in ("INCOMPLETE", "unreadable"):
            skipped.append({"name": record["name"], "reason": record["status"].lower()})
            continue
        if (str(run_dir), _stamp(run_dir)) in done:
            skipped.append({"name": record["name"], "reason": "already exported"})
            continue
        run_id = _export_one(client, experiment_id, run_dir, record, Metric=Metric, Param=Param)
        for member in _members(run_dir):
            _export_one(client, experiment_id, member, read_record(member, root=run_dir.parent),
                        Metric=Metric, Param=Param, parent=run_id)
        exported.append({"name": record["name"], "run_id": run_id})
    return {"tracking_uri": tracking_uri,
            "experiment": experiment, "experiment_id": experiment_id, "exported": exported, "skipped": skipped}


def _members(run_dir: Path) -> list[Path]:
    members = run_dir / "members"
    if not members.is_dir():
        return []
    return sorted((p for p in members.iterdir() if (p / "metrics.json").is_file()), key=lambda p: (len(p.name), p.name))


__all__ = ["export_runs_mlflow", "read_history_rows"]
