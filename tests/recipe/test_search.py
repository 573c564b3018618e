"""coarse_search with a closed-form fake trainer: full grid, analytic best, storage, pruning, YAML."""

from __future__ import annotations

import math

import optuna
import pytest

from nnrecipe.config import build_config, resolve_config
from nnrecipe.errors import TrainingDiverged
from nnrecipe.recipe.search import coarse_search, write_best_yaml

LRS = [1e-3, 1e-2, 1e-1]
WDS = [1e-4, 1e-5, 0.0]


def loss_of(lr: float, wd: float) -> float:
    """Minimum at lr = 1e-2, wd = 1e-5."""
    return (math.log10(lr) + 2) ** 2 + 1e4 * abs(wd - 1e-5) + 0.1


def make_trial(calls: list | None = None, *, terrible_lr: float | None = None, diverge_lr: float | None = None):
    def train_trial(cfg, report):
        lr, wd, epochs = cfg.optimizer.lr, cfg.optimizer.weight_decay, cfg.train.epochs
        if calls is not None:
            calls.append((lr, wd, epochs))
        if lr == diverge_lr:
            raise TrainingDiverged(step=7, epoch=1, value=float("nan"))
        value = loss_of(lr, wd)
        for epoch in range(1, epochs + 1):
            current = 1e6 if lr == terrible_lr else value + 1.0 / epoch
            report(epoch, current)
        return value
    return train_trial


def test_grid_is_enumerated_and_best_is_the_analytic_minimum():
    calls = []
    base = build_config({"train": {"epochs": 50}, "optimizer": {"name": "sgd"}})
    out = coarse_search(base, make_trial(calls), lrs=LRS, weight_decays=WDS, epochs=2)
    assert len(out["trials"]) == 9 and len(calls) == 9
    assert sorted((lr, wd) for lr, wd, _ in calls) == sorted((lr, wd) for lr in LRS for wd in WDS)
    assert {epochs for _, _, epochs in calls} == {2}  # the short search epochs
    # Worse-than-median trials may be pruned; the minimum is best at every epoch, so never pruned.
    assert {t["state"] for t in out["trials"]} <= {"COMPLETE", "PRUNED"}
    assert out["best"] == {"lr": 1e-2, "weight_decay": 1e-5, "value": pytest.approx(0.1)}
    cfg = build_config(out["best_config"])
    assert cfg.optimizer.lr == 1e-2 and cfg.optimizer.weight_decay == 1e-5
    assert cfg.train.epochs == 50 and cfg.optimizer.name == "sgd"  # the base's epochs, not the search's
    assert out["storage"] is None and out["study_name"] == "coarse-search"


def test_sqlite_storage_persists_and_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    out = coarse_search(build_config(), make_trial(), lrs=LRS, weight_decays=WDS, storage=storage,
                        study_name="s1")
    assert out["storage"] == storage
    study = optuna.load_study(study_name="s1", storage=storage)
    assert len(study.trials) == 9
    calls = []
    again = coarse_search(build_config(), make_trial(calls), lrs=LRS, weight_decays=WDS, storage=storage,
                          study_name="s1")
    assert calls == [] and len(again["trials"]) == 9  # a finished grid is not re-run
    assert again["best"] == out["best"]


def test_terrible_intermediate_values_are_pruned(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # Three good trials complete first (the pruner's startup), then the terrible one is pruned at
    # its first report: its grid is a second search sharing the study.
    coarse_search(build_config(), make_trial(), lrs=LRS, weight_decays=[0.0], storage=storage, study_name="p")
    calls = []
    out = coarse_search(build_config(), make_trial(calls, terrible_lr=1.0), lrs=[1.0], weight_decays=[0.0],
                        storage=storage, study_name="p")
    pruned = [t for t in out["trials"] if t["state"] == "PRUNED"]
    assert len(pruned) == 1 and pruned[0]["lr"] == 1.0 and pruned[0]["value"] == 1e6
    assert len(out["trials"]) == 4 and out["best"]["lr"] == 1e-2


def test_pruning_within_one_grid():
    out = coarse_search(build_config(), make_trial(terrible_lr=1.0), lrs=[1e-3, 1e-2, 1e-1, 3e-2, 3e-3, 1.0],
                        weight_decays=[0.0], seed=0)
    states = {t["lr"]: t["state"] for t in out["trials"]}
    assert len(states) == 6 and out["best"]["lr"] == 1e-2
    # Whether lr=1.0 is pruned depends on its place in the shuffled grid: after 3 completed trials it must be.
    order = [t["lr"] for t in sorted(out["trials"], key=lambda t: t["number"])]
    assert (states[1.0] == "PRUNED") == (order.index(1.0) >= 3)


def test_diverging_trial_does_not_crash_the_search():
    out = coarse_search(build_config(), make_trial(diverge_lr=1e-1), lrs=LRS, weight_decays=[0.0])
    diverged = [t for t in out["trials"] if t["diverged"]]
    assert len(diverged) == 1 and diverged[0]["lr"] == 1e-1 and diverged[0]["value"] == math.inf
    assert diverged[0]["state"] == "COMPLETE" and len(out["trials"]) == 3
    assert out["best"]["lr"] == 1e-2


def test_all_diverged_means_no_best():
    out = coarse_search(build_config(), make_trial(diverge_lr=1e-2), lrs=[1e-2], weight_decays=[0.0])
    assert out["best"] is None and out["best_config"] is None


def test_other_errors_propagate():
    def broken(cfg, report):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        coarse_search(build_config(), broken, lrs=[1e-2], weight_decays=[0.0])


def test_optuna_verbosity_is_restored():
    before = optuna.logging.get_verbosity()
    coarse_search(build_config(), make_trial(), lrs=[1e-2], weight_decays=[0.0])
    assert optuna.logging.get_verbosity() == before


def test_best_yaml_round_trips_through_resolve_config(tmp_path):
    base = build_config({"train": {"epochs": 40}, "model": {"hidden": [32, 16]}})
    out = coarse_search(base, make_trial(), lrs=LRS, weight_decays=WDS)
    path = tmp_path / "best.yaml"
    write_best_yaml(build_config(out["best_config"]), path)
    cfg = resolve_config(file=path)
    assert cfg.optimizer.lr == 1e-2 and cfg.optimizer.weight_decay == 1e-5
    assert cfg.train.epochs == 40 and cfg.model.hidden == (32, 16)
    assert cfg == build_config(out["best_config"])
