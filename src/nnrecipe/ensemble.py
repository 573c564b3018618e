"""An ensemble run directory: ``members/<i>/`` are complete runs (same split, seeds seed+i), and the
top level holds the ensemble's ``config.yaml``, ``model.json`` (``{"ensemble": [member dirs]}``),
``metrics.json`` (the averaged model on val/test, plus every member's metrics) and
``plots/confusion_matrix.png``. `nnrecipe.load` returns a `Run` whose predictions average the members.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from nnrecipe.config import Config, config_to_dict, save_config
from nnrecipe.metrics import classification_metrics, regression_metrics
from nnrecipe.run import MODEL_FORMAT, Run
from nnrecipe.rundir import atomic_dir, write_run
from nnrecipe.report.html import write_report
from nnrecipe.report.plots import plot_confusion_matrix


def _ensemble_metrics(members: list[Run], X: np.ndarray, y: np.ndarray, y_raw: np.ndarray,
                      task: str, class_names, n_bins: int) -> dict:
    ensemble = Run(dir=None, model=None, info=members[0].info, members=members)
    if task == "classification":
        probs = torch.as_tensor(ensemble.predict_proba_standardized(X))
        return classification_metrics(probs, torch.as_tensor(y), class_names=class_names, n_bins=n_bins)
    pred = ensemble.predict_standardized(X)
    return regression_metrics(torch.as_tensor(pred), torch.as_tensor(y_raw))


def write_ensemble(members, prepared, tensors, cfg: Config, live, *, train_seconds: float) -> Run:
    """Write the members and the ensemble's own files into the checkpointed run `live` (a
    `RunInProgress`) and commit it; return the loaded-style Run."""
    runs = [m.run for m in members]
    bins = cfg.calibration.ece_bins
    metrics = {"task": prepared.task, "ensemble": len(runs), "train_seconds": train_seconds, "status": "ok"}
    for split in ("test", "val"):
        metrics[split] = _ensemble_metrics(runs, prepared.X[split], prepared.y[split], prepared.y_raw[split],
                                           prepared.task, prepared.class_names, bins)
    metrics["members"] = [{"seed": r.metrics["seed"], "test": r.metrics["test"], "val": r.metrics["val"],
                           "calibration": r.metrics["calibration"], "epochs_run": r.metrics["epochs_run"]}
                          for r in runs]
    names = [f"members/{i}" for i in range(len(members))]
    info = {k: v for k, v in runs[0].info.items() if k not in ("architecture", "temperature")}

    def write(directory: Path) -> None:
        with atomic_dir(directory) as tmp:
            for name, member in zip(names, members):
                write_run(member.run, member.fitted.rows, cfg, tmp / name, health_rows=member.fitted.health_rows,
                          columns=member.fitted.columns)
            save_config(cfg, tmp / "config.yaml")
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
            (tmp / "model.json").write_text(json.dumps({"format": MODEL_FORMAT, **info, "ensemble": names}, indent=2))
            if prepared.task == "classification":
                plot_confusion_matrix(metrics["test"]["confusion_matrix"], prepared.class_names,
                                      tmp / "plots" / "confusion_matrix.png")
            write_report(tmp)
    final = live.commit(write)
    for i, r in enumerate(runs):
        r.dir = final / names[i]
    return Run(dir=final, model=None, info={**info, "ensemble": names}, metrics=metrics,
               config=config_to_dict(cfg), members=runs)
