"""`fit`: data → model → init [→ pretrained weights] → training loop → temperature scaling →
evaluation → run directory.

A single model checkpoints into ``RUN/checkpoints/`` while it trains (every epoch, and every
``train.checkpoint_every_steps``); the directory is marked INCOMPLETE until its final files are in
(`nnrecipe.rundir.RunInProgress`), and `resume` continues it bit for bit. Ensembles write their
run directory atomically at the end (`nnrecipe.rundir`); with ``train.ensemble = K > 1``, K
members share one split and differ in seed (init, dropout, batch order), see `nnrecipe.ensemble`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from nnrecipe.config import Config, config_to_dict, flag_overrides, is_sequence_run, merge, resolve_config
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.evaluation import calibrate, classification_split, predictions_csv
from nnrecipe.metrics import regression_metrics
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.data.augment import make_augmenter
from nnrecipe.prepare import Prepared, Provided, prepare_for, prepare_lazy, provided_inputs, to_streams, to_tensors
from nnrecipe.recipe.diagnosis import diagnose_history
from nnrecipe.recipe.health import HealthMonitor
from nnrecipe.ensemble import write_ensemble
from nnrecipe.rundir import RunInProgress, check_resumable, open_checkpointer, require_empty_out, run_dir_name
from nnrecipe.run import Run
from nnrecipe.seqfit import fit_sequences
from nnrecipe.training.callbacks import EarlyStopping, History, ProgressBar
from nnrecipe.training.distributed import (Distributed, attach as attach_distributed, join as join_distributed,
                                           teardown as teardown_distributed)
from nnrecipe.training.loop import predict_logits
from nnrecipe.training.tensorboard import TensorBoardLogger
from nnrecipe.training.data_loading import close_streams, first_rows, training_data
from nnrecipe.training.precision import compile_status
from nnrecipe.training.setup import (architecture, base_lr, check_output_shape, make_model, make_trainer,
                                     pick_device, seed_everything)
from nnrecipe.post.adversarial import adversarial_augmenter, robust_report
from nnrecipe.training.peft import setup_peft
from nnrecipe.training.transfer import (Unfreezer, discriminative_scales, frozen_count, layer_groups,
                                        load_pretrained, transfer_weights)


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


def fit(data=None, *, config: Config | dict | str | Path | None = None,
        overrides: list[str] | None = None, target: str | None = None, task: str | None = None,
        test_data: str | None = None, epochs: int | None = None, seed: int | None = None,
        model: str | nn.Module | None = None, init_from: str | Path | None = None,
        out: str | Path | None = None, progress: bool = False, resume: str | Path | None = None,
        val=None, test=None, loss: Callable | None = None, model_class: str | None = None,
        model_kwargs: dict | None = None, standardize: bool | None = None) -> Run:
    """Train on `data` and write a run directory; return the loaded `Run`.

    `data` is a source (a bundled name, a .csv/.npz path, an image folder, ``seq:TASK``) or data
    in memory: ``(X, y)`` arrays or tensors of any shape [N, ...], a ``torch.utils.data.Dataset``
    yielding ``(x, y)``, or a DataLoader (`nnrecipe.data.arrays`); `val` / `test` likewise replace
    the validation / test split. `model` is a built-in name or the user's own ``nn.Module``
    (recorded in model.json as ``module:Class`` with `model_kwargs`; `model_class` names such a
    class instead of passing an instance); `loss` (output, target) -> scalar replaces the task's
    loss. `config` is a `Config`, a nested dict, or a YAML path; keyword options and `overrides`
    (``"optimizer.lr=3e-4"``) are applied on top of it. ``resume=RUN_DIR`` continues an
    interrupted fit instead (see `resume`). `progress`: a live progress bar, and what happens while
    training (health warnings, word2vec epoch lines) logged on the ``nnrecipe`` logger, which
    `nnrecipe fit` prints on stderr (in a program: ``logging.basicConfig(level=logging.INFO)``).
    """
    provided, tree = provided_inputs(data, model=model, val=val, test=test, loss=loss)
    if resume is not None:
        given = [name for name, value in (("data", None if provided.data else data), ("config", config),
                                          ("overrides", overrides),
                                          ("target", target), ("task", task), ("test_data", test_data),
                                          ("epochs", epochs), ("seed", seed),
                                          ("model", None if provided.model is not None else model),
                                          ("init_from", init_from), ("out", out)) if value not in (None, [])]
        if given:
            raise UserError(f"a resumed run keeps its own configuration, got {', '.join(given)}", "resume",
                            f"drop {', '.join(given)} (the run's config.yaml is used), or start a new run")
        return _resume(resume, progress=progress, provided=provided)
    extra = flag_overrides(data=None if provided.data else data, target=target, task=task, test_data=test_data,
                           epochs=epochs, seed=seed, model=None if provided.model is not None else model,
                           init_from=str(init_from) if init_from else None, model_class=model_class,
                           model_kwargs=model_kwargs, standardize=standardize)
    cfg = resolve_config(file=config, overrides=overrides, extra=merge(extra, tree))
    return _fit(cfg, out=out, progress=progress, provided=provided)


@dataclass
class _Trained:
    run: Run
    history: list[dict]
    health: list[dict]
    diverged: TrainingDiverged | None


def resume(run_dir: str | Path, *, progress: bool = False, data=None, model: nn.Module | None = None,
           val=None, test=None, loss: Callable | None = None) -> Run:
    """Continue an interrupted `fit` from its last checkpoint in ``run_dir/checkpoints``, with the
    configuration in ``run_dir/config.yaml``; on the CPU the result is bit for bit the run that
    was not interrupted (ensembles and sequence runs too). A run trained on data in memory needs
    the same `data` (`val`, `test`), `model` instance and `loss` again."""
    provided, _ = provided_inputs(data, model=model, val=val, test=test, loss=loss)
    return _resume(run_dir, progress=progress, provided=provided)


def _resume(run_dir: str | Path, *, progress: bool, provided: Provided | None = None) -> Run:
    run_dir = check_resumable(run_dir)
    cfg = resolve_config(file=run_dir / "config.yaml")
    return _fit(cfg, out=run_dir, progress=progress, resume=True, provided=provided)


def _fit(cfg: Config, *, out, progress: bool, resume: bool = False, provided: Provided | None = None) -> Run:
    provided = provided or Provided()
    ctx, resume = join_distributed(cfg, out=out, resume=resume)  # (None, resume) unless torchrun runs several
    main_process = ctx is None or ctx.rank == 0  # the only one that writes or logs
    progress = progress and main_process
    if cfg.data.lazy and (cfg.model.name in ("autoencoder", "vae", "gan", "word2vec") or is_sequence_run(cfg)):
        raise UserError(f"data.lazy streams image folders for classifiers; model '{cfg.model.name}' reads its "
                        "data in memory", "data.lazy", "drop --set data.lazy=true")
    if cfg.model.name in ("autoencoder", "vae", "gan"):
        from nnrecipe.genfit import fit_generative
        return fit_generative(cfg, out=out, progress=progress, resume=resume)
    if cfg.model.name == "word2vec":
        from nnrecipe.w2vfit import fit_word2vec
        return fit_word2vec(cfg, out=out, progress=progress, resume=resume)
    if is_sequence_run(cfg):
        if cfg.peft.method != "none" or cfg.adversarial.method != "none":  # fit_sequences has neither
            raise UserError("peft and adversarial training are for tabular and image models", "peft/adversarial",
                            "drop --peft/--adversarial for sequence models")
        return fit_sequences(cfg, out=out, progress=progress, resume=resume, ctx=ctx)
    started = time.perf_counter()
    if not resume and main_process:
        require_empty_out(out)
    seed_everything(cfg.train.seed)
    prepared = prepare_lazy(cfg) if cfg.data.lazy else prepare_for(cfg, provided.data)  # one split, shared by every member
    device = ctx.device if ctx is not None else pick_device(cfg.train.device)
    tensors = to_streams(prepared, cfg.train, device) if cfg.data.lazy else to_tensors(prepared, device)
    final = run_dir_name(out, cfg, prepared.name)
    final = ctx.broadcast_object(final) if ctx is not None else final  # rank 0's time-stamped name
    if cfg.train.ensemble == 1:
        # the directory is created (or taken over) when training starts
        with RunInProgress(final, cfg, resume=resume) as live:
            try:
                one = _train_one(cfg, prepared, tensors, device, seed=cfg.train.seed, progress=progress,
                                 provided=provided,
                                 started=started, live=live if main_process else None, ctx=ctx)
                one.run.dir = live.finish(one.run, one.history, health_rows=one.health) if main_process else final
            finally:
                close_streams(tensors)  # data.lazy: DataLoader workers end with the fit
        teardown_distributed(ctx)  # every rank waits until rank 0 has committed the run
        if one.diverged is not None:
            one.diverged.run_dir = one.run.dir
            raise one.diverged
        return one.run
    with RunInProgress(final, cfg, resume=resume) as live:  # member i checkpoints into checkpoints/member-i
        members = []
        for i in range(cfg.train.ensemble):  # under torchrun, every member trains data-parallel in turn
            member = _train_one(cfg, prepared, tensors, device, seed=cfg.train.seed + i, progress=progress,
                                # member 0 trains the caller's instance, the others fresh ones of its class
                                provided=provided if i == 0 else Provided(loss=provided.loss),
                                started=time.perf_counter(), label=f" member {i + 1}/{cfg.train.ensemble}",
                                live=live if main_process else None, ctx=ctx, checkpoints=f"member-{i}")
            if member.diverged is not None:
                raise member.diverged
            members.append(member)
        seconds = sum(m.run.metrics["train_seconds"] for m in members)  # earlier processes' time included
        run = (write_ensemble(members, prepared, tensors, cfg, live, train_seconds=seconds)
               if main_process else Run(dir=final, model=None, info={}, metrics={}, config=config_to_dict(cfg)))
    teardown_distributed(ctx)  # every rank waits until rank 0 has committed the run
    return run


def _train_one(cfg: Config, prepared: Prepared, tensors: dict, device: torch.device, *, seed: int,
               progress: bool, started: float, label: str = "", live: RunInProgress | None = None,
               ctx: Distributed | None = None, checkpoints: str | None = None,
               provided: Provided = Provided()) -> _Trained:
    """Init → train → calibrate → evaluate one model (seed drives init, dropout and batch order).

    With `live`, the run directory appears when training starts and gets checkpoints (resumed
    from its last one when `live.resume`), in checkpoints/`checkpoints` when given."""
    seed_everything(seed)
    classification = prepared.task == "classification"
    arch = architecture(cfg, input_shape=prepared.input_shape,
                        out_features=len(prepared.class_names) if classification else 1)
    X_train, y_train = tensors["train"]
    model = make_model(cfg, arch, device=device, init_batch=first_rows(X_train, cfg.train.batch_size),
                       given=provided.model)
    if cfg.model.name == "custom":
        check_output_shape(model, first_rows(X_train, 2), task=prepared.task, classes=prepared.class_names)
    transfer, unfreezer, lr_scales = _transfer(cfg, model, prepared)
    model, peft, lr_scales = setup_peft(model, cfg, transfer, lr_scales)  # unchanged when peft.method is none
    history = History()
    health = HealthMonitor(every=cfg.train.log_every, log=progress)  # warnings logged while progress is shown
    callbacks = [history, EarlyStopping(patience=cfg.train.patience, min_delta=cfg.train.min_delta,
                                             restore_best=cfg.train.restore_best), health]
    if unfreezer is not None:
        callbacks.append(unfreezer)
    if progress:
        callbacks.append(ProgressBar(cfg.train.epochs, description=f"fit {prepared.name}{label}"))
    augment = (make_augmenter(cfg.augment, num_classes=len(prepared.class_names) if classification else None)
               if cfg.augment.enabled and len(prepared.input_shape) == 3 else None)
    # per process: ceil(ceil(n/W)/B) = ceil(n/(B·W)) steps per epoch, the global batch's count
    rows = -(-len(X_train) // ctx.world_size) if ctx is not None else len(X_train)
    trainer = make_trainer(cfg, model, task=prepared.task, train_rows=rows, callbacks=callbacks,
                           augment=adversarial_augmenter(cfg.adversarial, model, transform=prepared.transform,
                                                         data_name=prepared.name, task=prepared.task,
                                                         device=device, base=augment),
                           lr_scales=lr_scales, loss=provided.loss)
    generator = torch.Generator().manual_seed(seed)
    if cfg.train.tensorboard and live is not None:  # the main process only
        trainer.callbacks.append(TensorBoardLogger(live.final / "tensorboard" / (checkpoints or ""), health=health,
                                                   config_text=yaml.safe_dump(config_to_dict(cfg), sort_keys=False)))
    checkpointer = open_checkpointer(cfg, live, subdir=checkpoints) if live is not None else None
    if checkpointer is not None:
        trainer.callbacks.append(checkpointer)
    if ctx is not None:  # torchrun: DDP, sharded batches, rank 0's checkpoint on every rank
        attach_distributed(trainer, ctx, checkpointer, checkpoint_every_steps=cfg.train.checkpoint_every_steps)
    diverged = None
    train_data = training_data(cfg.train, X_train, y_train, device=device)
    try:
        logs = trainer.fit(*train_data, *tensors["val"], epochs=cfg.train.epochs,
                           batch_size=cfg.train.batch_size, generator=generator)
    except TrainingDiverged as exc:
        diverged, logs = exc, {"epochs_run": exc.epoch, "best_epoch": callbacks[1].best_epoch}
    finally:
        if train_data[0] is not X_train:  # train.loader=dataloader: its workers end here
            close_streams({"train": train_data})
    train_seconds = time.perf_counter() - started + (checkpointer.elapsed_before if checkpointer else 0.0)

    calibration = calibrate(model, *tensors["val"], cfg) if classification else None
    temperature = calibration["temperature"] if calibration else 1.0
    bins = cfg.calibration.ece_bins
    metrics = {"task": prepared.task,
               "test": _evaluate_split(model, *tensors["test"], prepared, "test", temperature, bins),
               "val": _evaluate_split(model, *tensors["val"], prepared, "val", temperature, bins),
               "calibration": calibration, "epochs_run": logs["epochs_run"],
               "best_epoch": logs.get("best_epoch", 0), "train_seconds": train_seconds,
               "status": "ok" if diverged is None else f"diverged: {diverged}",
               "diagnosis": diagnose_history(history.rows, task=prepared.task),
               "lr": base_lr(cfg), "skipped_steps": trainer.skipped_steps, "seed": seed,
               "health_warnings": health.warnings, "skipped_images": prepared.skipped,
               "augmented": augment is not None, "compile": compile_status(trainer.forward),
               "split_sizes": {split: len(tensors[split][1]) for split in ("train", "val", "test")}}
    if transfer is not None:
        transfer["events"] = unfreezer.events if unfreezer is not None else []
        metrics["transfer"] = transfer
    if peft is not None:
        metrics["peft"] = peft
    if cfg.adversarial.method != "none":
        metrics["adversarial"] = robust_report(cfg.adversarial, model, *tensors["test"], transform=prepared.transform,
                                               data_name=prepared.name, clean_accuracy=metrics["test"]["accuracy"])
    info = {"task": prepared.task, "architecture": arch, "feature_names": prepared.feature_names,
            "target_name": prepared.target_name, "class_names": prepared.class_names,
            "temperature": temperature, "transform": prepared.transform.to_json(),
            "target_scaler": prepared.target_scaler.to_dict() if prepared.target_scaler else None,
            "data": prepared.name}
    if peft is not None:
        info["peft"] = peft  # save_model then writes adapter.safetensors with a reference to the base
    predictions = _test_predictions(model, *tensors["test"], prepared, temperature)
    run = Run(dir=None, model=model.cpu().eval(), info=info, metrics=metrics, config=config_to_dict(cfg),
              transform=prepared.transform, predictions=predictions)
    return _Trained(run, history.rows, health.rows, diverged)


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
