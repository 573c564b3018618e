"""Loading never runs code and never crashes on damaged files.

- A foreign ``.pt`` is read with ``torch.load(weights_only=True)``: a pickle whose ``__reduce__``
  calls ``os.system`` is refused with a `UserError`, and the command never runs.
- Fuzzing (hypothesis): a run directory or a checkpoint whose files are truncated at random points
  or have random bytes changed either still loads with valid tensors (a change inside float data
  is undetectable for model.safetensors) or raises `UserError`; never another exception.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.errors import UserError
from nnrecipe.driver import resume
from nnrecipe.training.checkpoint import checkpoint_paths, list_checkpoints, load_checkpoint
from nnrecipe.training.transfer import load_pretrained

TINY = ["model.hidden=[8]", "train.epochs=2", "train.batch_size=128", "train.checkpoint_every_steps=4"]
FUZZ = settings(max_examples=50, deadline=None, database=None,  # no .hypothesis/ left in the repository
                suppress_health_check=[HealthCheck.function_scoped_fixture])


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("write", ["torch_save_zip", "raw_pickle", "nested_state_dict"])
def test_crafted_pickle_is_refused_and_never_executed(tmp_path, write):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = _Payload(marker)
    if write == "torch_save_zip":
        torch.save({"head.weight": payload}, path)  # pickles the reduce tuple; nothing runs here
    elif write == "raw_pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save({"state_dict": {"w": torch.zeros(2), "evil": payload}}, path)
    assert not marker.exists()
    with pytest.raises(UserError, match="cannot read pretrained weights") as exc:
        load_pretrained(path)
    assert str(path) in str(exc.value)
    assert not marker.exists()


def test_fit_init_from_a_crafted_pickle_fails_cleanly(tmp_path, capsys):
    marker, out = tmp_path / "pwned", tmp_path / "run"
    torch.save({"head.weight": _Payload(marker)}, tmp_path / "evil.pt")
    assert main(["fit", "--init-from", str(tmp_path / "evil.pt"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read pretrained weights") and err.count("\n") == 1
    assert not marker.exists() and not out.exists()


# -- fuzzing --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("safe") / "run"
    nnrecipe.fit("digits", overrides=TINY, out=out)
    return out


def _damage(data: bytes, how: str, cut: int, flips: list[tuple[int, int]]) -> bytes:
    if how == "truncate":
        return data[: cut % len(data)]
    out, seen = bytearray(data), set()
    for pos, xor in flips:
        if pos % len(out) not in seen:  # xor in 1..255 once per byte: the byte always changes
            seen.add(pos % len(out))
            out[pos % len(out)] ^= xor
    return bytes(out)


damage = st.tuples(st.sampled_from(["truncate", "flip"]), st.integers(0, 10**6),
                   st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))


@FUZZ
@given(name=st.sampled_from(["model.safetensors", "model.json", "config.yaml", "metrics.json"]), hit=damage)
def test_damaged_run_directory_loads_or_raises_user_error(pristine, name, hit):
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(shutil.copytree(pristine, Path(tmp) / "run", ignore=shutil.ignore_patterns("checkpoints")))
        path = run_dir / name
        path.write_bytes(_damage(path.read_bytes(), *hit))
        try:
            run = nnrecipe.load(run_dir)
        except UserError as exc:
            assert str(run_dir) in str(exc)  # names the file (or its directory)
            if hit[0] == "truncate" and name != "model.json":
                assert name in str(exc)
            return
        assert all(isinstance(t, torch.Tensor) for t in run.model.state_dict().values())
        try:  # what loaded must also predict, or say why not
            probs = run.predict_proba(np.zeros((3, 64)))
            assert probs.shape == (3, len(run.class_names))
        except UserError:
            pass


@FUZZ
@given(which=st.sampled_from(["json", "safetensors"]), hit=damage)
def test_damaged_checkpoint_is_a_user_error_naming_the_file(pristine, which, hit):
    directory = pristine / "checkpoints"
    json_path, tensor_path = checkpoint_paths(directory, list_checkpoints(directory)[-1])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copy(json_path, tmp / json_path.name)
        shutil.copy(tensor_path, tmp / tensor_path.name)
        target = tmp / (json_path.name if which == "json" else tensor_path.name)
        target.write_bytes(_damage(target.read_bytes(), *hit))
        with pytest.raises(UserError) as exc:
            load_checkpoint(tmp / json_path.name)
        assert target.name in str(exc.value)


def test_resume_with_a_damaged_checkpoint_says_which_file(pristine, tmp_path):
    run_dir = Path(shutil.copytree(pristine, tmp_path / "run"))
    for name in ("model.json", "model.safetensors", "metrics.json"):
        (run_dir / name).unlink()
    (run_dir / "INCOMPLETE").write_text("interrupted\n")
    json_path, tensor_path = checkpoint_paths(run_dir / "checkpoints", list_checkpoints(run_dir / "checkpoints")[-1])
    tensor_path.write_bytes(tensor_path.read_bytes()[:100])
    with pytest.raises(UserError, match="damaged checkpoint") as exc:
        resume(run_dir)
    assert str(tensor_path) in str(exc.value)
    json_path.unlink()  # the fix the message suggests: resume from the previous checkpoint
    tensor_path.unlink()
    assert resume(run_dir).metrics["epochs_run"] == 2
