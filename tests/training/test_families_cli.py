"""Every training-stage name trains the digits MLP from the CLI, and the loss goes down."""

from __future__ import annotations

import csv

import pytest

from nnrecipe.cli import main
from nnrecipe.training.clipping import CLIPPERS
from nnrecipe.training.init import INITIALIZERS
from nnrecipe.training.optim import OPTIMIZERS
from nnrecipe.training.schedules import SCHEDULES
from testutil import set_args

BASE = ["train.epochs=4", "model.hidden=[64]", "train.batch_size=64", "train.patience=0"]
# With all-zero weights a ReLU layer passes no gradient at all; sigmoid units (all 0.5) still let
# the head learn, which is what the symmetry demonstration needs.
EXTRA = {("init", "zeros"): ["model.activation=sigmoid"],
         ("clip", "agc"): ["clip.threshold=0.05"],
         ("schedule", "deepseek"): ["schedule.warmup.steps=20"],
         ("optimizer", "sgd_hd"): ["schedule.name=constant"], ("optimizer", "adam_hd"): ["schedule.name=constant"]}


def _cases():
    for family, names in (("init", INITIALIZERS), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                          ("clip", CLIPPERS)):
        for name in names:
            yield pytest.param(family, name, id=f"{family}-{name}")


def _losses(run_dir):
    with (run_dir / "history.csv").open() as fh:
        return [float(r["train_loss"]) for r in csv.DictReader(fh)]


@pytest.mark.slow
@pytest.mark.parametrize("family,name", list(_cases()))
def test_name_trains_digits_from_cli(tmp_path, family, name):
    out = tmp_path / "run"
    overrides = [*BASE, f"{family}.name={name}", *EXTRA.get((family, name), [])]
    assert main(["fit", "--data", "digits", "--out", str(out), "--quiet", *set_args(overrides)]) == 0
    losses = _losses(out)
    assert len(losses) == 4
    assert losses[-1] < losses[0], losses
