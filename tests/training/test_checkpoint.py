"""Checkpoints: atomic writes, the tensor/JSON encoding, damaged files, retention, and exact resume
of the training loop for every registered optimizer (a resumed fit equals the uninterrupted one)."""

from __future__ import annotations

import json
import math
import os
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnrecipe.config import OptimizerConfig, ScheduleConfig
from nnrecipe.errors import UserError
from nnrecipe.models import MLP
from nnrecipe.recipe.health import HealthMonitor
from nnrecipe.training.callbacks import EarlyStopping, History
from nnrecipe.training.checkpoint import (Checkpointer, atomic_write_bytes, capture, checkpoint_paths,
                                          decode_state, encode_state, latest_checkpoint, list_checkpoints,
                                          load_checkpoint, prune_checkpoints, restore, save_checkpoint)
from nnrecipe.training.loop import Trainer
from nnrecipe.training.optim import OPTIMIZERS, build_optimizer
from nnrecipe.training.schedules import build_schedule


# -- atomic writes ----------------------------------------------------------------------------------

def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"previous")

    def crash(*args):  # the process "dies" between the fsync of the temp file and the rename
        raise OSError("simulated crash")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_bytes(path, b"half-written")
    monkeypatch.undo()
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


# -- encoding ---------------------------------------------------------------------------------------

def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_encode_decode_round_trip_is_exact():
    state = {
        "int_keys": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}, "hypergrad": {"lr": 0.1}},
        "betas": (0.9, 0.999), "python_rng": random.getstate(), "numpy_rng": np.random.get_state(legacy=False),
        "dtypes": [torch.arange(3), torch.ones(2, dtype=torch.bool), torch.zeros(0, 4), torch.tensor(1.5),
                   torch.ones(2, dtype=torch.float16), torch.get_rng_state()],
        "floats": [0.1, 1e-300, -0.0, math.inf, math.nan, 2.0**-1074], "none": None, "text": "é",
    }
    tensors: dict = {}
    plain = encode_state(state, tensors)
    text = json.dumps(plain)  # must be JSON as it stands
    back = decode_state(json.loads(text), tensors)
    assert _same(state, back)
    random.setstate(back["python_rng"])  # the decoded RNG states are accepted as they are
    np.random.set_state(back["numpy_rng"])


@pytest.mark.parametrize("bad", [{1, 2}, object(), {"k": {(1, 2): 3}}, b"bytes"])
def test_encoding_refuses_what_it_cannot_restore(bad):
    with pytest.raises(TypeError):
        encode_state({"x": bad}, {})


# -- files ------------------------------------------------------------------------------------------

def _state():
    return {"w": torch.randn(4, 3), "meta": {"epoch": 2, "rows": [{"loss": 0.5}]}}


def test_checkpoint_files_round_trip_and_latest(tmp_path):
    for seq in (1, 2, 3):
        save_checkpoint(tmp_path, seq, {**_state(), "seq": seq})
    (tmp_path / "ckpt-000004.safetensors").write_bytes(b"orphan: its JSON was never committed")
    assert list_checkpoints(tmp_path) == [1, 2, 3]
    assert latest_checkpoint(tmp_path) == checkpoint_paths(tmp_path, 3)[0]
    assert load_checkpoint(latest_checkpoint(tmp_path))["seq"] == 3


def test_damaged_checkpoints_are_user_errors_naming_the_file(tmp_path):
    json_path, tensor_path = checkpoint_paths(tmp_path, 1)
    save_checkpoint(tmp_path, 1, _state())
    good_json, good_tensors = json_path.read_bytes(), tensor_path.read_bytes()

    record = json.loads(good_json)
    record["state"]["meta"]["epoch"] = 3  # valid JSON, wrong content
    json_path.write_text(json.dumps(record))
    with pytest.raises(UserError, match="checksum") as exc:
        load_checkpoint(json_path)
    assert str(json_path) in str(exc.value)

    json_path.write_bytes(good_json[: len(good_json) // 2])
    with pytest.raises(UserError, match="damaged checkpoint"):
        load_checkpoint(json_path)

    json_path.write_bytes(good_json)
    flipped = bytearray(good_tensors)
    flipped[-3] ^= 0x10  # inside the float data: safetensors alone would load it
    tensor_path.write_bytes(bytes(flipped))
    with pytest.raises(UserError, match="checksum") as exc:
        load_checkpoint(json_path)
    assert str(tensor_path) in str(exc.value)

    tensor_path.unlink()
    with pytest.raises(UserError, match=tensor_path.name):
        load_checkpoint(json_path)


def test_retention_keeps_the_newest_and_the_best(tmp_path):
    for seq in range(1, 8):
        save_checkpoint(tmp_path, seq, _state())
    (tmp_path / "ckpt-000005.json").unlink()  # 5 lost its commit record: orphan tensors
    prune_checkpoints(tmp_path, keep=2, best=2)
    assert list_checkpoints(tmp_path) == [2, 6, 7]
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == [
        "ckpt-000002.safetensors", "ckpt-000006.safetensors", "ckpt-000007.safetensors"]


# -- exact resume of the loop -------------------------------------------------------------------------

def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(46, 4, generator=g), torch.randint(0, 3, (46,), generator=g)


def _noise(x, y, generator):  # an "augmentation" drawing from the batch-order generator
    return x + 0.1 * torch.randn(x.shape, generator=generator), y


def _trainer(optimizer: str, *, lookahead: bool = False, schedule: str = "cosine", patience: int = 0,
             min_delta: float = 0.0) -> Trainer:
    torch.manual_seed(0)
    model = MLP(4, 3, hidden=(8,), dropout=0.3)  # dropout draws from torch's global RNG
    cfg = OptimizerConfig(name=optimizer, lr=0.05 if optimizer != "adadelta" else 1.0, lookahead=lookahead,
                          lookahead_k=3)
    sched = build_schedule(ScheduleConfig(name=schedule, plateau_patience=0), base_lr=cfg.lr, total_steps=30)
    callbacks = [History(), EarlyStopping(patience=patience, min_delta=min_delta),
                 HealthMonitor(every=2, log=False)]
    return Trainer(model=model, loss_fn=F.cross_entropy, optimizer=build_optimizer(model, cfg), schedule=sched,
                   classification=True, callbacks=callbacks, augment=_noise, log_every=4)


def _fit(trainer: Trainer, directory, *, resume=None, epochs=5):
    X, y = _data()
    ckpt = Checkpointer(directory, config={"test": 1}, every_steps=3, keep=100, resume=resume)
    trainer.callbacks.append(ckpt)
    trainer.fit(X[:36], y[:36], X[36:], y[36:], epochs=epochs, batch_size=8, generator=torch.Generator().manual_seed(1))
    history = next(cb for cb in trainer.callbacks if isinstance(cb, History)).rows
    health = next(cb for cb in trainer.callbacks if isinstance(cb, HealthMonitor)).rows
    return ({k: v.clone() for k, v in trainer.model.state_dict().items()},
            [{k: v for k, v in r.items() if k != "seconds"} for r in history], health)


def _assert_same(reference, resumed, label):
    assert all(torch.equal(reference[0][k], resumed[0][k]) for k in reference[0]), label
    assert resumed[1] == reference[1], label  # history rows (but their timing)
    assert resumed[2] == reference[2], label  # health-monitor rows


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer_resumes_exactly(tmp_path, optimizer):
    reference = _fit(_trainer(optimizer), tmp_path / "ref", epochs=3)
    state = load_checkpoint(checkpoint_paths(tmp_path / "ref", 4)[0])  # step 9: mid-epoch 2
    assert (state["progress"]["epoch"], state["progress"]["batches_done"]) == (2, 4)
    random.seed(123), torch.manual_seed(123)  # whatever the new process did before: restored anyway
    _assert_same(reference, _fit(_trainer(optimizer), tmp_path / "r", resume=state, epochs=3), optimizer)


def test_resume_from_any_checkpoint_equals_the_uninterrupted_fit(tmp_path):
    """Lookahead (its own slow weights and counter) and the plateau schedule (its counters)."""
    make = lambda: _trainer("adamw", lookahead=True, schedule="plateau")  # noqa: E731
    reference = _fit(make(), tmp_path / "ref")
    seqs = list_checkpoints(tmp_path / "ref")
    assert len(seqs) == 5 + 25 // 3  # 5 steps per epoch: every epoch + every 3rd step
    for seq in (1, 2, seqs[-1]):  # mid-epoch 1 (step 3), end of epoch 1, after the last epoch
        state = load_checkpoint(checkpoint_paths(tmp_path / "ref", seq)[0])
        _assert_same(reference, _fit(make(), tmp_path / f"r{seq}", resume=state), seq)


def test_resume_after_early_stopping_trains_no_further(tmp_path):
    # min_delta 100: epoch 1 improves on +inf, epoch 2 cannot improve by 100, so it stops there
    ref = _fit(_trainer("sgd", patience=1, min_delta=100.0), tmp_path / "ref", epochs=30)
    assert len(ref[1]) == 2
    state = load_checkpoint(latest_checkpoint(tmp_path / "ref"))
    assert state["trainer"]["should_stop"] is True
    resumed = _fit(_trainer("sgd", patience=1, min_delta=100.0), tmp_path / "again", resume=state, epochs=30)
    assert resumed[1] == ref[1]
    assert all(torch.equal(ref[0][k], resumed[0][k]) for k in ref[0])  # best weights restored, as before


def test_capture_restore_carries_the_trainer_counters():
    a, b = _trainer("adamw"), _trainer("adamw")
    for trainer in (a, b):
        trainer.generator = torch.Generator().manual_seed(0)
        for cb in trainer.callbacks:
            cb.on_fit_begin(trainer, {})
    a.step, a.lr_factor, a.skipped_steps = 17, 0.25, 2
    tensors: dict = {}
    state = decode_state(json.loads(json.dumps(encode_state(capture(a), tensors))), tensors)
    restore(b, state)
    assert (b.step, b.lr_factor, b.skipped_steps, b.should_stop) == (17, 0.25, 2, False)


def test_changed_config_is_refused(tmp_path):
    _fit(_trainer("sgd"), tmp_path / "ref", epochs=1)
    state = load_checkpoint(latest_checkpoint(tmp_path / "ref"))
    trainer = _trainer("sgd")
    trainer.callbacks.append(Checkpointer(tmp_path / "x", config={"test": 2}, resume=state))
    X, y = _data()
    with pytest.raises(UserError, match="config.yaml differs.*test"):
        trainer.fit(X, y, X, y, epochs=2, batch_size=8, generator=torch.Generator())
