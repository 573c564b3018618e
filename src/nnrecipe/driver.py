"""`fit` and `resume`: the one driver every model family trains through.

What varies between families is a task (`nnrecipe.tasks`, found from the config by
`nnrecipe.tasks.task_for_config`); everything else happens here, once, top to bottom:

    refuse what the task cannot do → what the data decides (task.resolve) → join torchrun (or refuse it, with the task's reason) →
    refuse a non-empty --out → seed → device → η₀ → task.prepare → the run directory appears
    (``INCOMPLETE``, locked) → per member: seed, task.build, task.loop, the Trainer with History,
    early stopping, progress, TensorBoard, the step profiler, checkpoints (exact resume), DDP → task.evaluate →
    the metrics header → the final files and the commit (the marker's deletion) → a divergence
    is raised only after the last good weights are committed (the CLI exits 3).

An ensemble (``train.ensemble = K``) is this driver training the task K times on one split, seeds
seed…seed+K−1, each member checkpointing into ``checkpoints/member-i``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch import nn

from nnrecipe.config import Config, config_to_dict, flag_overrides, merge, resolve_config
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.prepare import Provided, provided_inputs
from nnrecipe.recipe.diagnosis import diagnose_history
from nnrecipe.rundir import (EpochCheckpoints, RunInProgress, check_resumable, open_checkpointer,
                             require_empty_out, run_dir_name)
from nnrecipe.run import Run
from nnrecipe.tasks import task_for_config
from nnrecipe.tasks.base import Fitted, Member, Task, Trained
from nnrecipe.tasks.text_augmentation import refuse_text_augmentation
from nnrecipe.training.callbacks import EarlyStopping, History, ProgressBar
from nnrecipe.training.distributed import (attach as attach_distributed, join as join_distributed,
                                           teardown as teardown_distributed, world_size_from_env)
from nnrecipe.training.init import LEARNED
from nnrecipe.training.profiling import StepProfiler
from nnrecipe.training.setup import initial_lr, make_trainer, pick_device, seed_everything
from nnrecipe.training.tensorboard import TensorBoardLogger


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
    interrupted fit instead (see `resume`).
    """
    provided, tree = provided_inputs(data, model=model, val=val, test=test, loss=loss)
    if resume is not None:
        given = [name for name, value in (("data", None if provided.data else data), ("config", config),
                                          ("overrides", overrides), ("target", target), ("task", task),
                                          ("test_data", test_data), ("epochs", epochs), ("seed", seed),
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
    return fit_config(cfg, out=out, progress=progress, provided=provided)


def resume(run_dir: str | Path, *, progress: bool = False, data=None, model: nn.Module | None = None,
           val=None, test=None, loss: Callable | None = None) -> Run:
    """Continue an interrupted `fit` from its last checkpoint in ``run_dir/checkpoints``, with the
    configuration in ``run_dir/config.yaml``; on the CPU the result is bit for bit the run that
    was not interrupted. A run trained on data in memory needs the same `data` (`val`, `test`),
    `model` instance and `loss` again."""
    provided, _ = provided_inputs(data, model=model, val=val, test=test, loss=loss)
    return _resume(run_dir, progress=progress, provided=provided)


def _resume(run_dir: str | Path, *, progress: bool, provided: Provided) -> Run:
    run_dir = check_resumable(run_dir)
    cfg = resolve_config(file=run_dir / "config.yaml")
    return fit_config(cfg, out=run_dir, progress=progress, resume=True, provided=provided)


def fit_config(cfg: Config, *, out, progress: bool, resume: bool = False,
               provided: Provided | None = None) -> Run:
    """Train the task `cfg` describes into `out` (module docstring: the order of events)."""
    provided = provided or Provided()
    task = task_for_config(cfg)
    if not task.peft_and_adversarial and (cfg.peft.method != "none" or cfg.adversarial.method != "none"):
        raise UserError(f"peft and adversarial training are for tabular and image models, not {task.name}",
                        "peft/adversarial", f"drop --peft/--adversarial for {task.name} models")
    task.check(cfg)
    cfg = task.resolve(cfg)
    if not task.augments_text:
        refuse_text_augmentation(cfg, task.name)
    if cfg.train.curvature_every and ("curvature" not in task.commands or cfg.data.lazy):
        raise UserError(f"train.curvature_every measures the Hessian of in-memory tabular/image fits, not {task.name}"
                        + (" (data.lazy)" if cfg.data.lazy else ""), "train.curvature_every",
                        "set it to 0, or fit a tabular/image model on in-memory data")
    if cfg.train.profile != "off" and not task.profiles:
        raise UserError(f"train.profile times the Trainer's steps; {task.name} trains with a loop of its own",
                        "train.profile", "drop --profile (the run's metrics.json still has train_seconds)")
    if cfg.init.name in LEARNED and (not task.learns_init or cfg.data.lazy):
        raise UserError(f"init.name {cfg.init.name} learns weight scales for in-memory tabular/image fits, not "
                        + ("data.lazy" if task.learns_init else task.name), "init.name",
                        "use init.name=lsuv (data-driven, no targets needed) or the default auto")
    if cfg.train.ensemble > 1 and not task.ensembles:
        raise UserError(f"ensembles of {task.name} models are not supported", "train.ensemble", "use 1")
    if world_size_from_env() > 1 and not task.data_parallel:
        raise UserError(task.why_not_parallel, "torchrun", f"train {task.name} models on one process")
    device = pick_device(cfg.train.device)
    ctx, resume = join_distributed(cfg, out=out, resume=resume, device=device)  # (None, resume): one process
    device = ctx.device if ctx is not None else device
    main_process = ctx is None or ctx.rank == 0  # the only one that writes or logs
    started = time.perf_counter()
    if not resume and main_process:
        require_empty_out(out)
    seed_everything(cfg.train.seed)
    data = task.prepare(cfg, device, provided)  # one split, shared by every member
    final = run_dir_name(out, cfg, data.name)
    final = ctx.broadcast_object(final) if ctx is not None else final  # rank 0's time-stamped name
    lr = initial_lr(cfg)
    members: list[Trained] = []
    with RunInProgress(final, cfg, resume=resume) as live:  # created (or taken over) when training starts
        try:
            for i in range(cfg.train.ensemble):  # under torchrun, every member trains data-parallel in turn
                single = cfg.train.ensemble == 1
                member = Member(cfg=cfg, device=device, seed=cfg.train.seed + i, base_lr=lr,
                                live=live if main_process else None, ctx=ctx, progress=progress and main_process,
                                label="" if single else f" member {i + 1}/{cfg.train.ensemble}",
                                checkpoints=None if single else f"member-{i}",
                                # member 0 trains the caller's instance, the others fresh ones of its class
                                provided=provided if i == 0 else Provided(loss=provided.loss), fit=fit)
                members.append(_train_member(task, data, member, started=started if i == 0 else time.perf_counter()))
                if not single and members[-1].fitted.diverged is not None:
                    raise members[-1].fitted.diverged
        finally:
            task.close(data)
        run = _commit(task, members, data, live, cfg) if main_process else Run(
            dir=final, model=None, info={}, metrics={}, config=config_to_dict(cfg))
    teardown_distributed(ctx)  # every rank waits until rank 0 has committed the run
    diverged = members[0].fitted.diverged
    if diverged is not None:
        diverged.run_dir = run.dir  # holds the last good weights
        raise diverged
    return run


def _commit(task: Task, members: list[Trained], data, live: RunInProgress, cfg: Config) -> Run:
    if len(members) > 1:
        return task.write_ensemble(members, data, live, cfg)
    one = members[0]
    one.run.dir = live.commit(lambda staging: task.write(one.run, one.fitted, data, staging, cfg))
    return one.run


def _train_member(task: Task, data, member: Member, *, started: float) -> Trained:
    """Build → train → evaluate one model (its seed drives init, dropout and batch order)."""
    cfg = member.cfg
    seed_everything(member.seed)
    model = task.build(cfg, data, member)
    loop = task.loop(cfg, model, data, member)
    model = loop.model if loop.model is not None else model
    fitted = (loop.run(member, EpochCheckpoints(cfg, member.live) if member.writes else None, member.progress)
              if loop.run is not None else _fit_trainer(cfg, model, loop, member, name=data.name))
    fitted.train_seconds += time.perf_counter() - started
    model.eval()
    if not member.writes:  # another rank writes the run
        return Trained(Run(dir=None, model=model, info={}, metrics={}, config=config_to_dict(cfg)), fitted)
    result = task.evaluate(cfg, model, data, fitted, member)
    d = fitted.diverged
    header = {"epochs_run": fitted.logs["epochs_run"], "best_epoch": fitted.logs.get("best_epoch", 0),
              "train_seconds": fitted.train_seconds, "seed": member.seed, "lr": member.base_lr,
              "status": "ok" if d is None else f"diverged: {d}"}
    if fitted.diagnose is not None:  # the curves' verdict (`nnrecipe.recipe.diagnosis`)
        header["diagnosis"] = diagnose_history(fitted.rows, task=fitted.diagnose)
    if fitted.profile is not None:
        header["profile"] = fitted.profile
    run = Run(dir=None, model=result.model, info=result.info, metrics={**header, **result.metrics},
              config=config_to_dict(cfg), transform=result.transform, predictions=result.predictions)
    return Trained(run, fitted)


def _fit_trainer(cfg: Config, model: nn.Module, loop, member: Member, *, name: str) -> Fitted:
    """The Trainer with the driver's callbacks (history, early stopping, progress, TensorBoard,
    checkpoints) and, under torchrun, DDP; a divergence is caught and handed on with the weights."""
    t = cfg.train
    history = History()
    if loop.columns is not None:
        history.columns = loop.columns
    stopper = EarlyStopping(patience=t.patience, min_delta=t.min_delta, restore_best=t.restore_best)
    callbacks = [history, stopper, *([loop.health] if loop.health is not None else []), *loop.callbacks]
    if member.progress:
        callbacks.append(ProgressBar(t.epochs, description=f"fit {name}{member.label}", stats=loop.stats))
    X, y = loop.train
    rows = loop.rows if loop.rows is not None else len(y)
    if member.ctx is not None:  # per process: ceil(n/W) rows, so the schedule counts the global batches
        rows = -(-rows // member.ctx.world_size)
    trainer = loop.trainer(callbacks) if loop.trainer is not None else make_trainer(
        cfg, model, task=loop.loss_task, train_rows=rows, callbacks=callbacks, augment=loop.augment,
        lr_scales=loop.lr_scales, forward=loop.forward, loss=loop.loss, base_lr=member.base_lr,
        batching=loop.batching)
    if t.tensorboard and member.writes:
        trainer.callbacks.append(TensorBoardLogger(member.live.final / "tensorboard" / (member.checkpoints or ""),
                                                   health=loop.health, config_text=yaml.safe_dump(
                                                       config_to_dict(cfg), sort_keys=False)))
    profiler = None
    if t.profile != "off":  # after the trainer's callbacks so far: the epoch row is closed last
        trace = member.live.final / "profile" / (member.checkpoints or "") if t.profile == "trace" and member.writes else None
        profiler = trainer.profiler = StepProfiler(device=member.device, trace_dir=trace)
        trainer.callbacks.append(profiler)
    checkpointer = open_checkpointer(cfg, member.live, subdir=member.checkpoints) if member.writes else None
    if checkpointer is not None:
        trainer.callbacks.append(checkpointer)
    if member.ctx is not None:  # torchrun: DDP, sharded batches, rank 0's checkpoint on every rank
        attach_distributed(trainer, member.ctx, checkpointer, checkpoint_every_steps=t.checkpoint_every_steps)
    diverged = None
    try:
        logs = trainer.fit(X, y, *(loop.val or (None, None)), epochs=t.epochs, batch_size=t.batch_size,
                           generator=torch.Generator().manual_seed(member.seed))
    except TrainingDiverged as exc:
        diverged, logs = exc, {"epochs_run": exc.epoch, "best_epoch": stopper.best_epoch}
    finally:
        if loop.close is not None:
            loop.close()
    return Fitted(trainer=trainer, rows=history.rows, logs=logs, diverged=diverged,
                  train_seconds=checkpointer.elapsed_before if checkpointer else 0.0,
                  columns=tuple(history.columns), diagnose=loop.diagnose, extras=loop.extras,
                  health_rows=loop.health.rows if loop.health is not None else [],
                  profile=profiler.summary() if profiler is not None else None)


__all__ = ["fit", "fit_config", "resume"]
