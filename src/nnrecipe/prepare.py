"""From a data source to standardized train/val/test tensors (statistics fit on train only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnrecipe.config import DataConfig
from nnrecipe.data import (Standardizer, TargetScaler, encode_labels, infer_task, load_table,
                           regression_targets, split_indices)
from nnrecipe.errors import UserError


@dataclass
class Prepared:
    task: str
    X: dict[str, np.ndarray]  # "train" / "val" / "test", standardized float64
    y: dict[str, np.ndarray]  # encoded int64 labels or standardized float64 targets
    y_raw: dict[str, np.ndarray]  # regression targets in original units
    feature_names: list[str]
    target_name: str | None
    class_names: list[str] | None
    standardizer: Standardizer
    target_scaler: TargetScaler | None
    name: str


def prepare_data(cfg: DataConfig, *, seed: int) -> Prepared:
    table = load_table(cfg.source, target=cfg.target)
    task = cfg.task or infer_task(table.y)
    test_table = None
    if cfg.test_data:
        test_table = load_table(cfg.test_data, target=cfg.target or table.target_name)
        if list(test_table.feature_names) != list(table.feature_names):
            raise UserError("test data columns differ from the training data", cfg.test_data,
                            f"use the columns {', '.join(table.feature_names[:8])}{' ...' if len(table.feature_names) > 8 else ''}")
    classification = task == "classification"
    if classification:
        y_all, class_names = encode_labels(table.y)
    else:
        y_all, class_names = regression_targets(table.y), None
    train, val, test = split_indices(len(table.X), y=y_all if classification else None,
                                     val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                                     seed=seed, stratify=classification, has_test=test_table is not None)
    X = {"train": table.X[train], "val": table.X[val], "test": table.X[test]}
    y = {"train": y_all[train], "val": y_all[val], "test": y_all[test]}
    if test_table is not None:
        X["test"] = test_table.X
        y["test"] = (encode_labels(test_table.y, class_names)[0] if classification
                     else regression_targets(test_table.y))
    d = X["train"].shape[1]
    standardizer = (Standardizer.fit(X["train"]) if cfg.standardize
                    else Standardizer(mean=np.zeros(d), std=np.ones(d)))
    X = {k: standardizer.transform(v) for k, v in X.items()}
    target_scaler = None
    y_raw = dict(y)
    if not classification:
        target_scaler = TargetScaler.fit(y["train"])
        y = {k: target_scaler.transform(v) for k, v in y.items()}
    return Prepared(task, X, y, y_raw, list(table.feature_names), table.target_name, class_names,
                    standardizer, target_scaler, table.name)


def to_tensors(data: Prepared, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train"|"val"|"test": (X float32, y long or float32)} on `device`."""
    ydtype = torch.long if data.task == "classification" else torch.float32
    return {k: (torch.as_tensor(data.X[k], dtype=torch.float32, device=device),
                torch.as_tensor(data.y[k], dtype=ydtype, device=device)) for k in data.X}
