"""`nnrecipe report`: one self-contained HTML page per run (or a comparison of several runs).

A single-run report reads only the run directory's files (`nnrecipe.report.runfiles`) and shows,
in this order: overview, resolved config, data, model summary, learning curves with the curve
diagnosis, training health, the profile (``train.profile``), then by kind of run: classification (test metrics, confusion matrix,
ROC/PR curves, calibration, per-class table), regression (metrics, residuals), sequence (metrics,
examples, attention), tagging (metrics, tag confusion matrix, per-tag table, entity types, examples),
captioning (BLEU, captions against references, sample images with per-word attention),
ensemble members; the compression table, and the embedding (`nnrecipe embed`) when RUN/embedding/
holds one. A section whose file is
missing says "Not available" instead of failing. Figures are PNGs embedded as base64 data URIs;
the page has no script and loads nothing from anywhere (it opens offline, and its CSP forbids it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nnrecipe.errors import UserError
from nnrecipe.report import results, sections
from nnrecipe.report.markup import page
from nnrecipe.report.runfiles import RunFiles, read_run
from nnrecipe.report.compare import write_comparison

REPORT_NAME = "report.html"


def _sections(run: RunFiles) -> list[tuple[str, str, str]]:
    parts = [sections.overview(run), sections.config(run), sections.data(run), sections.model(run),
             sections.learning_curves(run)]
    if not run.members:
        parts.append(sections.health(run))
    timing = sections.profile(run)
    if timing is not None:
        parts.append(timing)
    kind = run.metrics.get("kind") or run.task
    if kind in ("seq2seq", "lm"):
        parts += [results.test_metrics(run), results.sequence(run)]
    elif kind == "classification":
        parts += [results.test_metrics(run), results.confusion(run), results.roc_pr(run), results.calibration(run),
                  results.per_class(run)]
    elif kind == "regression":
        parts += [results.test_metrics(run), results.residuals(run)]
    elif kind == "tagging":
        parts += [results.test_metrics(run), results.confusion(run), results.per_class(run), results.tagging(run)]
    elif kind == "captioning":
        parts += [results.test_metrics(run), results.captioning(run)]
    if run.members:
        parts.append(sections.members(run))
    parts.append(sections.compression(run))
    if run.embedding is not None:  # only once `nnrecipe embed` has written RUN/embedding/
        parts.append(sections.embedding(run))
    return parts


def _title(run: RunFiles) -> str:
    data = run.model.get("data") or ((run.config or {}).get("data") or {}).get("source") or "run"
    arch = (run.model.get("architecture") or {}).get("name") or ((run.config or {}).get("model") or {}).get("name")
    # inside `fit` the directory is still a hidden temporary sibling: its name means nothing to a reader
    name = "" if run.dir.name.startswith(".") else f" — {run.dir.name}"
    return f"nnrecipe report: {data}" + (f" · {arch}" if arch else "") + name


def render_run(run_dir: str | Path) -> str:
    """The HTML text of the single-run report of `run_dir`."""
    run = read_run(run_dir)
    return page(_title(run), _sections(run))


def write_report(run_dir: str | Path, *, out: str | Path | None = None) -> Path:
    """Write the single-run report (default RUN/report.html) from a complete run directory."""
    path = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    text = render_run(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def report(run_dirs: str | Path | Sequence[str | Path], *, out: str | Path | None = None) -> Path:
    """One run: its report (default RUN/report.html). Several: a side-by-side comparison
    (default ./report-compare.html). Returns the path written."""
    dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    if not dirs:
        raise UserError("no run directory given", "RUN", "pass at least one run directory")
    if out is not None and Path(out).suffix.lower() not in (".html", ".htm"):
        raise UserError(f"the report is an HTML file, got '{out}'", "--out", "name it e.g. report.html")
    if len(dirs) == 1:
        return write_report(dirs[0], out=out)
    return write_comparison(dirs, out=Path(out) if out is not None else Path("report-compare.html"))
