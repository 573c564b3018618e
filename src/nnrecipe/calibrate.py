"""`nnrecipe calibrate RUN [--data SOURCE]`: refit the temperature of a trained classifier.

T minimizes the NLL of softmax(z/T) (`nnrecipe.post.temperature`) on labelled data: SOURCE, or the
run's own validation split (rebuilt from config.yaml: same seed, same split, same train-split
statistics; a ``data.lazy`` run streams it image by image, as its fit did). The run directory is
updated in place, file by file through a temporary file and an atomic rename, so an interrupted
call leaves the previous model.json/metrics.json intact:
model.json gets the new T (predict uses it), metrics.json's ``calibration`` block the before/after
NLL, ECE, MCE and reliability bins (with ``source``), and plots/reliability.png is redrawn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from nnrecipe.config import resolve_config
from nnrecipe.data import encode_labels
from nnrecipe.errors import UserError
from nnrecipe.evaluation import calibration_report
from nnrecipe.tabular_inference import read_features
from nnrecipe.prepare import prepare_for, prepare_lazy, to_streams
from nnrecipe.report.html import write_report
from nnrecipe.report.plots import plot_run
from nnrecipe.run import Run
from nnrecipe.tasks import open_run
from nnrecipe.training.data_loading import close_streams
from nnrecipe.training.loop import predict_logits


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _logits_and_labels(run: Run, data: str | None):
    if data is None:
        cfg = resolve_config(extra=run.config)
        if cfg.data.lazy:  # stream the validation images as the fit did; never hold the folder in memory
            return _streamed_val_logits(run, cfg)
        prepared = prepare_for(cfg)
        return run.logits_standardized(prepared.X["val"]).double(), torch.as_tensor(prepared.y["val"])
    X, y = read_features(run, data, labelled=True)
    if y is None:
        raise UserError("no labels to calibrate against", data, f"include the '{run.info.get('target_name')}' column")
    y_enc, _ = encode_labels(y, run.class_names)
    return run.logits(X).double(), torch.as_tensor(y_enc)


def _streamed_val_logits(run: Run, cfg):
    streams = to_streams(prepare_lazy(cfg), cfg.train, torch.device("cpu"))
    try:
        X_val, y_val = streams["val"]
        return predict_logits(run.model, X_val).double(), y_val
    finally:
        close_streams(streams)


def recalibrate(run_dir: str | Path, data: str | None = None) -> dict:
    """Fit T on `data` (or the validation split) and update the run; returns the calibration block."""
    run = open_run(run_dir, "calibrate")
    if run.task != "classification" or run.members:
        raise UserError("calibrate needs a single (non-ensemble) tabular or image classifier", str(run_dir),
                        "pass a classification run written by `nnrecipe fit`")
    logits, y = _logits_and_labels(run, data)
    bins = run.config.get("calibration", {}).get("ece_bins", 15)
    report = calibration_report(logits, y, n_bins=bins)
    report["source"] = data or "validation split"
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "model.json").read_text())
    info["temperature"] = report["temperature"]
    metrics = dict(run.metrics)
    metrics["calibration"] = report
    _write_json(run_dir / "metrics.json", metrics)
    _write_json(run_dir / "model.json", info)
    plot_run(run_dir)
    write_report(run_dir)
    return report
