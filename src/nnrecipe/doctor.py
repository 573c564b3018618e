"""`doctor`: the practitioner's tuning recipe, run end to end on one data set and config.

1. initial loss vs its expectation (ln C / Var(y)), 2. activation statistics at init, 3. overfit a
small sample, 4. LR range test, 5. coarse LR × weight-decay search (Optuna, SQLite in the run
directory), 6. curve diagnosis of the best trial, 7. sharpness: λmax of the training loss's Hessian
at init on the step-1 batch (`nnrecipe.recipe.curvature`), with a note when λmax·η > 2 at the best
LR η, past gradient descent's stability threshold η < 2/λmax. Writes ``doctor.json``, ``best.yaml``,
``study.db`` and ``plots/lr_finder.png`` into a run directory (assembled in a temporary directory
and moved into place when complete, like `fit`).
"""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime
from pathlib import Path

import torch

from nnrecipe.config import Config, build_config, config_to_dict, flag_overrides, merge, resolve_config
from nnrecipe.errors import UserError
from nnrecipe.prepare import GivenData, prepare_for, prepare_lazy, provided_inputs, to_streams, to_tensors
from nnrecipe.rundir import atomic_dir, require_empty_out
from nnrecipe.recipe.activations import activation_stats, summarize_activations
from nnrecipe.recipe.curvature import sharpness
from nnrecipe.recipe.diagnosis import diagnose_history
from nnrecipe.recipe.initial_loss import initial_loss_check
from nnrecipe.recipe.lr_finder import lr_range_test, plot_lr_finder
from nnrecipe.recipe.overfit import overfit_small
from nnrecipe.recipe.search import coarse_search, write_best_yaml
from nnrecipe.training.callbacks import Callback, EarlyStopping, History
from nnrecipe.training.data_loading import DatasetBatches, close_streams
from nnrecipe.training.optim import build_optimizer
from nnrecipe.training.setup import (architecture, initial_lr, loss_function, make_model, make_trainer,
                                     pick_device, seed_everything)

LR_TEST_DECAY = 1e-4  # the LR range test's weight decay when the config has none


class _ReportEpochs(Callback):
    """Feeds each epoch's validation loss to Optuna's pruner (via the search's `report`)."""

    def __init__(self, report):
        self.report = report

    def on_epoch_end(self, trainer, logs):
        self.report(logs["epoch"], logs["val_loss"])


def lr_test_decay(cfg: Config) -> float:
    """The weight decay of the LR range test: the configured one, or `LR_TEST_DECAY` when that is 0.
    Karpathy's recipe runs the search with "a small weight decay" on: without it the loss can fall
    further at a high LR than it would in the real run, which has decay (AdamW's default 0.05)."""
    return cfg.optimizer.weight_decay or LR_TEST_DECAY


def _no_regularization(cfg: Config) -> Config:
    tree = merge(config_to_dict(cfg), {"model": {"dropout": 0.0}, "optimizer": {"weight_decay": 0.0},
                                       "regularization": {"l1": 0.0, "l2": 0.0, "label_smoothing": 0.0}})
    return build_config(tree)


def run_doctor(cfg: Config, *, out: str | Path | None = None, storage: str | None = None,
               search_epochs: int = 3, given: GivenData | None = None,
               module: torch.nn.Module | None = None) -> dict:
    """Run the six steps; return the doctor.json content (with ``dir`` set to the run directory).
    Nothing is printed: `nnrecipe doctor` prints its lines from this report (cli/summaries.py).

    `given`: data in memory instead of ``cfg.data.source``; `module`: the user's model, every
    step and trial starting from a copy of it."""
    started = time.perf_counter()
    final = Path(out) if out else Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.data.source.replace(':', '-')}-doctor"
    require_empty_out(final)
    seed_everything(cfg.train.seed)
    data = prepare_lazy(cfg) if cfg.data.lazy else prepare_for(cfg, given)
    device = pick_device(cfg.train.device)
    tensors = to_streams(data, cfg.train, device) if cfg.data.lazy else to_tensors(data, device)
    try:
        return _steps(cfg, data, tensors, device, final, storage=storage, search_epochs=search_epochs,
                      started=started, module=module)
    finally:
        close_streams(tensors)  # data.lazy: the DataLoader workers end here


def _steps(cfg: Config, data, tensors: dict, device, final: Path, *, storage, search_epochs: int,
           started: float, module: torch.nn.Module | None = None) -> dict:
    """The six steps on prepared tensors (or, for data.lazy, `DatasetBatches` that index like them)."""
    classification = data.task == "classification"
    X = {k: pair[0] for k, pair in tensors.items()}
    y = {k: pair[1] for k, pair in tensors.items()}
    classes = len(data.class_names) if classification else None
    arch = architecture(cfg, input_shape=data.input_shape, out_features=classes or 1)
    plain = _no_regularization(cfg)
    batch = slice(0, min(len(X["train"]), max(cfg.train.batch_size, 256)))

    def fresh_model(trial_cfg: Config = plain):  # a user's module: every step and trial starts from a copy
        return make_model(trial_cfg, arch, device=device, init_batch=X["train"][batch],
                          given=copy.deepcopy(module) if module is not None else None)

    report: dict = {"task": data.task, "data": data.name}
    model = fresh_model()
    report["initial_loss"] = initial_loss_check(model, X["train"][batch], y["train"][batch], task=data.task,
                                                num_classes=classes)
    at_init = sharpness(model, loss_function(data.task), X["train"][batch], y["train"][batch], seed=cfg.train.seed)
    stats = activation_stats(model, X["train"][batch], activation=cfg.model.activation)
    summary = summarize_activations(stats)
    report["activations"], report["activations_summary"] = stats, summary

    lr = initial_lr(cfg)
    report["overfit_small"] = overfit_small(fresh_model, X["train"], y["train"], task=data.task, lr=lr,
                                            seed=cfg.train.seed)

    model = fresh_model()
    decay = lr_test_decay(cfg)
    optimizer = build_optimizer(model, plain.optimizer.model_copy(update={"weight_decay": decay}))
    found = lr_range_test(model, optimizer, loss_function(data.task), X["train"], y["train"],
                          batch_size=cfg.train.batch_size, seed=cfg.train.seed)
    report["lr_find"] = {**found, "weight_decay": decay}
    suggested = found["suggested_lr"]

    with atomic_dir(final) as tmp:
        (tmp / "plots").mkdir()
        plot_lr_finder(found, tmp / "plots" / "lr_finder.png")
        histories: dict[tuple[float, float], list[dict]] = {}

        def train_trial(trial_cfg: Config, report_epoch) -> float:
            seed_everything(trial_cfg.train.seed)
            trial_model = fresh_model(trial_cfg)
            history, stopper = History(), EarlyStopping(patience=0)
            trainer = make_trainer(trial_cfg, trial_model, task=data.task, train_rows=len(X["train"]),
                                   callbacks=[history, stopper, _ReportEpochs(report_epoch)])
            try:
                lazy = isinstance(X["train"], DatasetBatches)  # the trainer reads a stream's own targets
                trainer.fit(X["train"], None if lazy else y["train"], X["val"], y["val"],
                            epochs=trial_cfg.train.epochs, batch_size=trial_cfg.train.batch_size,
                            generator=torch.Generator().manual_seed(trial_cfg.train.seed))
            finally:
                histories[(trial_cfg.optimizer.lr, trial_cfg.optimizer.weight_decay)] = history.rows
            return stopper.best

        lrs = [suggested / 3, suggested, suggested * 3]
        search = coarse_search(cfg, train_trial, lrs=lrs, epochs=search_epochs,
                               storage=storage or f"sqlite:///{(tmp / 'study.db').resolve()}",
                               seed=cfg.train.seed)
        best_cfg = build_config(search.pop("best_config"))
        write_best_yaml(best_cfg, tmp / "best.yaml")
        report["search"] = search
        best = search["best"]
        best_rows = histories.get((best["lr"], best["weight_decay"]), [])
        # The rows go into the report with the verdict: the curves it was read from.
        report["diagnosis"] = {**diagnose_history(best_rows, task=data.task), "history": best_rows}
        report["curvature"] = _sharpness_note(at_init, best["lr"], rows=batch.stop)
        report["seconds"] = time.perf_counter() - started
        if storage is None:  # the study moves with the directory: record its final place
            report["search"]["storage"] = f"sqlite:///{(final / 'study.db').resolve()}"
        (tmp / "doctor.json").write_text(json.dumps(report, indent=2, default=float))
    report["dir"] = str(final)
    return report


def _sharpness_note(at_init: dict, lr: float, *, rows: int) -> dict:
    """Step 7: λmax at init against the best LR (module docstring)."""
    product = at_init["lambda_max"] * lr
    note = (f"λmax·η = {product:.3g} > 2 at the best lr {lr:.3g}: plain gradient descent would diverge along the "
            f"sharpest direction (η > 2/λmax = {2 / at_init['lambda_max']:.3g}); warm-up, clipping and adaptive "
            "optimizers let training run at the edge of stability, but a smaller lr is the safe side"
            if product > 2 else None)
    return {"lambda_max": at_init["lambda_max"], "trace": at_init["trace"], "rows": rows, "hvps": at_init["hvps"],
            "lr": lr, "lambda_max_times_lr": product, "past_edge_of_stability": product > 2, "note": note}


def doctor(data=None, *, config=None, overrides: list[str] | None = None, target=None,
           task=None, seed: int | None = None, out=None, storage: str | None = None, search_epochs: int = 3,
           model: str | torch.nn.Module | None = None, val=None, test=None) -> dict:
    """API twin of `nnrecipe doctor`: same options as `fit` (data in memory and a user's
    ``nn.Module`` too: ``nnrecipe.doctor((X, y), model=MyNet())``) plus an Optuna `storage` URL and
    the epochs of each coarse-search trial (`search_epochs`, 1–5)."""
    if not 1 <= search_epochs <= 5:
        raise UserError(f"search_epochs must be 1..5, got {search_epochs}", "--search-epochs",
                        "a coarse search trains each trial briefly")
    provided, tree = provided_inputs(data, model=model, val=val, test=test)
    extra = flag_overrides(data=None if provided.data else data, target=target, task=task, seed=seed,
                           model=None if provided.model is not None else model)
    extra = merge(extra, tree)
    cfg = resolve_config(file=config, overrides=overrides, extra=extra)
    return run_doctor(cfg, out=out, storage=storage, search_epochs=search_epochs, given=provided.data,
                      module=provided.model)
