"""Comparison report of several runs: which config keys differ, learning curves overlaid (one colour
per run), and a table of test metrics.

Configs are flattened to dotted keys (``optimizer.lr``; lists stay one value) and a key is shown
when its value differs between runs or is missing from some of them. In the metrics table the best
value of each row is bold: higher is better for accuracy, F1, R², exact match, token accuracy and
BLEU; lower for loss, ECE, RMSE, MAE, MSE and perplexity.
"""

from __future__ import annotations

import math
from pathlib import Path

from nnrecipe.report.figures import overlay_figure
from nnrecipe.report.markup import figure_png, image, not_available, page, para, table
from nnrecipe.report.runfiles import RunFiles, flatten, read_run

_LOWER_IS_BETTER = {"loss", "ece", "rmse", "mae", "mse", "perplexity"}
_METRICS = ["accuracy", "f1_macro", "loss", "ece", "rmse", "mae", "r2", "exact_match", "token_accuracy", "bleu",
            "perplexity"]
_MISSING = object()  # a key absent from one run's config differs from any value, None included


def run_labels(dirs: list[Path]) -> list[str]:
    """A, B, C, … followed by the directory name (labels of the legend and the table columns)."""
    return [f"{chr(ord('A') + i) if i < 26 else i + 1}: {d.name}" for i, d in enumerate(dirs)]


def config_differences(configs: list[dict | None]) -> dict[str, list]:
    """{dotted key: [value per run]} for the keys whose value is not the same in every run
    (_MISSING where a run's config lacks the key)."""
    flats = [flatten(c or {}) for c in configs]
    keys = sorted({k for f in flats for k in f})
    diff = {}
    for key in keys:
        values = [f.get(key, _MISSING) for f in flats]
        if any(v is _MISSING for v in values) or any(v != values[0] for v in values[1:]):
            diff[key] = values
    return diff


def _show(value) -> str:
    return "(absent)" if value is _MISSING else str(value)


def _runs_section(runs: list[RunFiles], labels: list[str]) -> tuple[str, str, str]:
    rows = [[label, str(r.dir), r.model.get("data"), (r.model.get("architecture") or {}).get("name")
             or ("ensemble" if r.members else None), r.kind, r.metrics.get("status")]
            for label, r in zip(labels, runs)]
    return "runs", "Runs", table(["run", "directory", "data", "model", "kind", "status"], rows)


def _config_section(runs: list[RunFiles], labels: list[str]) -> tuple[str, str, str]:
    head = "Configuration differences"
    if any(r.config is None for r in runs):
        missing = [label for label, r in zip(labels, runs) if r.config is None]
        return "config-diff", head, not_available(f"no config.yaml in {', '.join(missing)}")
    diff = config_differences([r.config for r in runs])
    if not diff:
        return "config-diff", head, para("The runs have identical configurations.")
    rows = [[key] + [_show(v) for v in values] for key, values in diff.items()]
    # the key is marked; a value is marked where it differs from the first run's (the reference)
    classes = [["diff"] + ["" if i == 0 or v == values[0] else "changed" for i, v in enumerate(values)]
               for values in diff.values()]
    body = para(f"{len(diff)} configuration keys differ (only these are listed); a highlighted value differs "
                f"from run {labels[0]}'s.")
    return "config-diff", head, body + table(["key"] + labels, rows, cell_class=classes)


def _curves_section(runs: list[RunFiles], labels: list[str]) -> tuple[str, str, str]:
    curves = [(label.split(":")[0], r.history) for label, r in zip(labels, runs) if r.history is not None]
    if not curves:
        return "learning-curves", "Learning curves", not_available("no run has a per-epoch history")
    body = image(figure_png(overlay_figure(curves)), "learning curves of the runs overlaid")
    skipped = [label for label, r in zip(labels, runs) if r.history is None]
    if skipped:
        body += para(f"Not drawn (no history at the top level, e.g. an ensemble): {', '.join(skipped)}.", "na")
    return "learning-curves", "Learning curves", body


def _metrics_section(runs: list[RunFiles], labels: list[str]) -> tuple[str, str, str]:
    tests = [r.metrics.get("test") or {} for r in runs]
    keys = [k for k in _METRICS if any(isinstance(t.get(k), (int, float)) for t in tests)]
    rows, classes = [], []
    for key in keys:
        values = [t.get(key) for t in tests]
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        best = (min if key in _LOWER_IS_BETTER else max)(finite) if len(finite) > 1 else None
        rows.append([f"test {key}"] + values)
        classes.append([""] + ["best" if best is not None and v == best else "" for v in values])
    for key in ("epochs_run", "train_seconds"):
        rows.append([key] + [r.metrics.get(key) for r in runs])
        classes.append([""] * (len(runs) + 1))
    if not keys:
        return "metrics", "Test metrics", not_available("no run has test metrics")
    return "metrics", "Test metrics", table(["metric"] + labels, rows, cell_class=classes)


def render_comparison(run_dirs: list[str | Path]) -> str:
    dirs = [Path(d) for d in run_dirs]
    runs = [read_run(d) for d in dirs]
    labels = run_labels(dirs)
    parts = [_runs_section(runs, labels), _config_section(runs, labels), _curves_section(runs, labels),
             _metrics_section(runs, labels)]
    return page(f"nnrecipe comparison of {len(runs)} runs", parts)


def write_comparison(run_dirs: list[str | Path], *, out: Path) -> Path:
    text = render_comparison(run_dirs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
