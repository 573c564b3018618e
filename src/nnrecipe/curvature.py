"""`nnrecipe curvature RUN` and `nnrecipe.curvature(...)`: the Hessian spectrum of a training loss.

The math is `nnrecipe.recipe.curvature` (HVPs, Lanczos, Hutchinson, SLQ). This module finds what
to differentiate: a run (a directory or a loaded `Run`, through the task registry: only tasks whose
`commands` hold ``curvature`` answer, the tabular/image family and the user's own modules) gives its
model, its loss (cross-entropy with the run's label smoothing, or MSE on the standardized target)
and its training split rebuilt from config.yaml as `fit` made it; ``data`` replaces the split with
a labelled source or rows in memory (raw features, put through the run's input transform). A bare
``nn.Module`` takes ``data`` as its inputs, or a source prepared as `fit` would (its training split);
its loss is ``loss=`` or, by the targets' dtype, cross-entropy (integers) or MSE (floats).

The sample is `samples` rows drawn without replacement (seeded), or all rows up to
`DEFAULT_SAMPLES`; L is the mean loss over it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnrecipe.config import flag_overrides, resolve_config
from nnrecipe.data import TargetScaler, encode_labels
from nnrecipe.data.arrays import is_in_memory, to_table
from nnrecipe.errors import UserError
from nnrecipe.prepare import prepare_for
from nnrecipe.recipe.curvature import HessianOperator, evaluated, hessian_spectrum
from nnrecipe.run import Run
from nnrecipe.tabular_inference import read_features
from nnrecipe.tasks import check_command, open_run, task_for_info
from nnrecipe.training.data_loading import DatasetBatches
from nnrecipe.training.setup import loss_function

DEFAULT_SAMPLES = 1024


def _count(value, least: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= least


def _check(top_k, samples, steps, trace_probes, density_probes) -> None:
    if not _count(top_k, 1):
        raise UserError(f"top_k must be an integer >= 1, got {top_k}", "--top-k", "e.g. --top-k 3")
    if samples is not None and not _count(samples, 1):
        raise UserError(f"samples must be an integer >= 1, got {samples}", "--samples",
                        "e.g. --samples 512 (default: all training rows up to 1024)")
    if steps is not None and not _count(steps, 1):
        raise UserError(f"steps must be an integer >= 1, got {steps}", "--steps", "e.g. --steps 40")
    if not _count(trace_probes, 2):
        raise UserError(f"trace_probes must be an integer >= 2, got {trace_probes}", "--probes",
                        "a standard error needs two probes, e.g. --probes 100")
    if not _count(density_probes, 1):
        raise UserError(f"density_probes must be an integer >= 1, got {density_probes}", "density_probes", "e.g. 5")


def _run_targets(run: Run, y) -> torch.Tensor:
    """Targets as the run's loss saw them: class indices, or the standardized regression target."""
    if run.task == "classification":
        return torch.as_tensor(encode_labels(np.asarray(y), run.class_names)[0], dtype=torch.long)
    scaler = run.info.get("target_scaler")
    y = np.asarray(y, dtype=np.float64)
    return torch.as_tensor(TargetScaler.from_dict(scaler).transform(y) if scaler else y, dtype=torch.float32)


def _run_rows(run: Run, data) -> tuple[torch.Tensor, torch.Tensor, str]:
    if data is None:
        X, y = task_for_info(run.info).rebuild_splits(run, None)["train"]
        if isinstance(X, DatasetBatches):
            raise UserError("a data.lazy run streams its training images", str(run.dir),
                            "pass labelled data with --data (an image folder or .npz) to measure on")
        if run.task == "regression":  # rebuild_splits gives original units; the loss saw standardized ones
            y = _run_targets(run, y.numpy())
        return X.float(), y, "training split"
    if is_in_memory(data):
        table = to_table(data, where="data")
        X, labels, source = table.X, table.y, f"rows in memory ({len(table.y)})"
    else:
        X, labels = read_features(run, str(data), labelled=True)
        source = str(data)
        if labels is None:
            raise UserError("no targets to measure the loss on", str(data),
                            f"include the '{run.info.get('target_name')}' column")
    Z = torch.as_tensor(run.standardize(X), dtype=torch.float32)
    return Z, _run_targets(run, labels), source


def _module_rows(data) -> tuple[torch.Tensor, torch.Tensor, str, str]:
    """(inputs, targets, source, task) for a bare module."""
    if data is None:
        raise UserError("a model needs data to measure its loss on", "data",
                        "pass (X, y), a Dataset or a source, e.g. nnrecipe.curvature(model, (X, y))")
    if is_in_memory(data):
        table = to_table(data, where="data")
        X = torch.as_tensor(table.X, dtype=torch.float32)
        if table.image_shape is not None:
            X = X.reshape(len(X), *table.image_shape)
        y = np.asarray(table.y)
        task = "classification" if y.dtype.kind in "biu" else "regression"
        y = torch.as_tensor(y, dtype=torch.long if task == "classification" else torch.float32)
        return X, y, f"rows in memory ({len(y)})", task
    prepared = prepare_for(resolve_config(extra=flag_overrides(data=str(data))))
    return (torch.as_tensor(prepared.X["train"], dtype=torch.float32), torch.as_tensor(prepared.y["train"]),
            f"{data} (training split)", prepared.task)


def _resolve(model_or_run, data, loss):
    """(model, loss, X, y, source, what, default loss) from a run directory, a `Run` or a module."""
    if isinstance(model_or_run, nn.Module):
        X, y, source, task = _module_rows(data)
        default = "cross-entropy (integer targets)" if task == "classification" else "MSE (float targets)"
        return model_or_run, loss or loss_function(task), X, y, source, type(model_or_run).__name__, default
    if isinstance(model_or_run, Run):
        run = model_or_run
        check_command(run.dir or "run", run.info, "curvature")
    elif isinstance(model_or_run, (str, os.PathLike)):
        run = open_run(model_or_run, "curvature")
    else:
        raise UserError(f"cannot measure the curvature of a {type(model_or_run).__name__}", "model_or_run",
                        "pass a run directory, a loaded run or an nn.Module")
    if run.members or run.model is None:
        raise UserError("curvature needs a single model, not an ensemble", str(run.dir),
                        "pass one member's run, or a run trained with train.ensemble=1")
    X, y, source = _run_rows(run, data)
    smoothing = ((run.config.get("regularization") or {}).get("label_smoothing") or 0.0)
    default = (f"the run's: cross-entropy, label smoothing {smoothing:g}" if run.task == "classification"
               else "the run's: MSE on the standardized target")
    return run.model, loss or loss_function(run.task, smoothing), X, y, source, str(run.dir), default


def _sample(X: torch.Tensor, y: torch.Tensor, samples: int | None, seed: int):
    rows = len(y)
    want = min(rows, samples if samples is not None else DEFAULT_SAMPLES)
    if want == rows:
        return X, y
    idx = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))[:want]
    return X[idx], y[idx]


def curvature(model_or_run, data=None, *, loss: Callable | None = None, top_k: int = 3,
              samples: int | None = None, seed: int = 0, steps: int | None = None, trace_probes: int = 100,
              density_probes: int = 5, out: str | Path | None = None) -> dict:
    """The Hessian of the training loss over a sample: top-k eigenvalues (descending), λmin, trace ±
    standard error, κ over the positive part, the SLQ density, the HVP count and the seconds.

    `model_or_run`: a run directory, a loaded `Run`, or an ``nn.Module``; `data` as in `fit` (a
    source, ``(X, y)`` or a Dataset; default for a run: its training split); `loss` (output, target)
    -> scalar, e.g. ``torch.nn.MSELoss()`` (default: the run's loss). `out`: also write the JSON there.
    """
    _check(top_k, samples, steps, trace_probes, density_probes)
    if loss is not None and not callable(loss):
        raise UserError(f"loss= got a {type(loss).__name__}, not a callable", "loss", "e.g. torch.nn.MSELoss()")
    model, loss_fn, X, y, source, what, default = _resolve(model_or_run, data, loss)
    X, y = _sample(X, y, samples, seed)
    device = next(model.parameters()).device
    with evaluated(model):
        operator = HessianOperator(model, loss_fn, X.to(device), y.to(device))
        if top_k > operator.n:
            raise UserError(f"top_k {top_k} exceeds the {operator.n} trainable parameters", "--top-k",
                            f"ask for at most {operator.n}")
        result = hessian_spectrum(operator, top_k=top_k, steps=steps, trace_probes=trace_probes,
                                  density_probes=density_probes, seed=seed)
    result.update(model=what, source=source, samples=len(y), seed=seed,
                  loss="given (loss=)" if loss is not None else default)
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, path)
    return result
