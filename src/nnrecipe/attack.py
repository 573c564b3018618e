"""`nnrecipe attack RUN --eps 1,2 [--method fgsm|pgd]`: accuracy of a trained classifier under attack.

The attacks and the units are in `nnrecipe.post.adversarial`: ε (and ``step_size``) are in raw
input units, converted per feature / per channel by the run's stored σ, and the attacked inputs stay
in the valid raw range ([0, 16] for digits; ``raw_range`` otherwise, no clamp if unknown). The rows
are the run's test split, rebuilt from config.yaml (same seed, same split, same train-split
statistics, as `nnrecipe calibrate` rebuilds the validation split; streamed image by image for a
``data.lazy`` run), or labelled ``data``. The
result is written to ``attack.json`` in the run directory (through a temporary file and a rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from nnrecipe.config import resolve_config
from nnrecipe.data import encode_labels
from nnrecipe.errors import UserError
from nnrecipe.tabular_inference import read_features
from nnrecipe.post.adversarial import default_range, model_units, robust_accuracy
from nnrecipe.prepare import prepare_for, prepare_lazy, to_streams
from nnrecipe.run import Run
from nnrecipe.tasks import open_run
from nnrecipe.training.data_loading import close_streams

METHODS = ("fgsm", "pgd")


def _rows(run: Run, data: str | None, streams: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(standardized inputs, encoded labels) of the test split or of `data`. A data.lazy run's test
    split comes as a `DatasetBatches` (images read batch by batch) and its streams go into `streams`."""
    if data is None:
        cfg = resolve_config(extra=run.config)
        if cfg.data.lazy:
            streams.update(to_streams(prepare_lazy(cfg), cfg.train, torch.device("cpu")))
            return streams["test"]
        prepared = prepare_for(cfg)
        Z, y = prepared.X["test"], prepared.y["test"]
    else:
        X, labels = read_features(run, data, labelled=True)
        if labels is None:
            raise UserError("no labels to score the attack against", data,
                            f"include the '{run.info.get('target_name')}' column")
        Z, y = run.standardize(X), encode_labels(labels, run.class_names)[0]
    return torch.as_tensor(Z, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)


def attack(run_dir: str | Path, *, eps: float | list[float], method: str = "pgd", steps: int = 10,
           step_size: float | None = None, data: str | None = None, raw_range: tuple[float, float] | None = None,
           seed: int = 0, write: bool = True) -> dict:
    """Clean accuracy and accuracy under `method` at each ε (raw input units); writes attack.json.

    `step_size` (PGD, raw units) defaults to 2.5·ε/steps for each ε; `raw_range` (lo, hi) is the
    valid raw input range (default: the run's ``adversarial.raw_range``, [0, 16] for digits, else none).
    """
    eps_list = [float(e) for e in (eps if isinstance(eps, (list, tuple)) else [eps])]
    if not eps_list or min(eps_list) < 0:
        raise UserError(f"eps must be >= 0, got {eps_list}", "--eps", "pass radii in raw input units, e.g. 1,2")
    if method not in METHODS:
        raise UserError(f"unknown attack '{method}'", "--method", "use fgsm or pgd")
    if steps < 1 or (step_size is not None and step_size <= 0):
        raise UserError("steps must be >= 1 and step_size > 0", "--steps/--step-size", "e.g. --steps 10")
    run = open_run(run_dir, "attack")
    if run.members or run.task != "classification":
        raise UserError("attack needs a single (non-ensemble) tabular or image classifier", str(run_dir),
                        "pass a classification run written by `nnrecipe fit`")
    configured = (run.config.get("adversarial") or {}).get("raw_range")
    lo_hi = default_range(run.info.get("data"), raw_range if raw_range is not None else configured)
    streams: dict = {}
    try:
        X, y = _rows(run, data, streams)
        model = run.model.cpu().eval()
        clean = robust_accuracy(model, X, y, 0.0)
        results = []
        for e in eps_list:
            units = model_units(run.transform, eps=e, step_size=step_size, raw_range=lo_hi)
            acc = robust_accuracy(model, X, y, units["eps"], method=method, steps=steps,
                                  step_size=units["step_size"], lower=units["lower"], upper=units["upper"],
                                  generator=torch.Generator().manual_seed(seed))
            results.append({"eps": e, "accuracy": acc, "drop": clean - acc})
    finally:
        close_streams(streams)  # data.lazy: the DataLoader workers end here
    report = {"method": method, "steps": steps if method == "pgd" else 1,
              "step_size": step_size if step_size is not None else ("2.5*eps/steps" if method == "pgd" else "eps"),
              "eps_units": "raw input units (converted per feature/channel by the run's std)",
              "range": list(lo_hi) if lo_hi else None, "source": data or "test split", "rows": len(y),
              "seed": seed, "clean_accuracy": clean, "results": results}
    if write:
        path = Path(run_dir) / "attack.json"
        tmp = path.with_name(".attack.json.tmp")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, path)
    return report
