"""Build the pieces of a training run from a config: one path shared by `fit`, `doctor` and search.

Kept apart from the fit loop so every caller (a full fit, a 3-epoch search trial, the doctor's
checks) gets the same model, init, optimizer groups, schedule and clipping for the same config.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import Config, schedule_name
from nnrecipe.errors import UserError
from nnrecipe.models import build_model
from nnrecipe.training.callbacks import Callback
from nnrecipe.training.clipping import AutoClip, head_parameters
from nnrecipe.training.distributed import world_size_from_env
from nnrecipe.training.init import LEARNED, initialize
from nnrecipe.training.learned_init import finite_report, gradinit, metainit
from nnrecipe.training.loop import Trainer, call_model
from nnrecipe.training.optim import build_optimizer, default_lr
from nnrecipe.training.precision import CompiledForward, Precision, channels_last_forward, wants_channels_last
from nnrecipe.training.regularization import penalty
from nnrecipe.training.schedules import build_schedule

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()}
    if name not in available:
        raise UserError(f"unknown device '{name}'", "train.device", "use auto, cpu, cuda or mps")
    if not available[name]:
        raise UserError(f"device '{name}' is not available on this machine (torch {torch.__version__})",
                        "--device / train.device", "use --device auto or --device cpu")
    return torch.device(name)


def loss_function(task: str, label_smoothing: float = 0.0):
    """Cross-entropy (with label smoothing) for class logits [B, C] and for token logits [B, T, V],
    whose pad targets (id 0) are ignored; MSE for regression."""
    if task == "classification":
        def cross_entropy(logits, y):
            if logits.dim() == 3:
                return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=0,
                                       label_smoothing=label_smoothing)
            return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        return cross_entropy
    return lambda out, y: F.mse_loss(out.squeeze(-1), y)


FIT_ONLY_MODELS = ("word2vec", "autoencoder", "vae", "gan", "captioner")


def architecture(cfg: Config, *, input_shape: tuple[int, ...], out_features: int) -> dict:
    """The `architecture` block of model.json: everything `build_model` needs.

    `input_shape` is one input without the batch dimension: (D,) for vectors, (C, H, W) for images.
    """
    m = cfg.model
    if m.name in FIT_ONLY_MODELS:  # their own fit paths (word_vectors, generative) build them
        raise UserError(f"model '{m.name}' is trained and inspected by `nnrecipe fit` only", "model.name",
                        "run `nnrecipe fit --model " + m.name + "`; summary and doctor take classifier/regressor models")
    if m.name == "custom":  # the user's class, rebuilt by `nnrecipe.models.custom` on load
        return {"name": "custom", "class": m.class_path, "kwargs": dict(m.kwargs),
                "input_shape": list(input_shape), "out_features": out_features}
    if m.name == "mlp":
        return {"name": "mlp", "in_features": input_shape[0], "out_features": out_features,
                "hidden": list(m.hidden), "activation": m.activation, "negative_slope": m.negative_slope,
                "dropout": m.dropout, "norm": "none" if m.norm == "auto" else m.norm}
    spec = {"name": m.name, "in_channels": input_shape[0], "image_size": list(input_shape[1:]),
            "out_features": out_features, "activation": m.activation, "dropout": m.dropout,
            "norm": "batch" if m.norm == "auto" else m.norm}
    if m.name == "cnn":
        spec.update(channels=list(m.channels), convs_per_stage=m.convs_per_stage)
    elif m.name == "resnet":
        spec.update(widths=list(m.widths), blocks=list(m.blocks))
    elif m.name == "mobilenetv2":
        spec.update(width_mult=m.width_mult, last_channels=m.last_channels)
    elif m.name == "vit":
        spec.update(patch_size=m.patch_size, dim=m.dim, depth=m.depth, heads=m.heads, mlp_ratio=m.mlp_ratio)
    return spec


def make_model(cfg: Config, arch: dict, *, device: torch.device, init_batch: torch.Tensor,
               given: nn.Module | None = None) -> nn.Module:
    """Build `arch` (or take the user's instance `given`), move it to `device`, initialize it."""
    model = (given if given is not None else build_model(arch)).to(device)
    initialize(model, cfg.init, activation=cfg.model.activation, negative_slope=cfg.model.negative_slope,
               data=init_batch)
    return model


ADAM_FAMILY = ("adam", "adamw", "radam", "adam_hd")  # first step ≈ η·sign(g): GradInit's A[g], p = 1


def learn_init(cfg: Config, model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, loss: Callable) -> dict | None:
    """``init.name`` metainit / gradinit: learn the weight scales of `model` in place on the first
    ``init.learn_batches`` batches of (X, y) with the run's `loss`; their statistics (None for
    every other init)."""
    i = cfg.init
    if i.name not in LEARNED:
        return None
    B = cfg.train.batch_size
    batches = [(X[k:k + B], y[k:k + B]) for k in range(0, min(len(y), i.learn_batches * B), B)]
    batches = [b for b in batches if len(b[1]) > 1] or [(X, y)]  # BatchNorm in eval mode is fine; 1-row slices are not
    if i.name == "metainit":
        report = metainit(model, batches, loss, steps=i.learn_steps, lr=i.metainit_lr, momentum=i.metainit_momentum)
    else:
        report = gradinit(model, batches, loss, steps=i.learn_steps, step_lr=initial_lr(cfg), lr=i.gradinit_lr,
                          adam_step=cfg.optimizer.name in ADAM_FAMILY, gamma=i.gradinit_gamma,
                          min_scale=i.gradinit_min_scale)
    if not finite_report(report):
        raise UserError(f"{i.name} produced non-finite weight scales", "init.name",
                        f"use another init.base, or lower init.{i.name}_lr")
    logger.info("%s: %s %.4g -> %.4g in %d steps (scales %s)", i.name, report["objective"], report["before"],
                report["after"], report["steps"],
                ", ".join(f"{v:.3g}" for v in list(report["scales"].values())[:6])
                + (" ..." if len(report["scales"]) > 6 else ""))
    return report


@torch.no_grad()
def check_output_shape(model: nn.Module, xb: torch.Tensor, *, task: str, classes: list[str] | None) -> None:
    """A user's module must give [N, C] logits for C classes, [N, 1] or [N] for regression."""
    was_training = model.training
    model.eval()
    try:
        out = call_model(model, xb)
    except Exception as exc:  # the user's forward on the data's shape: say which shapes met
        raise UserError(f"the model fails on inputs of shape {list(xb.shape)} ({type(exc).__name__}: {exc})",
                        "model", "make forward() accept the data's shape [N, ...] as given") from None
    finally:
        model.train(was_training)
    n = len(xb)
    if task == "classification":
        ok, want = tuple(out.shape) == (n, len(classes)), f"[N, {len(classes)}] logits for {len(classes)} classes"
    else:
        ok, want = tuple(out.shape) in ((n,), (n, 1)), "[N, 1] (or [N]) for one regression target"
    if not ok:
        raise UserError(f"the model outputs shape {list(out.shape)} for {n} inputs, expected {want}", "model",
                        "make the last layer's width match the task (or pass task='regression')")


def initial_lr(cfg: Config) -> float:
    """η₀; with `train.scale_lr`, the linear scaling rule η₀·B/B_ref (Goyal et al. 2017), B = the rows
    per optimizer step = batch_size · accumulate · W processes (torchrun); when fine-tuning from
    pretrained weights, × ``transfer.lr_factor`` (1/10 by default)."""
    lr = cfg.optimizer.lr or default_lr(cfg.optimizer.name)
    if cfg.train.scale_lr:
        rows = cfg.train.batch_size * cfg.train.accumulate * world_size_from_env()
        lr *= rows / cfg.train.reference_batch_size
    if cfg.transfer.init_from:
        lr *= cfg.transfer.lr_factor
    return lr


def make_trainer(cfg: Config, model: nn.Module, *, task: str, train_rows: int,
                 callbacks: list[Callback], augment=None, lr_scales: dict[int, float] | None = None,
                 forward=None, loss=None, base_lr: float | None = None, batching=None) -> Trainer:
    """Optimizer (decay groups), per-iteration schedule, clipping and penalties for `model`; the
    speed options (`nnrecipe.training.precision`): precision, channels_last, torch.compile.
    `loss` (out, y) -> scalar replaces the task's loss (a user's own, e.g. ``nn.HuberLoss()``).
    `base_lr`: η₀ as the caller computed it (the driver, once per fit); default `initial_lr(cfg)`."""
    t = cfg.train
    steps_per_epoch = max(1, -(-train_rows // (t.batch_size * t.accumulate)))  # optimizer steps
    lr = base_lr if base_lr is not None else initial_lr(cfg)
    schedule = build_schedule(cfg.schedule.model_copy(update={"name": schedule_name(cfg)}), base_lr=lr,
                              total_steps=steps_per_epoch * cfg.train.epochs)
    reg = cfg.regularization
    device = next(model.parameters()).device
    precision = Precision.for_device(t.precision, device) if t.precision != "fp32" else None
    forward = forward or call_model
    if wants_channels_last(t.channels_last, model, device):
        model.to(memory_format=torch.channels_last)
        forward = channels_last_forward(forward)
    if t.compile:
        forward = CompiledForward(model, forward)
    if precision is not None and precision.scaler is not None:
        callbacks = [*callbacks, precision]  # a checkpoint saves the scaler's state
    autoclip = AutoClip(cfg.clip.percentile) if cfg.clip.name == "autoclip" else None
    if autoclip is not None:
        callbacks = [*callbacks, autoclip]  # a checkpoint saves the norm history
    return Trainer(model=model, loss_fn=loss or loss_function(task, reg.label_smoothing),
                   optimizer=build_optimizer(model, cfg.optimizer, lr_scales=lr_scales), schedule=schedule,
                   augment=augment, forward=forward, accumulate=t.accumulate, precision=precision,
                   classification=task == "classification", clip_mode=cfg.clip.name,
                   clip_threshold=cfg.clip.threshold, autoclip=autoclip,
                   clip_exempt=head_parameters(model) if cfg.clip.name == "agc" and cfg.clip.exempt_head else frozenset(),
                   penalty=(lambda m: penalty(m, l1=reg.l1, l2=reg.l2)) if reg.l1 or reg.l2 else None,
                   callbacks=callbacks, log_every=cfg.train.log_every, nan_policy=cfg.train.nan_policy,
                   batching=batching)
