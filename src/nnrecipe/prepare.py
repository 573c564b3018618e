"""From a data source to normalized train/val/test arrays and tensors (statistics fit on train only).

With ``images=True`` (a conv net or ViT) the data must carry an image shape (digits, an image
folder, a 4-D .npz) and inputs become [N, C, H, W], normalized per channel; otherwise rows are
vectors standardized per feature (digits' 8×8 pixels are then 64 features).

With ``data.lazy`` (`prepare_lazy`, `fit` only) an image folder is scanned instead of loaded: the
splits hold `nnrecipe.data.lazy_images.ImageFolderDataset`s (paths, no pixels) with the same rows,
targets and transform as the in-memory path, and `to_streams` reads them through DataLoaders.
Commands that prepare data again from a run's config (calibrate, compress, attack, doctor) use
`prepare_for`, which always loads into memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnrecipe.config import IMAGE_MODELS, Config, DataConfig, TrainConfig
from nnrecipe.data import TargetScaler, encode_labels, infer_task, load_table, regression_targets, split_indices
from nnrecipe.data.sources import Table
from nnrecipe.data.split import holdout
from nnrecipe.data.images import image_feature_names
from nnrecipe.data.arrays import MEMORY_PREFIX, is_in_memory, to_table
from nnrecipe.data.lazy_images import scan_image_folder
from nnrecipe.data.normalize import ChannelNormalizer
from nnrecipe.data.transform import InputTransform
from nnrecipe.errors import UserError
from nnrecipe.models.custom import class_path_of
from nnrecipe.training.data_loading import DatasetBatches, dataset_batches


@dataclass(frozen=True)
class GivenData:
    """Tables the caller passed in memory (`nnrecipe.data.arrays.to_table`) instead of a source:
    train, and optionally its own validation and test sets (otherwise split off train)."""
    train: Table
    val: Table | None = None
    test: Table | None = None


@dataclass(frozen=True)
class Provided:
    """What the caller hands `fit` (or `doctor`) that a config cannot hold: data in memory, a module instance
    (trained in place, as Keras' ``model.fit`` does) and a loss callable."""
    data: GivenData | None = None
    model: nn.Module | None = None
    loss: Callable | None = None


def provided_inputs(data, *, model=None, val=None, test=None, loss=None) -> tuple[Provided, dict]:
    """(what `fit` / `doctor` get besides the config, the config keys that describe it): `data`,
    `val`, `test` read into tables when in memory, `model` when it is an instance."""
    tree: dict = {}
    given = None
    if is_in_memory(data) or val is not None or test is not None:
        if not is_in_memory(data):
            raise UserError("val= and test= go with in-memory training data", "val/test",
                            "pass data=(X, y) (or a Dataset) as well, or use data.test_data for a test file")
        for name, split in (("val", val), ("test", test)):
            if split is not None and not is_in_memory(split):
                raise UserError(f"{name}= must be in memory like data", name, "pass (X, y) arrays or a Dataset")
        given = GivenData(train=to_table(data, where="data"),
                          val=to_table(val, where="val") if val is not None else None,
                          test=to_table(test, where="test") if test is not None else None)
        tree["data"] = {"source": MEMORY_PREFIX + type(data).__name__}
    instance = model if isinstance(model, nn.Module) else None
    if instance is not None:
        tree["model"] = {"name": "custom", "class_path": class_path_of(instance)}
    elif model is not None and not isinstance(model, str):
        raise UserError(f"model= got a {type(model).__name__}", "model",
                        "pass a built-in model name ('mlp', 'cnn', ...) or an nn.Module instance")
    if loss is not None and not callable(loss):
        raise UserError(f"loss= got a {type(loss).__name__}, not a callable", "loss",
                        "pass a function (output, target) -> scalar tensor, e.g. torch.nn.HuberLoss()")
    return Provided(data=given, model=instance, loss=loss), tree


@dataclass
class Prepared:
    task: str
    X: dict[str, np.ndarray]  # "train" / "val" / "test": model inputs, float64 ([N, D] or [N, C, H, W]);
    # with data.lazy, ImageFolderDataset per split instead (prepare_lazy)
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


def prepare_data(cfg: DataConfig, *, seed: int, images: bool | None = False, model: str = "mlp",
                 given: GivenData | None = None) -> Prepared:
    """Split, fit the input transform on train, apply it. ``images=None`` keeps the data's own
    shape (a user's model: images stay [N, C, H, W], vectors [N, D], other shapes untouched)."""
    table = given.train if given is not None else _load(cfg.source, cfg, cfg.target)
    if images is None:
        images = table.image_shape is not None
    if images and table.image_shape is None:
        raise UserError(f"model '{model}' needs images, but '{cfg.source}' holds vectors", "model.name",
                        "use --data digits, a folder of class subfolders with images, or an .npz with X of "
                        "shape N×C×H×W (or use --model mlp)")
    task = cfg.task or infer_task(table.y)
    test_table = given.test if given is not None else None
    if cfg.test_data and given is None:
        test_table = _load(cfg.test_data, cfg, cfg.target or table.target_name)
    val_table = given.val if given is not None else None
    for other, where in ((test_table, cfg.test_data or "test"), (val_table, "val")):
        if other is not None:
            _check_alike(table, other, where, images=images)
    rows, y, class_names = _split(table.y, test_table.y if test_table is not None else None, cfg,
                                  seed=seed, task=task, val_labels=val_table.y if val_table is not None else None)
    X = {k: table.X[idx] for k, idx in rows.items()}
    if test_table is not None:
        X["test"] = test_table.X
    if val_table is not None:
        X["val"] = val_table.X
    transform = InputTransform.fit(X["train"], image_shape=table.image_shape if images else None,
                                   standardize=cfg.standardize, whiten=cfg.whiten, eps=cfg.whiten_eps,
                                   patch=cfg.whiten_patch, raw_shape=table.input_shape)
    X = {k: transform.apply(v) for k, v in X.items()}
    y, y_raw, target_scaler = _scale_targets(y, task)
    skipped = table.skipped + (test_table.skipped if test_table is not None else 0)
    return Prepared(task, X, y, y_raw, list(table.feature_names), table.target_name, class_names,
                    transform, target_scaler, table.name, skipped=skipped)


def _check_alike(table: Table, other: Table, where: str, *, images: bool) -> None:
    if images and other.image_shape != table.image_shape:
        raise UserError(f"{where} images have shape {other.image_shape}, training images {table.image_shape}",
                        where, "set data.image_size / data.channels so both agree")
    if other.input_shape != table.input_shape:
        raise UserError(f"{where} inputs have shape {other.input_shape}, training inputs {table.input_shape}",
                        where, "give every split inputs of the same shape")
    if not images and list(other.feature_names) != list(table.feature_names):
        raise UserError(f"{where} data columns differ from the training data", where,
                        f"use the columns {', '.join(table.feature_names[:8])}{' ...' if len(table.feature_names) > 8 else ''}")


def _split(labels: np.ndarray, test_labels: np.ndarray | None, cfg: DataConfig, *, seed: int, task: str,
           val_labels: np.ndarray | None = None):
    """({"train"|"val"|"test": row indices}, encoded targets per split, class names or None); the
    test (validation) targets come from `test_labels` (`val_labels`) when given, and those rows of
    the training table are empty."""
    classification = task == "classification"
    if classification:
        y_all, class_names = encode_labels(labels)
    else:
        y_all, class_names = regression_targets(labels), None
    stratify = y_all if classification else None
    if val_labels is None:
        train, val, test = split_indices(len(labels), y=stratify, val_fraction=cfg.val_fraction,
                                         test_fraction=cfg.test_fraction, seed=seed, stratify=classification,
                                         has_test=test_labels is not None)
    elif test_labels is None:
        (train, test), val = holdout(len(labels), y=stratify, fraction=cfg.test_fraction, seed=seed,
                                     stratify=classification), np.arange(0)
    else:
        train, val, test = np.arange(len(labels)), np.arange(0), np.arange(0)
    rows = {"train": train, "val": val, "test": test}
    y = {k: y_all[idx] for k, idx in rows.items()}
    for split, given in (("test", test_labels), ("val", val_labels)):
        if given is not None:
            y[split] = encode_labels(given, class_names)[0] if classification else regression_targets(given)
    return rows, y, class_names


def _scale_targets(y: dict[str, np.ndarray], task: str):
    """(model targets, targets in original units, TargetScaler or None): regression targets are
    standardized with the training split's mean and std."""
    if task == "classification":
        return y, dict(y), None
    target_scaler = TargetScaler.fit(y["train"])
    return {k: target_scaler.transform(v) for k, v in y.items()}, dict(y), target_scaler


def prepare_for(cfg: Config, given: GivenData | None = None) -> Prepared:
    """`prepare_data` for the model `cfg` trains: images for conv nets and ViTs, vectors for the
    MLP, the data's own shape for a user's model (``model.name: custom``)."""
    images = None if cfg.model.name == "custom" else cfg.model.name in IMAGE_MODELS
    return prepare_data(cfg.data, seed=cfg.train.seed, images=images, model=cfg.model.name, given=given)


def to_tensors(data: Prepared, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train"|"val"|"test": (X float32, y long or float32)} on `device`."""
    ydtype = torch.long if data.task == "classification" else torch.float32
    return {k: (torch.as_tensor(data.X[k], dtype=torch.float32, device=device),
                torch.as_tensor(data.y[k], dtype=ydtype, device=device)) for k in data.X}


def _refuse_with_lazy(cfg: Config) -> None:
    """What data.lazy cannot stream: each needs every image in memory (or is not an image fit)."""
    d = cfg.data
    if not Path(d.source).is_dir():
        raise UserError(f"data.lazy streams image folders, but '{d.source}' is not a folder", "data.lazy",
                        "drop data.lazy (this data is read into memory), or pass a folder with one "
                        "subfolder of images per class")
    if d.test_data and not Path(d.test_data).is_dir():
        raise UserError(f"with data.lazy the test data must be an image folder too, got '{d.test_data}'",
                        "data.test_data", "pass a folder of class subfolders, or drop data.lazy")
    refused = [("model.name", cfg.model.name, cfg.model.name not in IMAGE_MODELS,
                f"use --model {'|'.join(IMAGE_MODELS)}"),
               ("data.whiten", d.whiten, d.whiten != "none",
                "drop data.whiten (its fit needs all training images at once)"),
               ("train.ensemble", cfg.train.ensemble, cfg.train.ensemble > 1, "set train.ensemble=1"),
               ("adversarial.method", cfg.adversarial.method, cfg.adversarial.method != "none",
                "set adversarial.method=none"),
               ("train.loader", cfg.train.loader, cfg.train.loader == "tensor",
                "set train.loader=auto (lazy data always goes through a DataLoader)")]
    for key, value, bad, fix in refused:
        if bad:
            raise UserError(f"data.lazy cannot be combined with {key}={value}", key, f"{fix}, or drop data.lazy")


def prepare_lazy(cfg: Config) -> Prepared:
    """`prepare_for` for ``data.lazy``: the same split, targets and transform (statistics from a
    streaming pass over the folder), with `ImageFolderDataset`s in place of arrays."""
    _refuse_with_lazy(cfg)
    d = cfg.data

    def scan(source: str):
        return scan_image_folder(Path(source), source, image_size=d.image_size, channels=d.channels,
                                 skip_bad_images=d.skip_bad_images, workers=cfg.train.workers)

    folder = scan(d.source)
    test_folder = scan(d.test_data) if d.test_data else None
    if test_folder is not None and test_folder.image_shape != folder.image_shape:
        raise UserError(f"test images have shape {test_folder.image_shape}, training images {folder.image_shape}",
                        d.test_data, "set data.image_size / data.channels so both agree")
    task = d.task or infer_task(folder.labels)
    rows, y, class_names = _split(folder.labels, test_folder.labels if test_folder is not None else None, d,
                                  seed=cfg.train.seed, task=task)
    c = folder.image_shape[0]
    channel = (folder.channel_normalizer(rows["train"]) if d.standardize
               else ChannelNormalizer(mean=np.zeros(c), std=np.ones(c)))
    transform = InputTransform(channel=channel, image_shape=folder.image_shape, whiten_eps=d.whiten_eps)
    y, y_raw, target_scaler = _scale_targets(y, task)
    X = {k: folder.dataset(idx, y[k], transform) for k, idx in rows.items()}
    if test_folder is not None:
        X["test"] = test_folder.dataset(np.arange(len(test_folder)), y["test"], transform)
    skipped = folder.skipped + (test_folder.skipped if test_folder is not None else 0)
    return Prepared(task, X, y, y_raw, image_feature_names(folder.image_shape), "label", class_names, transform,
                    target_scaler, Path(d.source).resolve().name or d.source, skipped=skipped)


def to_streams(data: Prepared, train: TrainConfig,
               device: torch.device) -> dict[str, tuple[DatasetBatches, torch.Tensor]]:
    """`to_tensors` for `prepare_lazy`'s datasets: {split: (DatasetBatches, y on `device`)}; training
    and evaluation read ``train.batch_size`` images at a time through ``train.workers`` workers."""
    return {k: (dataset_batches(data.X[k], device=device, workers=train.workers, pin_memory=train.pin_memory,
                                persistent_workers=train.persistent_workers, eval_batch_size=train.batch_size),
                data.X[k].targets.to(device)) for k in data.X}
