"""train.tensorboard / --tensorboard: event files under RUN/tensorboard/, read back with
tensorboard's EventAccumulator."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nnrecipe
from nnrecipe.errors import UserError
from nnrecipe.training import tensorboard as tb


def _events(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_epoch_step_health_scalars_and_config_are_written(tmp_path):
    run = nnrecipe.fit("iris", overrides=["train.epochs=4", "train.tensorboard=true", "train.log_every=2"],
                       out=tmp_path / "run")
    acc = _events(run.dir / "tensorboard")
    tags = set(acc.Tags()["scalars"])
    assert set(tb.EPOCH_TAGS.values()) <= tags and {"step/loss", "step/lr"} <= tags
    assert any(t.startswith("health/") for t in tags)
    with (run.dir / "history.csv").open() as fh:
        history = list(csv.DictReader(fh))
    val = acc.Scalars("val/loss")
    assert [e.step for e in val] == [1, 2, 3, 4] == [int(r["epoch"]) for r in history]
    assert all(abs(e.value - float(r["val_loss"])) < 1e-6 for e, r in zip(val, history))
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "tensorboard: true" in text and "epochs: 4" in text


def test_cli_flag_and_missing_package(tmp_path, monkeypatch):
    done = subprocess.run([sys.executable, "-m", "nnrecipe", "fit", "--data", "iris", "--epochs", "2", "--tensorboard",
                           "--quiet", "--out", str(tmp_path / "cli")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "val/loss" in _events(tmp_path / "cli" / "tensorboard").Tags()["scalars"]

    def missing():
        raise UserError("train.tensorboard needs the tensorboard package", "train.tensorboard",
                        'pip install "nnrecipe[tensorboard]", or drop --tensorboard')

    real = tb._summary_writer
    monkeypatch.setattr(tb, "_summary_writer", missing)
    with pytest.raises(UserError, match=r'pip install "nnrecipe\[tensorboard\]"'):
        nnrecipe.fit("iris", overrides=["train.epochs=1", "train.tensorboard=true"], out=tmp_path / "no")
    monkeypatch.setattr(tb, "_summary_writer", real)


def test_the_missing_package_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(UserError, match="needs the tensorboard package"):
        tb._summary_writer()
