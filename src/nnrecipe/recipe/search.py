"""Coarse grid search over learning rate × weight decay with Optuna, pruned by the median rule.

Every (lr, weight_decay) pair of the grid is trained for a few epochs (``epochs``, short: the point
is to rank settings, not to finish training), and the pair with the lowest validation loss wins —
the "coarse" stage of coarse-to-fine search (Bergstra & Bengio 2012 argue random search beats a
grid in many dimensions; for two dimensions known to matter, LR on a log grid, a grid is fine).

- Sampler: `optuna.samplers.GridSampler` — enumerates the grid once, in a seeded shuffled order;
  several processes sharing ``storage`` split the grid between them and stop when it is exhausted.
- Pruner: `optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)` (Golovin et al.
  2017, Google Vizier's median stopping rule): from epoch 1 on, a trial whose reported validation
  loss is worse than the median of completed trials at the same epoch is stopped, once 3 trials
  have completed.
- A trial whose training diverges (`nnrecipe.errors.TrainingDiverged`: the loss became NaN/Inf)
  is *completed with value +inf* and a ``diverged`` user attribute: it is a legitimate result (that
  LR is too high) rather than an error, it never wins, and the search goes on. Any other exception
  fails the trial and propagates (a bug should not be averaged away).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import yaml

from nnrecipe.config import Config, build_config, config_to_dict, merge
from nnrecipe.errors import TrainingDiverged

TrainTrial = Callable[[Config, Callable[[int, float], None]], float]


def open_storage(storage: str | None):
    """An Optuna storage from a string: ``journal:PATH`` is a `JournalStorage` on a local file
    (append-only with file locks: the safe choice for several processes on one machine); any other
    string is an RDB URL (``sqlite:///study.db``, ``postgresql://user:pw@host/db`` for machines that
    share a study); None is in memory."""
    if storage and storage.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        return JournalStorage(JournalFileBackend(storage[len("journal:"):]))
    return storage


def _trial_row(trial: optuna.trial.FrozenTrial) -> dict:
    return {"number": trial.number, "lr": trial.params.get("lr"), "weight_decay": trial.params.get("weight_decay"),
            "value": trial.value, "state": trial.state.name, "diverged": bool(trial.user_attrs.get("diverged"))}


def coarse_search(base: Config, train_trial: TrainTrial, *, lrs: Sequence[float],
                  weight_decays: Sequence[float] = (1e-4, 1e-5, 0.0), epochs: int = 3,
                  storage: str | None = None, study_name: str = "coarse-search", seed: int = 0) -> dict:
    """Train every (lr, weight_decay) of the grid for `epochs` epochs; minimize the validation loss.

    ``train_trial(cfg, report)`` trains with `cfg` (the base config with the trial's
    ``optimizer.lr``, ``optimizer.weight_decay`` and ``train.epochs = epochs``), calls
    ``report(epoch, val_loss)`` after each epoch (it raises `optuna.TrialPruned` to stop a bad
    trial: let it propagate) and returns the trial's (final or best) validation loss.

    `storage` is any Optuna storage URL (``sqlite:///study.db``, a PostgreSQL URL, …) or
    ``journal:PATH`` (`open_storage`); an existing study of that name is resumed, so several
    processes or machines work on one grid (give every worker the same `seed`: the grid sampler
    numbers the grid points in a seed-shuffled order). None: in memory.

    Returns ``{"trials": [{number, lr, weight_decay, value, state, diverged}, …] (all trials of the
    study), "best": {lr, weight_decay, value} | None, "best_config": dict | None, "storage",
    "study_name"}``. ``best`` is the completed trial with the lowest finite value (None if there is
    none); ``best_config`` is the base config with that lr/wd and the base's own ``train.epochs``,
    as a plain dict (`config_to_dict`) for `write_best_yaml`.
    """
    lrs, weight_decays = [float(v) for v in lrs], [float(v) for v in weight_decays]
    if not lrs or not weight_decays:
        raise ValueError("coarse_search needs at least one lr and one weight_decay")
    base_tree = config_to_dict(base)

    def objective(trial: optuna.Trial) -> float:
        # The grid sampler picks the values; the distributions only need to contain them.
        lr = trial.suggest_float("lr", min(lrs), max(lrs))
        wd = trial.suggest_float("weight_decay", min(weight_decays), max(weight_decays))
        cfg = build_config(merge(base_tree, {"optimizer": {"lr": lr, "weight_decay": wd},
                                             "train": {"epochs": epochs}}))

        def report(epoch: int, val_loss: float) -> None:
            trial.report(val_loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"val_loss {val_loss:.4g} at epoch {epoch} is worse than the median")

        try:
            return float(train_trial(cfg, report))
        except TrainingDiverged as exc:
            trial.set_user_attr("diverged", True)
            trial.set_user_attr("diverged_at", {"step": exc.step, "epoch": exc.epoch, "value": str(exc.value)})
            return math.inf

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        sampler = optuna.samplers.GridSampler({"lr": lrs, "weight_decay": weight_decays}, seed=seed)
        study = optuna.create_study(storage=open_storage(storage), study_name=study_name, direction="minimize",
                                    sampler=sampler, load_if_exists=True,
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
        # On a finished study GridSampler would re-run one grid point; skip instead.
        if not sampler.is_exhausted(study):
            study.optimize(objective, n_trials=len(lrs) * len(weight_decays))  # stops when the grid is done
        trials = study.get_trials(deepcopy=False)
    finally:
        optuna.logging.set_verbosity(verbosity)

    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and math.isfinite(t.value)]
    best = min(done, key=lambda t: (t.value, t.number)) if done else None
    best_config = None
    if best is not None:
        best_config = config_to_dict(build_config(merge(base_tree, {"optimizer": {
            "lr": best.params["lr"], "weight_decay": best.params["weight_decay"]}})))
    return {
        "epochs": epochs,
        "trials": [_trial_row(t) for t in trials],
        "best": None if best is None else {"lr": best.params["lr"], "weight_decay": best.params["weight_decay"],
                                           "value": best.value},
        "best_config": best_config,
        "storage": storage,
        "study_name": study_name,
    }


def write_best_yaml(best_config: Config, path: Path) -> None:
    """Write `best_config` as ``nnrecipe fit --config`` reads it (the format of a run's config.yaml)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(best_config), sort_keys=False))
