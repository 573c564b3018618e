"""`fit`: data → MLP → init → training loop → temperature scaling → evaluation → run directory.

The run is assembled in a hidden temporary directory next to its destination and moved into
place (one ``os.rename``) only when every file is written, so a failure never leaves a
half-written run behind.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

from nnrecipe.config import Config, config_to_dict, resolve_config, save_config
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.metrics import classification_metrics, regression_metrics
from nnrecipe.post.temperature import apply_temperature, fit_temperature
from nnrecipe.prepare import Prepared, prepare_data
from nnrecipe.recipe.diagnosis import diagnose_history
from nnrecipe.recipe.health import HealthMonitor, write_health_csv
from nnrecipe.run import Run, save_model
from nnrecipe.training.callbacks import EarlyStopping, History, ProgressBar
from nnrecipe.training.loop import predict_logits
from nnrecipe.training.setup import (architecture, base_lr, make_model, make_trainer, pick_device,
                                     seed_everything)


def _tensors(data: Prepared, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    ydtype = torch.long if data.task == "classification" else torch.float32
    return {k: (torch.as_tensor(data.X[k], dtype=torch.float32, device=device),
                torch.as_tensor(data.y[k], dtype=ydtype, device=device)) for k in data.X}


def _evaluate_split(model, X, y, data: Prepared, split: str, temperature: float, n_bins: int) -> dict:
    logits = predict_logits(model, X).cpu().double()
    if data.task == "classification":
        return classification_metrics(apply_temperature(logits, temperature), y.cpu(),
                                      class_names=data.class_names, n_bins=n_bins)
    pred = data.target_scaler.inverse_transform(logits.squeeze(-1).numpy())
    return regression_metrics(torch.as_tensor(pred), torch.as_tensor(data.y_raw[split]))


def _calibrate(model, X_val, y_val, cfg: Config) -> dict:
    logits = predict_logits(model, X_val).cpu().double()
    y = y_val.cpu()
    probs_before = apply_temperature(logits, 1.0)
    t = fit_temperature(logits, y) if cfg.calibration.temperature else 1.0
    probs_after = apply_temperature(logits, t)
    from nnrecipe.metrics import expected_calibration_error, nll
    bins = cfg.calibration.ece_bins
    return {"temperature": t, "nll_before": nll(probs_before, y), "nll_after": nll(probs_after, y),
            "ece_before": expected_calibration_error(probs_before, y, bins),
            "ece_after": expected_calibration_error(probs_after, y, bins)}


def _write_history(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=History.columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _run_dir(out: str | Path | None, cfg: Config, name: str) -> Path:
    if out:
        return Path(out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{name}-{cfg.model.name}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def fit(data: str | None = None, *, config: Config | dict | str | Path | None = None,
        overrides: list[str] | None = None, target: str | None = None, task: str | None = None,
        test_data: str | None = None, epochs: int | None = None, seed: int | None = None,
        out: str | Path | None = None, progress: bool = False) -> Run:
    """Train on `data` and write a run directory; return the loaded `Run`.

    `config` is a `Config`, a nested dict, or a YAML path; keyword options (data, target, task,
    test_data, epochs, seed) and `overrides` (``"optimizer.lr=3e-4"``) are applied on top of it.
    """
    extra: dict = {"data": {}, "train": {}}
    for key, value in (("source", data), ("target", target), ("task", task), ("test_data", test_data)):
        if value is not None:
            extra["data"][key] = value
    for key, value in (("epochs", epochs), ("seed", seed)):
        if value is not None:
            extra["train"][key] = value
    if isinstance(config, Config):
        config = config_to_dict(config)
    if isinstance(config, dict):
        from nnrecipe.config import build_config, merge, parse_overrides
        cfg = build_config(merge(merge(config, extra), parse_overrides(overrides or [])))
    else:
        cfg = resolve_config(file=config, overrides=overrides, extra=extra)
    return _fit(cfg, out=out, progress=progress)


def _fit(cfg: Config, *, out, progress: bool) -> Run:
    started = time.perf_counter()
    if out and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise UserError(f"output directory already exists and is not empty: {out}", "--out",
                        "choose a new directory or remove the old run")
    seed_everything(cfg.train.seed)
    prepared = prepare_data(cfg.data, seed=cfg.train.seed)
    device = pick_device(cfg.train.device)
    tensors = _tensors(prepared, device)
    classification = prepared.task == "classification"
    arch = architecture(cfg, in_features=len(prepared.feature_names),
                        out_features=len(prepared.class_names) if classification else 1)
    X_train, y_train = tensors["train"]
    model = make_model(cfg, arch, device=device, init_batch=X_train[: cfg.train.batch_size])
    history = History()
    health = HealthMonitor(every=cfg.train.log_every,
                           warn=(lambda msg: sys.stderr.write(msg + "\n")) if progress else (lambda msg: None))
    callbacks = [history, EarlyStopping(patience=cfg.train.patience, min_delta=cfg.train.min_delta), health]
    if progress:
        callbacks.append(ProgressBar(cfg.train.epochs, description=f"fit {prepared.name}"))
    trainer = make_trainer(cfg, model, task=prepared.task, train_rows=len(X_train), callbacks=callbacks)
    generator = torch.Generator().manual_seed(cfg.train.seed)
    diverged = None
    try:
        logs = trainer.fit(X_train, y_train, *tensors["val"], epochs=cfg.train.epochs,
                           batch_size=cfg.train.batch_size, generator=generator)
    except TrainingDiverged as exc:
        diverged, logs = exc, {"epochs_run": exc.epoch, "best_epoch": callbacks[1].best_epoch}
    train_seconds = time.perf_counter() - started

    calibration = _calibrate(model, *tensors["val"], cfg) if classification else None
    temperature = calibration["temperature"] if calibration else 1.0
    bins = cfg.calibration.ece_bins
    metrics = {"task": prepared.task,
               "test": _evaluate_split(model, *tensors["test"], prepared, "test", temperature, bins),
               "val": _evaluate_split(model, *tensors["val"], prepared, "val", temperature, bins),
               "calibration": calibration, "epochs_run": logs["epochs_run"],
               "best_epoch": logs.get("best_epoch", 0), "train_seconds": train_seconds,
               "status": "ok" if diverged is None else f"diverged: {diverged}",
               "diagnosis": diagnose_history(history.rows, task=prepared.task),
               "lr": base_lr(cfg), "skipped_steps": trainer.skipped_steps,
               "health_warnings": health.warnings}
    info = {"task": prepared.task, "architecture": arch, "feature_names": prepared.feature_names,
            "target_name": prepared.target_name, "class_names": prepared.class_names,
            "temperature": temperature, "standardizer": prepared.standardizer.to_dict(),
            "target_scaler": prepared.target_scaler.to_dict() if prepared.target_scaler else None,
            "data": prepared.name}
    run = Run(dir=None, model=model.cpu().eval(), info=info, metrics=metrics, config=config_to_dict(cfg))
    run.dir = write_run(run, history.rows, cfg, _run_dir(out, cfg, prepared.name), health_rows=health.rows)
    if diverged is not None:
        diverged.run_dir = run.dir
        raise diverged
    return run


def write_run(run: Run, history_rows: list[dict], cfg: Config, final: Path, *,
              health_rows: list[dict] | None = None) -> Path:
    """Write every artifact into a temporary sibling directory, then move it into place."""
    from nnrecipe.report.plots import plot_run

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        save_config(cfg, tmp / "config.yaml")
        _write_history(history_rows, tmp / "history.csv")
        write_health_csv(health_rows or [], tmp / "health.csv")
        (tmp / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        save_model(run, tmp)
        plot_run(tmp)
        if final.exists():
            final.rmdir()
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
