"""`train.curvature_every`: λmax and the Hessian trace in history.csv, measured on a fixed sample with
the fit's own loss; the 2/η line in the report; refused where the task has no such loss."""

from __future__ import annotations

import csv

import pytest
import torch

import nnrecipe
from nnrecipe.driver import resume
from nnrecipe.errors import UserError
from nnrecipe.recipe.curvature import sharpness
from nnrecipe.recipe.curvature_tracking import PROBES, ROWS, STEPS
from nnrecipe.tasks import task_for_info
from nnrecipe.training.checkpoint import list_checkpoints, load_checkpoint
from nnrecipe.training.setup import loss_function
from testutil import assert_same_run, rewind

SMALL = ["model.hidden=[16]", "optimizer.name=sgd", "optimizer.lr=0.05", "train.curvature_every=2",
         "train.restore_best=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return nnrecipe.fit("digits", overrides=SMALL, epochs=4, out=tmp_path_factory.mktemp("track") / "run")


def test_history_holds_lambda_max_every_n_epochs_measured_on_the_fixed_sample(run):
    with (run.dir / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [bool(r["lambda_max"]) for r in rows] == [False, True, False, True]
    assert [bool(r["hessian_trace"]) for r in rows] == [False, True, False, True]
    # the last epoch's weights are the run's (restore_best off): measure them again on the same rows
    X, y = task_for_info(run.info).rebuild_splits(run, None)["train"]
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:ROWS]
    again = sharpness(run.model, loss_function("classification", 0.1), X[idx].float(), y[idx], steps=STEPS,
                      probes=PROBES, seed=0 + 4)
    assert float(rows[-1]["lambda_max"]) == pytest.approx(again["lambda_max"], rel=1e-4)
    assert float(rows[-1]["hessian_trace"]) == pytest.approx(again["trace"], rel=1e-4)


def test_the_report_draws_and_states_the_edge_of_stability(run):
    html = (run.dir / "report.html").read_text()
    assert "Sharpness at epoch 4" in html and "λmax·η" in html and "sharpness λmax next to 2/η" in html


def test_a_family_without_the_loss_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UserError, match="train.curvature_every"):
        nnrecipe.fit("seq:reverse", overrides=["train.curvature_every=1"], epochs=1, out=tmp_path / "seq")
    assert not (tmp_path / "seq").exists()


def test_a_tracked_fit_resumed_mid_epoch_is_the_uninterrupted_one(tmp_path):
    # dropout on: the measurement must not touch the torch RNG the next batches draw from
    overrides = ["model.hidden=[16]", "model.dropout=0.2", "train.curvature_every=1", "train.checkpoint_every_steps=7",
                 "train.keep_checkpoints=100", "train.batch_size=128", "optimizer.lr=0.01"]
    reference = nnrecipe.fit("digits", overrides=overrides, epochs=3, out=tmp_path / "ref").dir
    seq = list_checkpoints(reference / "checkpoints")[2]  # after epoch 1's measurement, mid epoch 2
    progress = load_checkpoint(reference / "checkpoints" / f"ckpt-{seq:06d}.json")["progress"]
    assert progress["epoch"] == 2 and progress["batches_done"] > 0
    run = resume(rewind(reference, tmp_path / "again", seq))
    assert_same_run(reference, run.dir)
