"""`nnrecipe fit --resume`: an interrupted run continues to the very result of the uninterrupted one.

In-process tests "interrupt" a finished run by rewinding a copy of it: later checkpoints and the
final files removed, the INCOMPLETE marker put back (what a kill at that checkpoint leaves). The
slow test kills real `nnrecipe fit` processes with SIGKILL at random points and resumes them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.errors import UserError
from nnrecipe.driver import fit, resume
from nnrecipe.rundir import RunInProgress
from nnrecipe.training.checkpoint import Checkpointer, list_checkpoints, load_checkpoint
from testutil import assert_same_run, history_rows, rewind

# conv net + augmentation (batch-order generator) + dropout and BatchNorm (torch RNG, buffers)
CNN = ["model.name=cnn", "model.channels=[4]", "model.convs_per_stage=1", "model.dropout=0.2",
       "train.epochs=3", "train.batch_size=64", "train.log_every=5", "optimizer.lr=0.01",
       "train.checkpoint_every_steps=7", "train.keep_checkpoints=100"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "ref"
    fit("digits", overrides=CNN, out=out)
    return out


def test_resume_from_mid_epoch_and_epoch_end_is_exact(reference, tmp_path):
    seqs = list_checkpoints(reference / "checkpoints")
    assert len(seqs) == 3 + (3 * 20) // 7  # 20 steps per epoch: every epoch + every 7th step
    for seq, where in ((4, (2, 1)), (3, (2, 0))):  # step 21: one batch into epoch 2; end of epoch 1
        state = load_checkpoint(reference / "checkpoints" / f"ckpt-{seq:06d}.json")
        assert (state["progress"]["epoch"], state["progress"]["batches_done"]) == where
        run = resume(rewind(reference, tmp_path / f"r{seq}", seq))
        assert not (run.dir / "INCOMPLETE").exists()
        assert_same_run(reference, run.dir)


def test_crash_while_moving_the_final_files_in(reference, tmp_path, monkeypatch):
    run_dir = rewind(reference, tmp_path / "run", list_checkpoints(reference / "checkpoints")[-1])
    real_replace, calls = os.replace, []

    def dies_on_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError("simulated crash")
        real_replace(src, dst)
    monkeypatch.setattr("nnrecipe.rundir.os.replace", dies_on_third)
    with pytest.raises(OSError, match="simulated"):
        resume(run_dir)
    monkeypatch.undo()
    assert (run_dir / "INCOMPLETE").exists() and (run_dir / "config.yaml").exists()
    with pytest.raises(UserError, match="incomplete.*--resume"):
        nnrecipe.load(run_dir)
    assert_same_run(reference, resume(run_dir).dir)


# -- refusals -------------------------------------------------------------------------------------------

def test_incomplete_run_is_refused_by_load_and_predict(reference, tmp_path, capsys):
    run_dir = rewind(reference, tmp_path / "run", 2)
    with pytest.raises(UserError, match="run is incomplete") as exc:
        nnrecipe.load(run_dir)
    assert f"nnrecipe fit --resume {run_dir}" in str(exc.value)
    assert main(["predict", str(run_dir), "--data", "digits"]) == 2
    assert "incomplete" in capsys.readouterr().err


def test_resume_refuses_other_options_and_finished_or_foreign_dirs(reference, tmp_path, capsys):
    run_dir = rewind(reference, tmp_path / "run", 2)
    assert main(["fit", "--resume", str(run_dir), "--epochs", "9", "--set", "optimizer.lr=1"]) == 2
    err = capsys.readouterr().err
    assert "--epochs" in err and "--set" in err and err.count("\n") == 1
    with pytest.raises(UserError, match="epochs"):
        fit(resume=run_dir, epochs=9)
    with pytest.raises(UserError, match="already complete"):
        resume(reference)
    with pytest.raises(UserError, match="not found"):
        resume(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="INCOMPLETE"):
        resume(tmp_path / "empty")


def test_changed_config_is_refused(reference, tmp_path):
    run_dir = rewind(reference, tmp_path / "run", 4)
    text = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(text.replace("epochs: 3", "epochs: 5"))
    with pytest.raises(UserError, match="train.epochs"):
        resume(run_dir)


ENSEMBLE = ["train.ensemble=2", "model.hidden=[16]", "train.epochs=2", "train.batch_size=32",
            "train.checkpoint_every_steps=3", "train.keep_checkpoints=100"]


def rewind_ensemble(src: Path, dst: Path, member: int, seq: int) -> Path:
    """A copy of ensemble run `src` as a kill right after checkpoint `seq` of `member` would leave it."""
    shutil.copytree(src, dst)
    for path in (dst / "checkpoints").iterdir():
        i = int(path.name.split("-")[1])
        if i > member:
            shutil.rmtree(path)
        elif i == member:
            for ckpt in path.iterdir():
                if int(ckpt.name[5:11]) > seq:
                    ckpt.unlink()
    for name in ("members", "plots"):
        shutil.rmtree(dst / name)
    for name in ("metrics.json", "model.json", "report.html"):
        (dst / name).unlink()
    (dst / "INCOMPLETE").write_text("interrupted\n")
    return dst


def test_ensembles_resume_exactly_in_either_member(tmp_path):
    ref = fit("iris", overrides=ENSEMBLE, out=tmp_path / "ref").dir
    assert sorted(p.name for p in (ref / "checkpoints").iterdir()) == ["member-0", "member-1"]
    for member, seq in ((0, 2), (1, 3)):  # mid-epoch in member 0 (member 1 not begun); in member 1
        run = resume(rewind_ensemble(ref, tmp_path / f"r{member}", member, seq))
        assert not (run.dir / "INCOMPLETE").exists() and len(run.members) == 2
        ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (ref, run.dir))
        ma.pop("train_seconds"), mb.pop("train_seconds")
        assert ma == mb
        for i in range(2):
            assert_same_run(ref / "members" / str(i), run.dir / "members" / str(i))
        assert (ref / "model.json").read_text() == (run.dir / "model.json").read_text()


def test_a_run_being_trained_cannot_be_resumed_twice(reference, tmp_path):
    run_dir = rewind(reference, tmp_path / "run", 2)
    holder = RunInProgress(run_dir, resolve_config(file=run_dir / "config.yaml"), resume=True)
    holder.open()  # another process training it
    try:
        with pytest.raises(UserError, match="another process"):
            resume(run_dir)
    finally:
        holder.close()
    assert (run_dir / "INCOMPLETE").exists() and list_checkpoints(run_dir / "checkpoints") == [1, 2]


def test_bad_input_found_before_training_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--out", str(out), "--freeze", "backbone", "--quiet"]) == 2  # needs --init-from
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_a_resumable_run(reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_save = Checkpointer.save

    def interrupted(self, trainer, **kw):
        path = real_save(self, trainer, **kw)
        if self.seq == 4:
            raise KeyboardInterrupt
        return path
    monkeypatch.setattr(Checkpointer, "save", interrupted)
    argv = ["fit", "--data", "digits", "--out", str(out), "--quiet", *[a for s in CNN for a in ("--set", s)]]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"nnrecipe fit --resume {out}" in err
    monkeypatch.undo()
    assert main(["fit", "--resume", str(out), "--quiet"]) == 0
    assert_same_run(reference, out)


# -- real crashes ---------------------------------------------------------------------------------------

def _latest_seq(run_dir: Path) -> int:
    seqs = list_checkpoints(run_dir / "checkpoints")
    return seqs[-1] if seqs else 0


def _kill_after_new_checkpoints(proc: subprocess.Popen, run_dir: Path, rng: random.Random) -> str:
    """SIGKILL `proc` a random moment after k more checkpoints appear (k random); 'finished' if it
    ended first. Polls every millisecond, so the kill can land inside a checkpoint write."""
    start, k = _latest_seq(run_dir), rng.randint(1, 4)
    while proc.poll() is None:
        if _latest_seq(run_dir) >= start + k:
            time.sleep(rng.uniform(0, 0.03))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return "killed" if proc.returncode == -signal.SIGKILL else "finished"
        time.sleep(0.001)
    return "finished"


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_is_bit_exact(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    sets = [a for s in ("model.hidden=[16]", "train.epochs=6", "train.batch_size=64", "train.log_every=5",
                        "model.dropout=0.2") for a in ("--set", s)]
    cmd = [sys.executable, "-m", "nnrecipe", "fit", "--data", "digits", "--quiet", "--checkpoint-every-steps", "7"]
    subprocess.run([*cmd, "--out", str(tmp_path / "ref"), *sets], env=env, check=True, capture_output=True)

    run_dir, rng, kills = tmp_path / "run", random.Random(20240611), []
    proc = subprocess.Popen([*cmd, "--out", str(run_dir), *sets], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    for attempt in range(12):
        outcome = _kill_after_new_checkpoints(proc, run_dir, rng) if len(kills) < 3 else "finished"
        proc.wait()
        if outcome == "killed":
            kills.append(_latest_seq(run_dir))
        else:
            assert proc.returncode == 0, proc.stderr.read().decode()
        if not (run_dir / "INCOMPLETE").exists() and proc.returncode == 0:
            break
        proc = subprocess.Popen([*cmd[:4], "--resume", str(run_dir), "--quiet"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    print(f"killed with SIGKILL after checkpoints {kills}")  # shown with pytest -s
    assert len(kills) == 3, kills  # three real crashes, each after at least one new checkpoint
    assert not (run_dir / "INCOMPLETE").exists()
    assert_same_run(tmp_path / "ref", run_dir)

    # retention (train.keep_checkpoints = 2): the newest two and the best end-of-epoch one
    seqs = list_checkpoints(run_dir / "checkpoints")
    newest = load_checkpoint(run_dir / "checkpoints" / f"ckpt-{seqs[-1]:06d}.json")["checkpointer"]
    assert seqs == sorted({seqs[-1] - 1, seqs[-1], newest["best_seq"]})
    assert len(list((run_dir / "checkpoints").glob("*.safetensors"))) == len(seqs)
    assert newest["best_val"] == min(float(row["val_loss"]) for row in history_rows(run_dir))
