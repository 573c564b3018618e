"""Data-parallel `fit` under torchrun (CPU, gloo, 2 processes on loopback).

The slow tests launch ``python -m torch.distributed.run --nproc-per-node 2 -m nnrecipe fit``:
two processes at batch B/2 must train like one process at batch B (same loss curve), and a worker
that dies mid-run is restarted by torchrun (``--max-restarts 1``) and the job resumes from rank 0's
last checkpoint to the very result of the uninterrupted run.
"""

from __future__ import annotations

import csv
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nnrecipe
from nnrecipe.driver import fit
from nnrecipe.errors import UserError
from nnrecipe.tasks import TASKS, task_name
from nnrecipe.config import resolve_config
from nnrecipe.training.checkpoint import latest_checkpoint, load_checkpoint
from nnrecipe.training.distributed import FAULT_ENV, Distributed

# MLP without dropout or BatchNorm: nothing differs between one process and two but the batching
SETS = ["model.hidden=[16]", "model.dropout=0", "train.epochs=3", "train.log_every=5", "optimizer.lr=0.01"]
B = 64  # the single process's batch; each of the two processes takes B/2
RUN_FILES = {"config.yaml", "history.csv", "metrics.json", "model.safetensors", "model.json", "checkpoints"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(out: Path, cwd: Path, *, extra_env: dict | None = None, max_restarts: int = 0,
             data: str = "digits", settings: list[str] = SETS):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop(FAULT_ENV, None)
    env.update(extra_env or {})
    sets = [a for s in [*settings, f"train.batch_size={B // 2}"] for a in ("--set", s)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "--max-restarts", str(max_restarts), "-m", "nnrecipe", "fit", "--data", data, "--quiet",
           "--checkpoint-every-steps", "5", "--out", str(out), *sets]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def history(run_dir: Path) -> list[dict]:
    with (run_dir / "history.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def final_step(run_dir: Path) -> int:
    return int(load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))["trainer"]["step"])


def assert_same_curves(one: Path, two: Path, *, epochs: int) -> None:
    """history.csv of the single process and of the two: same epochs, losses and accuracies to 1e-5."""
    h1, h2 = history(one), history(two)
    assert len(h1) == len(h2) == epochs
    for a, b in zip(h1, h2):
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            assert math.isclose(float(a[key]), float(b[key]), rel_tol=1e-5), (key, a[key], b[key])


@pytest.fixture(scope="module")
def two_procs(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("ddp")
    done = torchrun(work / "run", work)
    assert done.returncode == 0, done.stderr[-3000:]
    return work / "run"


def test_shard_batches_partitions_each_global_batch_with_row_weights():
    batches = [torch.arange(10), torch.arange(10, 17), torch.arange(17, 19)]  # 10, 7, then 2 < 3 ranks
    parts = []
    for r in range(3):
        ctx = Distributed(rank=r, world_size=3, device=torch.device("cpu"))
        parts.append([(idx.tolist(), ctx.weight) for idx in ctx.shard_batches(iter(batches))])
    for step, full in enumerate(batches[:2]):
        rows = [i for r in range(3) for i in parts[r][step][0]]
        assert rows == full.tolist()  # contiguous slices, in order, nothing lost or repeated
        assert math.isclose(sum(parts[r][step][1] for r in range(3)), 1.0)  # Σ n_r/N
        assert all(parts[r][step][1] == len(parts[r][step][0]) / len(full) for r in range(3))
    assert all(len(p) == 2 for p in parts)  # the 2-row batch cannot feed 3 ranks: skipped by all


@pytest.mark.slow
def test_killed_worker_is_restarted_and_resumes_from_the_last_checkpoint(two_procs, tmp_path):
    # rank 1 dies after step 13 (checkpoints at steps 5 and 10 exist) on the first attempt only
    done = torchrun(tmp_path / "run", tmp_path, extra_env={FAULT_ENV: "1:13"}, max_restarts=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exitcode: 17" in done.stderr  # the fault fired, so the finished job is the restarted one
    run = tmp_path / "run"
    assert (run / "metrics.json").is_file() and not (run / "INCOMPLETE").exists()
    assert final_step(run) == final_step(two_procs)
    assert history(run) == history(two_procs)  # resumed exactly: same weights, same statistics


def test_token_weights_split_each_batch_by_target_tokens():
    tokens = torch.tensor([1, 2, 3, 4, 5, 6])
    idx = torch.tensor([0, 1, 2, 3, 4, 5])
    shares = []
    for r in range(2):
        ctx = Distributed(rank=r, world_size=2, device=torch.device("cpu"), row_weights=tokens)
        (part,) = list(ctx.shard_batches(iter([idx])))
        shares.append(float(ctx.weight))
        # ℓ_r·w_r·N/n_r summed with weights n_r gives Σ_r w_r ℓ_r: the global token-mean loss
        assert math.isclose(float(ctx.loss_share(torch.tensor(2.0), len(part))) * len(part), 2.0 * shares[-1] * 6)
    assert shares == [pytest.approx(6 / 21), pytest.approx(15 / 21)]


# seq2seq on strings of 1-12 symbols: the batches' target token counts differ between the two halves
SEQ_SETS = ["text.task_size=192", "model.rnn_hidden=16", "model.embed_dim=8", "model.dropout=0", "train.epochs=2",
            "train.log_every=5"]
# the user's module (tests/usermodels.py); augmentation off: each process draws its own crops
CUSTOM_SETS = [*SETS[2:], "model.name=custom", "model.class_path=usermodels:FlatMLP", "augment.enabled=false"]
PARALLEL = {  # every task that trains data-parallel: (data, settings, epochs)
    "tabular": ("digits", SETS, 3),
    "tabular ensemble": ("digits", [*SETS, "train.ensemble=2", "train.epochs=2"], 2),
    "sequence": ("seq:reverse", SEQ_SETS, 2),
    "tagging": ("seq:tagging", SEQ_SETS, 2),  # a BiLSTM over sentences of 3-26 tokens: token weights again
    "custom": ("digits", CUSTOM_SETS, 3),
    # no BatchNorm (batch statistics differ between halves), no dropout: each rank weighs its words
    "captioning": ("cap:digits", ["model.name=captioner", "caption.task_size=200", "model.channels=[8,16]",
                                  "model.norm=none", "model.dropout=0", "model.rnn_hidden=16", "model.embed_dim=8",
                                  "caption.attention_dim=8", "caption.samples=0", "train.epochs=2",
                                  "train.log_every=5"], 2),
}


def test_every_task_is_declared_parallel_or_refused():
    assert {task_name(resolve_config(overrides=[f"data.source={d}", *sets])) for d, sets, _ in PARALLEL.values()} \
        == {name for name, task in TASKS.items() if task.data_parallel}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(PARALLEL))
def test_two_processes_at_half_batch_match_one_process(case, two_procs, tmp_path):
    """torchrun, 2 processes at batch B/2, against 1 process at batch B: the same curves and steps,
    and rank 0 alone writes the run. Sequence runs weigh each rank by its share of the batch's target
    tokens (row shares would not do: the halves hold different lengths); an ensemble trains every
    member on both processes in turn; a user's module is wrapped in DDP like a built-in one."""
    data, sets, epochs = PARALLEL[case]
    if case == "tabular":
        two = two_procs  # the module's fixture, shared with the restart test
    else:
        two = tmp_path / "two"
        done = torchrun(two, tmp_path, data=data, settings=sets, extra_env={"PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))})  # the caller's path kept
        assert done.returncode == 0, done.stderr[-3000:]
    one = tmp_path / "one"
    fit(data, overrides=[*sets, f"train.batch_size={B}", "train.checkpoint_every_steps=5"], out=one)
    members = [Path("members") / str(i) for i in range(2)] if "ensemble" in case else [Path()]
    for member in members:
        assert_same_curves(one / member, two / member, epochs=epochs)
    if "ensemble" in case:
        assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["member-0", "member-1"]
    else:
        assert final_step(one) == final_step(two)  # same number of (global) steps
        assert RUN_FILES <= {p.name for p in two.iterdir()}
    assert not list(two.glob(".final-*")) and not (two / "INCOMPLETE").exists()
    assert (two / "model.json").is_file()
    if case == "tabular":  # only rank 0 wrote: nothing else in the working directory
        assert sorted(p.name for p in two.parent.iterdir()) == ["run"]


@pytest.mark.parametrize("name", [name for name, task in TASKS.items() if not task.data_parallel])
def test_tasks_that_cannot_train_data_parallel_refuse_torchrun_from_one_place(name, tmp_path, monkeypatch):
    model = {"autoencoder": "vae", "gan": "gan", "word2vec": "word2vec"}[name]
    data = "w2v:synthetic" if name == "word2vec" else "digits"
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets: refused before any process group forms
    with pytest.raises(UserError, match="several processes") as info:
        nnrecipe.fit(data, model=model, out=tmp_path / "run")
    assert info.value.where == "torchrun" and TASKS[name].why_not_parallel in str(info.value)
    assert not (tmp_path / "run").exists()
