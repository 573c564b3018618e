"""Classification and regression on vectors or images (MLP, CNN, ResNet, MobileNetV2, ViT), and
the user's own ``nn.Module`` on any tensor shape (`CustomTask`, ``model.name: custom``).

What is particular to this family: the data path of `nnrecipe.prepare` (standardization fit on
train only, or ``data.lazy`` image folders streamed through DataLoaders), pretrained weights with
freezing and discriminative LRs (`nnrecipe.training.transfer`), PEFT adapters, adversarial
training, augmentation of image batches, the health monitor, temperature scaling on the
validation split (Guo et al. 2017) and the tabular metrics; ensembles average the members'
calibrated probabilities (`nnrecipe.ensemble`).
"""

from __future__ import annotations

import numpy as np
import torch

from nnrecipe.config import Config, resolve_config
from nnrecipe.data import TargetScaler, encode_labels
from nnrecipe.data.augment import make_augmenter
from nnrecipe.ensemble import write_ensemble
from nnrecipe.errors import UserError
from nnrecipe.evaluation import calibrate, classification_split, predictions_csv
from nnrecipe.metrics import regression_metrics
from nnrecipe.post.adversarial import adversarial_augmenter, robust_report
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.prepare import Prepared, Provided, prepare_for, prepare_lazy, to_streams, to_tensors
from nnrecipe.recipe.curvature_tracking import COLUMNS as CURVATURE_COLUMNS, CurvatureTracker
from nnrecipe.recipe.health import HealthMonitor
from nnrecipe.tabular_inference import evaluate_rows, predict_rows, read_features
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member, Task
from nnrecipe.training.callbacks import History
from nnrecipe.training.data_loading import close_streams, first_rows, training_data
from nnrecipe.training.loop import predict_logits
from nnrecipe.training.peft import setup_peft
from nnrecipe.training.precision import compile_status
from nnrecipe.training.setup import architecture, check_output_shape, learn_init, loss_function, make_model
from nnrecipe.training.transfer import (Unfreezer, discriminative_scales, frozen_count, layer_groups,
                                        load_pretrained, transfer_weights)


class TabularData:
    """`Prepared` splits and their tensors on the device (`DatasetBatches` with ``data.lazy``)."""

    def __init__(self, prepared: Prepared, tensors: dict):
        self.prepared, self.tensors, self.name = prepared, tensors, prepared.name


class TabularTask(Task):
    name = "tabular"
    ensembles = True
    learns_init = True
    peft_and_adversarial = True
    commands = frozenset({"predict", "evaluate", "calibrate", "compress", "attack", "export", "summary", "doctor",
                          "curvature", "embed"})
    holds = "tabular or image model"
    instead = "use predict, evaluate, calibrate, compress, attack, export, curvature or embed"

    def prepare(self, cfg: Config, device: torch.device, provided: Provided) -> TabularData:
        prepared = prepare_lazy(cfg) if cfg.data.lazy else prepare_for(cfg, provided.data)
        tensors = to_streams(prepared, cfg.train, device) if cfg.data.lazy else to_tensors(prepared, device)
        return TabularData(prepared, tensors)

    def close(self, data: TabularData) -> None:
        close_streams(data.tensors)  # data.lazy: DataLoader workers end with the fit

    def build(self, cfg: Config, data: TabularData, member: Member):
        X_train = data.tensors["train"][0]
        return make_model(cfg, _architecture(cfg, data.prepared), device=member.device,
                          init_batch=first_rows(X_train, cfg.train.batch_size), given=member.provided.model)

    def loop(self, cfg: Config, model, data: TabularData, member: Member) -> Loop:
        p, device = data.prepared, member.device
        X_train, y_train = data.tensors["train"]
        learned = learn_init(cfg, model, X_train, y_train, loss=member.provided.loss or
                             loss_function(p.task, cfg.regularization.label_smoothing))
        transfer, unfreezer, lr_scales = _transfer(cfg, model, p)
        model, peft, lr_scales = setup_peft(model, cfg, transfer, lr_scales)  # unchanged when peft.method is none
        health = HealthMonitor(every=cfg.train.log_every, log=member.progress)  # warnings logged while progress shows
        augment = (make_augmenter(cfg.augment, num_classes=len(p.class_names) if p.task == "classification" else None)
                   if cfg.augment.enabled and len(p.input_shape) == 3 else None)
        augment = adversarial_augmenter(cfg.adversarial, model, transform=p.transform, data_name=p.name,
                                        task=p.task, device=device, base=augment)
        train = training_data(cfg.train, X_train, y_train, device=device)
        close = (lambda: close_streams({"train": train})) if train[0] is not X_train else None  # train.loader=dataloader
        callbacks = [unfreezer] if unfreezer is not None else []
        every = cfg.train.curvature_every
        if every:  # λmax and tr H on a fixed sample of the training rows (the driver refused data.lazy)
            callbacks.append(CurvatureTracker(X_train, y_train, every=every, seed=member.seed))
        return Loop(train=train, val=data.tensors["val"], loss_task=p.task, loss=member.provided.loss,
                    augment=augment, lr_scales=lr_scales, callbacks=callbacks,
                    columns=History.columns + CURVATURE_COLUMNS if every else None, health=health, diagnose=p.task, rows=len(y_train), close=close, model=model,
                    extras={"transfer": transfer, "unfreezer": unfreezer, "peft": peft, "health": health,
                            "augmented": augment is not None, "init": learned})

    def evaluate(self, cfg: Config, model, data: TabularData, fitted: Fitted, member: Member) -> Evaluated:
        p, tensors, extras = data.prepared, data.tensors, fitted.extras
        classification = p.task == "classification"
        calibration = calibrate(model, *tensors["val"], cfg) if classification else None
        temperature = calibration["temperature"] if calibration else 1.0
        bins = cfg.calibration.ece_bins
        metrics = {"task": p.task,
                   "test": _evaluate_split(model, *tensors["test"], p, "test", temperature, bins),
                   "val": _evaluate_split(model, *tensors["val"], p, "val", temperature, bins),
                   "calibration": calibration, "skipped_steps": fitted.trainer.skipped_steps,
                   "health_warnings": extras["health"].warnings,
                   "skipped_images": p.skipped, "augmented": extras["augmented"],
                   "compile": compile_status(fitted.trainer.forward),
                   "split_sizes": {split: len(tensors[split][1]) for split in ("train", "val", "test")}}
        transfer, peft = extras["transfer"], extras["peft"]
        if extras["init"] is not None:
            metrics["init"] = extras["init"]
        if transfer is not None:
            unfreezer = extras["unfreezer"]
            transfer["events"] = unfreezer.events if unfreezer is not None else []
            metrics["transfer"] = transfer
        if peft is not None:
            metrics["peft"] = peft
        if cfg.adversarial.method != "none":
            metrics["adversarial"] = robust_report(cfg.adversarial, model, *tensors["test"], transform=p.transform,
                                                   data_name=p.name, clean_accuracy=metrics["test"]["accuracy"])
        info = {"task": p.task, "architecture": _architecture(cfg, p), "feature_names": p.feature_names,
                "target_name": p.target_name, "class_names": p.class_names,
                "temperature": temperature, "transform": p.transform.to_json(),
                "target_scaler": p.target_scaler.to_dict() if p.target_scaler else None, "data": p.name}
        if peft is not None:
            info["peft"] = peft  # save_model then writes adapter.safetensors with a reference to the base
        predictions = _test_predictions(model, *tensors["test"], p, temperature)
        return Evaluated(metrics=metrics, info=info, model=model.cpu().eval(), predictions=predictions,
                         transform=p.transform)

    def rebuild_splits(self, run, data: str | None) -> dict:
        """{"train"|"val"|"test": (model inputs float32, labels long | targets in original units)}."""
        cfg = resolve_config(extra=run.config)
        if cfg.data.lazy:  # stream the folder as the fit did: (DatasetBatches, targets) per split
            splits = to_streams(prepare_lazy(cfg), cfg.train, torch.device("cpu"))
            if run.task == "regression":  # targets in original units, as the metrics report them
                scaler = TargetScaler.from_dict(run.info["target_scaler"]) if run.info.get("target_scaler") else None
                splits = {k: (X, torch.as_tensor(scaler.inverse_transform(y.numpy())) if scaler else y)
                          for k, (X, y) in splits.items()}
        else:
            prepared = prepare_for(cfg)
            targets = prepared.y if run.task == "classification" else prepared.y_raw
            splits = {k: (torch.as_tensor(prepared.X[k], dtype=torch.float32), torch.as_tensor(targets[k]))
                      for k in ("train", "val", "test")}
        if data is not None:
            X, y = read_features(run, data, labelled=True)
            if y is None:
                raise UserError("no labels to measure the drop on", data,
                                f"include the '{run.info.get('target_name')}' column")
            y = encode_labels(y, run.class_names)[0] if run.task == "classification" else np.asarray(y, dtype=np.float64)
            splits["val"] = (torch.as_tensor(run.standardize(X), dtype=torch.float32), torch.as_tensor(y))
        return splits

    def predict(self, run, source: str) -> str:
        return predict_rows(run, source)

    def evaluate_source(self, run, source: str) -> dict:
        return evaluate_rows(run, source)

    def write_ensemble(self, members, data: TabularData, live, cfg: Config):
        return write_ensemble(members, data.prepared, data.tensors, cfg, live,
                              train_seconds=sum(m.run.metrics["train_seconds"] for m in members))


class CustomTask(TabularTask):
    """The user's own module: the data keep their shape (no image/vector choice), init is the
    module's own unless asked (``init.name: keep``), and its output must fit the task."""

    name = "custom"

    def build(self, cfg: Config, data: TabularData, member: Member):
        model = super().build(cfg, data, member)
        p = data.prepared
        check_output_shape(model, first_rows(data.tensors["train"][0], 2), task=p.task, classes=p.class_names)
        return model


def _architecture(cfg: Config, p: Prepared) -> dict:
    return architecture(cfg, input_shape=p.input_shape,
                        out_features=len(p.class_names) if p.task == "classification" else 1)


def _evaluate_split(model, X, y, data: Prepared, split: str, temperature: float, n_bins: int) -> dict:
    if data.task == "classification":
        return classification_split(model, X, y, data.class_names, temperature, n_bins)
    logits = predict_logits(model, X).cpu().double()
    pred = data.target_scaler.inverse_transform(logits.squeeze(-1).numpy())
    return regression_metrics(torch.as_tensor(pred), torch.as_tensor(data.y_raw[split]))


def _test_predictions(model, X, y, data: Prepared, temperature: float) -> str:
    """predictions.csv: the test split's labels with calibrated probabilities (or predictions)."""
    logits = predict_logits(model, X).cpu().double()
    if data.task == "classification":
        return predictions_csv(y.cpu(), apply_temperature(logits, temperature), data.class_names)
    pred = data.target_scaler.inverse_transform(logits.squeeze(-1).numpy())
    return predictions_csv(torch.as_tensor(data.y_raw["test"]), torch.as_tensor(pred), None)


def _transfer(cfg: Config, model, prepared: Prepared):
    """Load pretrained weights and set up freezing / discriminative LRs (`nnrecipe.training.transfer`).

    Returns (report for metrics.json or None, Unfreezer or None, lr_scales or None)."""
    t = cfg.transfer
    if not t.init_from:
        if t.freeze or t.discriminative != 1.0:
            raise UserError("transfer.freeze and transfer.discriminative need pretrained weights",
                            "transfer.init_from", "pass --init-from RUN_DIR (or a .safetensors file)")
        return None, None, None
    state, classes = load_pretrained(t.init_from)
    new_head = classes is not None and classes != prepared.class_names
    report = transfer_weights(model, state, new_head=new_head)
    groups = layer_groups(model)
    names = [n for n, _ in groups]
    n_frozen = frozen_count(t.freeze, names)
    unfreezer = Unfreezer(groups, n_frozen, unfreeze_at=t.unfreeze_at, gradual=t.gradual) if n_frozen else None
    scales = discriminative_scales(groups, t.discriminative) if t.discriminative != 1.0 else {}
    # base_lr carries lr_factor for the pretrained tensors; new ones (the head) train at the full LR
    matched = set(report["matched"])
    for name, p in model.named_parameters():
        if name not in matched:
            scales[id(p)] = scales.get(id(p), 1.0) / t.lr_factor
    scales = scales or None
    summary = {"source": str(t.init_from), "matched": len(report["matched"]), "new": report["new"],
               "skipped": report["skipped"], "groups": names, "frozen": names[:n_frozen],
               "lr_factor": t.lr_factor, "discriminative": t.discriminative}
    return summary, unfreezer, scales
