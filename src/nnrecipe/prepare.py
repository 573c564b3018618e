"""From a data source to normalized train/val/test arrays and tensors (statistics fit on train only).

With ``images=True`` (a conv net or ViT) the data must carry an image shape (digits, an image
folder, a 4-D .npz) and inputs become [N, C, H, W], normalized per channel; otherwise rows are
vectors standardized per feature (digits' 8×8 pixels are then 64 features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnrecipe.config import IMAGE_MODELS, Config, DataConfig
from nnrecipe.data import TargetScaler, encode_labels, infer_task, load_table, regression_targets, split_indices
from nnrecipe.data.transform import InputTransform
from nnrecipe.errors import UserError


@dataclass
class Prepared:
    task: str
    X: dict[str, np.ndarray]  # "train" / "val" / "test": model inputs, float64 ([N, D] or [N, C, H, W])
    y: dict[str, np.ndarray]  # encoded int64 labels or standardized float64 targets
    y_raw: dict[str, np.ndarray]  # regression targets in original units
    feature_names: list[str]
    target_name: str | None
    class_names: list[str] | None
    transform: InputTransform
    target_scaler: TargetScaler | None
    name: str
    skipped: int = 0  # unreadable images skipped (data.skip_bad_images)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.transform.input_shape


def _load(source: str, cfg: DataConfig, target: str | None):
    return load_table(source, target=target, image_size=cfg.image_size, skip_bad_images=cfg.skip_bad_images,
                      channels=cfg.channels)


def prepare_data(cfg: DataConfig, *, seed: int, images: bool = False, model: str = "mlp") -> Prepared:
    table = _load(cfg.source, cfg, cfg.target)
    if images and table.image_shape is None:
        raise UserError(f"model '{model}' needs images, but '{cfg.source}' holds vectors", "model.name",
                        "use --data digits, a folder of class subfolders with images, or an .npz with X of "
                        "shape N×C×H×W (or use --model mlp)")
    task = cfg.task or infer_task(table.y)
    test_table = None
    if cfg.test_data:
        test_table = _load(cfg.test_data, cfg, cfg.target or table.target_name)
        if images and test_table.image_shape != table.image_shape:
            raise UserError(f"test images have shape {test_table.image_shape}, training images {table.image_shape}",
                            cfg.test_data, "set data.image_size / data.channels so both agree")
        if not images and list(test_table.feature_names) != list(table.feature_names):
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
    transform = InputTransform.fit(X["train"], image_shape=table.image_shape if images else None,
                                   standardize=cfg.standardize, whiten=cfg.whiten, eps=cfg.whiten_eps,
                                   patch=cfg.whiten_patch)
    X = {k: transform.apply(v) for k, v in X.items()}
    target_scaler = None
    y_raw = dict(y)
    if not classification:
        target_scaler = TargetScaler.fit(y["train"])
        y = {k: target_scaler.transform(v) for k, v in y.items()}
    skipped = table.skipped + (test_table.skipped if test_table is not None else 0)
    return Prepared(task, X, y, y_raw, list(table.feature_names), table.target_name, class_names,
                    transform, target_scaler, table.name, skipped=skipped)


def prepare_for(cfg: Config) -> Prepared:
    """`prepare_data` for the model `cfg` trains: images for conv nets and ViTs, vectors otherwise."""
    return prepare_data(cfg.data, seed=cfg.train.seed, images=cfg.model.name in IMAGE_MODELS, model=cfg.model.name)


def to_tensors(data: Prepared, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train"|"val"|"test": (X float32, y long or float32)} on `device`."""
    ydtype = torch.long if data.task == "classification" else torch.float32
    return {k: (torch.as_tensor(data.X[k], dtype=torch.float32, device=device),
                torch.as_tensor(data.y[k], dtype=ydtype, device=device)) for k in data.X}
