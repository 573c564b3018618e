"""``nnrecipe runs compare A B [C …]``: two or more runs side by side, from their directories.

The result holds each run's registry record (`nnrecipe.run_table.read_record`), the config keys
whose values differ (`nnrecipe.report.compare.config_differences`: a key absent from a run counts
as different; only those keys are listed) and the metrics side by side: every numeric test metric
one level below ``test`` (``test.accuracy``, ``test.rmse``, …) plus epochs_run, best_epoch and
train_seconds, with the best run of each row (`nnrecipe.run_table.lower_is_better` decides).
With ``out`` it also writes the HTML comparison of `nnrecipe report` (config differences, learning
curves overlaid, test metrics table) there.
"""

from __future__ import annotations

import math
from pathlib import Path

from nnrecipe.errors import UserError
from nnrecipe.report.compare import config_differences, run_labels, write_comparison
from nnrecipe.run_table import is_run_dir, lower_is_better, read_record

ABSENT = "(absent)"  # a config key the run does not have
SUMMARY_KEYS = ("epochs_run", "best_epoch", "train_seconds")


def resolve_run(name: str | Path, dir: str | Path | None = None) -> Path:
    """A run directory given as a path, or as a name below `dir` (default ``runs/``)."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else [path, Path(dir if dir is not None else "runs") / path]
    for candidate in candidates:
        if is_run_dir(candidate):
            return candidate
    raise UserError(f"not a run directory: {name}", "runs compare",
                    "pass run directories written by `nnrecipe fit` (a path, or a name listed by `nnrecipe runs`)")


def _metric_rows(records: list[dict]) -> dict[str, dict]:
    keys = sorted({k for r in records for k in r["metrics"] if k.startswith("test.") and k.count(".") == 1})
    rows = {}
    for key in [*keys, *SUMMARY_KEYS]:
        values = [r["metrics"].get(key) for r in records]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        best = None
        if key not in ("epochs_run", "best_epoch") and len(finite) > 1 and len(set(finite)) > 1:
            best = values.index((min if lower_is_better(key) else max)(finite))
        if finite:
            rows[key] = {"values": values, "best": best}
    return rows


def compare_runs(run_dirs: list[str | Path], *, out: str | Path | None = None,
                 dir: str | Path | None = None) -> dict:
    """Compare two or more runs (module docstring). Returns ``{"labels": ["A: name", …], "runs":
    [record, …], "config": {key: [value per run]}, "metrics": {key: {"values": [...], "best": index
    or None}}, "html": path written or None}``."""
    if len(run_dirs) < 2:
        raise UserError(f"compare needs at least two runs, got {len(run_dirs)}", "runs compare",
                        "pass two or more run directories: nnrecipe runs compare A B")
    if out is not None and Path(out).suffix.lower() not in (".html", ".htm"):
        raise UserError(f"the comparison is an HTML file, got '{out}'", "--out", "name it e.g. compare.html")
    dirs = [resolve_run(d, dir) for d in run_dirs]
    records = [read_record(d) for d in dirs]
    unusable = [r["name"] for r in records if r["status"] in ("INCOMPLETE", "unreadable")]
    if out is not None and unusable:
        raise UserError(f"cannot draw the curves of unfinished or damaged runs: {', '.join(unusable)}",
                        "--out", "compare finished runs, or leave out --out for the console comparison")
    # the records' configs are flat already (dotted keys), which config_differences flattens to themselves
    config = {key: [v if _is_value(v) else ABSENT for v in values]
              for key, values in config_differences([r["config"] for r in records]).items()}
    html = write_comparison(dirs, out=Path(out)) if out is not None else None
    return {"labels": run_labels(dirs), "runs": [{k: v for k, v in r.items() if k not in ("config", "metrics")}
                                                 for r in records],
            "config": config, "metrics": _metric_rows(records), "html": str(html) if html else None}


def _is_value(v) -> bool:
    """config_differences marks an absent key with a private sentinel object; real values are YAML's."""
    return v is None or isinstance(v, (str, int, float, bool, list, dict))

