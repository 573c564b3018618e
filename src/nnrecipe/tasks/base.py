"""The task contract: what varies between model families, and nothing else.

The driver (`nnrecipe.driver`) owns everything a fit shares: out-dir refusal, seeding, device,
the run directory and its INCOMPLETE commit, checkpoints and exact resume, torchrun, callbacks and
progress, the NaN/Inf guard, timing, the metrics header and ensembles. A task says only

    resolve(cfg)                   -> Config     what the data decides (text columns, tokenizer level)
    prepare(cfg, device, provided) -> data      splits, scalers, vocabularies (data.name names the run)
    build(cfg, data, member)       -> nn.Module  via `nnrecipe.models` or the user's module
    loop(cfg, model, data, member) -> Loop       what the driver's Trainer needs: tensors, forward,
                                                 loss or train step, the task's own callbacks
    evaluate(cfg, model, data, fitted, member) -> Evaluated   metrics, model.json content, predictions
    write(run, fitted, data, staging, cfg)       the run's files (default: `nnrecipe.rundir.write_run`)

in the spirit of Keras 3, where `fit` is generic and a model overrides `train_step` (the GAN's
`Loop.trainer` runs its two players' step on the same Trainer). A task whose
loop cannot be the Trainer's (word2vec's sparse SGD over generated pairs) sets `Loop.run`, and still
gets the driver's checkpoints (`EpochCheckpoints`), progress and divergence path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nnrecipe.config import Config
from nnrecipe.errors import TrainingDiverged
from nnrecipe.prepare import Provided
from nnrecipe.rundir import RunInProgress, write_run
from nnrecipe.run import Run, load_predictor
from nnrecipe.training.distributed import Distributed
from nnrecipe.training.loop import Trainer, call_model


@dataclass
class Member:
    """One model's training as the driver sets it up (an ensemble has K of them, seeds seed+i)."""
    cfg: Config
    device: torch.device
    seed: int
    base_lr: float  # η₀, computed once by the driver (`nnrecipe.training.setup.base_lr`)
    live: RunInProgress | None  # None on the ranks > 0 of a torchrun job: they neither write nor evaluate
    ctx: Distributed | None = None
    progress: bool = False
    label: str = ""  # " member 2/5" in the progress bar
    checkpoints: str | None = None  # an ensemble member's folder in checkpoints/
    provided: Provided = field(default_factory=Provided)
    fit: Callable | None = None  # the driver's `fit`, for a nested run (a generative model's judge classifier)

    @property
    def writes(self) -> bool:
        return self.live is not None


@dataclass
class Loop:
    """What a task hands the driver's loop. `train` / `val` are (inputs, targets); `loss_task`
    picks the default loss and accuracy ("classification": cross-entropy, "regression": MSE)."""
    train: tuple
    val: tuple | None
    loss_task: str = "classification"
    forward: Callable = call_model
    loss: Callable | None = None  # (output, target) -> scalar; replaces the loss_task's
    augment: Callable | None = None
    lr_scales: dict[int, float] | None = None
    callbacks: list = field(default_factory=list)  # the task's own (health, unfreezing, extra columns)
    columns: tuple[str, ...] | None = None  # history.csv columns when they differ from History's
    rows: int | None = None  # training rows per process, for the schedule's step count (default: all)
    health: object | None = None  # a `HealthMonitor`: its rows go to health.csv
    diagnose: str | None = None  # "classification" / "regression": the curves' verdict in metrics.json
    trainer: Callable | None = None  # (callbacks) -> Trainer when the task builds its own (a GAN's train step)
    batching: object | None = None  # token data: length buckets (`nnrecipe.training.buckets`)
    stats: Callable | None = None  # (epoch row) -> the progress bar's text, when the row's columns are the task's
    run: Callable | None = None  # (member, checkpoints, progress) -> Fitted: the task's own loop
    close: Callable | None = None  # called after the loop (a DataLoader's workers end there)
    model: nn.Module | None = None  # the module to train when the task wrapped `build`'s (PEFT adapters)
    extras: dict = field(default_factory=dict)  # the task's own per-member state, handed on to `evaluate`


@dataclass
class Fitted:
    """What the loop left: the trainer (None for a task's own loop), the history rows, the loop's
    logs ("epochs_run", "best_epoch"), a divergence (the run is still written), the seconds."""
    trainer: Trainer | None
    rows: list[dict]
    logs: dict
    diverged: TrainingDiverged | None
    train_seconds: float
    columns: tuple[str, ...] | None = None
    diagnose: str | None = None
    extras: dict = field(default_factory=dict)
    health_rows: list[dict] = field(default_factory=list)
    profile: dict | None = None  # train.profile: `StepProfiler.summary()` for metrics.json


@dataclass
class Evaluated:
    metrics: dict  # the task's part of metrics.json (the driver adds the header)
    info: dict  # model.json
    model: nn.Module  # what is saved (the trained model, on the CPU)
    predictions: str | None = None  # predictions.csv
    transform: object | None = None  # the input transform saved with the model


@dataclass
class Trained:
    """One finished member: its Run (no directory yet) and what the run directory needs."""
    run: Run
    fitted: Fitted


ONE_PROCESS = ("only classifier/regressor fits (tabular, image and sequence models, ensembles) train "
               "on several processes")  # the reason the one-process tasks give for refusing torchrun


class Task:
    """Defaults shared by the families; a family overrides what differs (module docstring)."""

    name = "task"
    data_parallel = True  # False: torchrun is refused by the driver, with `why_not_parallel`
    why_not_parallel = ""
    ensembles = False  # True: train.ensemble = K trains K members on one split
    augments_text = False  # True: augment.text (EDA) applies; the driver refuses it elsewhere
    profiles = True  # False: train.profile is refused (a loop of its own, not the Trainer's steps)
    learns_init = False  # True: init.name metainit/gradinit apply (the task runs `learn_init` with its loss)
    peft_and_adversarial = False  # True: peft.method / adversarial.method apply; the driver refuses them elsewhere
    # the commands that use a finished run of this task; the others are refused in one place
    # (`nnrecipe.tasks.open_run`) with `holds` (what the run is) and `instead` (what to run)
    commands: frozenset[str] = frozenset()
    holds = "model"
    instead = ""

    def resolve(self, cfg: Config) -> Config:
        """`cfg` with what this family infers from the data filled in (text columns, tokenizer level),
        so that config.yaml records the values used and a resumed run reads them back."""
        return cfg

    def check(self, cfg: Config) -> None:
        """Refuse what this family cannot do before anything is written (a `UserError`)."""

    def prepare(self, cfg: Config, device: torch.device, provided: Provided):
        raise NotImplementedError

    def build(self, cfg: Config, data, member: Member) -> nn.Module:
        raise NotImplementedError

    def loop(self, cfg: Config, model: nn.Module, data, member: Member) -> Loop:
        raise NotImplementedError

    def evaluate(self, cfg: Config, model: nn.Module, data, fitted: Fitted, member: Member) -> Evaluated:
        raise NotImplementedError

    def write(self, run: Run, fitted: Fitted, data, staging: Path, cfg: Config) -> None:
        write_run(run, fitted.rows, cfg, staging, health_rows=fitted.health_rows, columns=fitted.columns)

    def close(self, data) -> None:
        """Release what `prepare` opened (DataLoader workers of a lazy image folder)."""

    def load(self, run_dir: Path, info: dict, *, model: nn.Module | None = None) -> Run:
        """A finished run back from its directory (model.json already read into `info`)."""
        return load_predictor(run_dir, info, model=model)

    def predict(self, run: Run, source: str) -> str:
        """`nnrecipe predict`: CSV text of the run's predictions on `source`."""
        raise NotImplementedError

    def evaluate_source(self, run: Run, source: str) -> dict:
        """`nnrecipe evaluate`: the run's metrics on labelled data `source`."""
        raise NotImplementedError

    def rebuild_splits(self, run: Run, data: str | None) -> dict:
        """{"train"|"val"|"test": (inputs, targets)} of a finished run as `fit` encoded them, rebuilt
        from its config (`data`: a labelled source replacing the validation split), for the
        commands that measure a run again (`nnrecipe compress`)."""
        raise NotImplementedError

    def write_ensemble(self, members: list[Trained], data, live: RunInProgress, cfg: Config) -> Run:
        raise NotImplementedError
