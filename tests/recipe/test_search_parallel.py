"""Several worker processes on one Optuna study (SQLite file and journal file): the grid is
covered, every trial is recorded once in the shared study, and the best is the analytic minimum."""

from __future__ import annotations

import multiprocessing as mp
import time

import optuna
import pytest

from nnrecipe.config import build_config
from nnrecipe.recipe.search import coarse_search, open_storage

LRS = [1e-4, 1e-3, 1e-2, 1e-1]
WDS = [1e-4, 1e-5, 0.0]


def _slow_trial(cfg, report):
    import math
    value = (math.log10(cfg.optimizer.lr) + 2) ** 2 + 1e4 * abs(cfg.optimizer.weight_decay - 1e-5) + 0.1
    time.sleep(0.05)  # long enough that the workers overlap
    report(1, value)
    return value


def _worker(storage: str) -> None:
    coarse_search(build_config(), _slow_trial, lrs=LRS, weight_decays=WDS, epochs=1,
                  storage=storage, study_name="shared", seed=0)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_parallel_workers_share_one_study(tmp_path, kind):
    storage = (f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite"
               else f"journal:{tmp_path / 'study.log'}")
    optuna.create_study(storage=open_storage(storage), study_name="shared")  # created once, before the workers
    ctx = mp.get_context("spawn")
    # Same seed everywhere: GridSampler numbers grid points in a seed-shuffled order.
    workers = [ctx.Process(target=_worker, args=(storage,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=600)  # each worker imports torch: slow on a busy machine
        assert w.exitcode == 0
    study = optuna.load_study(study_name="shared", storage=open_storage(storage))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    seen = {(t.params["lr"], t.params["weight_decay"]) for t in study.trials}
    assert seen == {(lr, wd) for lr in LRS for wd in WDS}  # the whole grid, split between workers
    # Shared, not repeated: alone, each worker would run the whole grid (2 × 12 trials). Optuna's
    # GridSampler may hand a point to both workers when they ask at the same moment, so allow a few.
    assert len(LRS) * len(WDS) <= len(study.trials) < 2 * len(LRS) * len(WDS)
    assert min(done, key=lambda t: t.value).params == {"lr": 1e-2, "weight_decay": 1e-5}
