"""`train.profile`: the phase clock of the Trainer's steps, its warning, metrics.json's `profile`,
the torch.profiler trace, and the refusal for a task with a loop of its own."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import build_config
from nnrecipe.models import MLP
from nnrecipe.training.profiling import DATA_SHARE_LIMIT, PHASES, StepProfiler
from nnrecipe.training.setup import make_trainer

CPU = torch.device("cpu")


class SlowForward(nn.Module):
    """An MLP whose forward pass sleeps: the clock must put that time into the forward phase."""

    def __init__(self, pause: float):
        super().__init__()
        self.mlp, self.pause = MLP(4, 3, hidden=(8,)), pause

    def forward(self, x):
        time.sleep(self.pause)
        return self.mlp(x)


def _fit(model: nn.Module, *, epochs: int = 2, rows: int = 40):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(rows, 4, generator=g), torch.randint(0, 3, (rows,), generator=g)
    cfg = build_config({"train": {"epochs": epochs, "batch_size": 10}})
    profiler = StepProfiler(device=CPU)
    trainer = make_trainer(cfg, model, task="classification", train_rows=rows, callbacks=[profiler])
    trainer.profiler = profiler
    trainer.fit(X, y, X, y, epochs=epochs, batch_size=10, generator=torch.Generator().manual_seed(0))
    return profiler


def test_each_epoch_has_a_row_with_every_phase_and_the_rows_per_second():
    profiler = _fit(MLP(4, 3, hidden=(8,)))
    assert [r["epoch"] for r in profiler.rows] == [1, 2]
    for row in profiler.rows:
        for phase in ("data", "forward", "backward", "optimizer"):
            assert row[f"{phase}_seconds"] > 0
        assert row["train_step_seconds"] == 0.0
        busy = sum(row[f"{p}_seconds"] for p in PHASES)
        assert row["samples_per_second"] == pytest.approx(40 / busy)
        assert row["peak_rss_mb"] > 10 and row["peak_cuda_mb"] is None
    summary = profiler.summary()
    assert summary["forward_seconds"] == pytest.approx(sum(r["forward_seconds"] for r in profiler.rows))
    assert summary["epochs"] == profiler.rows and summary["trace"] is None


def test_a_slow_forward_pass_is_counted_as_forward_time():
    profiler = _fit(SlowForward(0.02), epochs=1)
    row = profiler.rows[0]
    assert row["forward_seconds"] >= 4 * 0.02  # 4 steps of 10 rows, each forward sleeping 20 ms
    others = sum(row[f"{p}_seconds"] for p in PHASES if p != "forward")
    assert row["forward_seconds"] > others


def test_waiting_for_data_is_timed_and_warned_about():
    profiler = StepProfiler(device=CPU)
    profiler.on_epoch_begin(None, {"epoch": 1})

    def slow_batches():
        for _ in range(3):
            time.sleep(0.02)
            yield torch.zeros(5, 2), torch.zeros(5)
    for _ in profiler.batches(slow_batches()):
        with profiler.phase("forward"):
            time.sleep(0.005)
    profiler.on_epoch_end(None, {"epoch": 1})
    row = profiler.rows[0]
    assert row["data_seconds"] >= 0.06 and row["samples_per_second"] == pytest.approx(15 / (row["data_seconds"]
                                                                                             + row["forward_seconds"]))
    assert row["data_seconds"] / (row["data_seconds"] + row["forward_seconds"]) > DATA_SHARE_LIMIT
    assert len(profiler.warnings) == 1 and "waiting for data" in profiler.warnings[0]
    fast = StepProfiler(device=CPU)
    fast.on_epoch_begin(None, {"epoch": 1})
    for _ in fast.batches([(torch.zeros(5, 2), torch.zeros(5))]):
        with fast.phase("forward"):
            time.sleep(0.02)
    fast.on_epoch_end(None, {"epoch": 1})
    assert fast.warnings == []


def test_profile_off_means_no_profiler_and_no_profile_in_metrics(tmp_path):
    run = nnrecipe.fit("iris", epochs=2, out=tmp_path / "off")
    assert "profile" not in run.metrics


def test_yaml_on_and_off_read_as_booleans_still_mean_on_and_off():
    assert build_config({"train": {"profile": True}}).train.profile == "on"
    assert build_config({"train": {"profile": False}}).train.profile == "off"


def test_fit_profile_trace_from_the_cli_writes_the_trace_and_the_report_section(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--data", "iris", "--epochs", "3", "--profile", "trace", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "profile: data" in printed and "samples/s" in printed and "profile/trace.json" in printed
    p = json.loads((out / "metrics.json").read_text())["profile"]
    assert [r["epoch"] for r in p["epochs"]] == [1, 2, 3] and p["trace"] == "profile/trace.json"
    assert p["forward_seconds"] > 0 and p["samples_per_second"] > 0 and p["peak_rss_mb"] > 0
    trace = json.loads((out / "profile" / "trace.json").read_text())
    names = {e.get("name", "") for e in trace["traceEvents"]}
    assert any(n.startswith("aten::") for n in names) and any(n.startswith("ProfilerStep") for n in names)
    assert "Self CPU" in (out / "profile" / "operators.txt").read_text()
    assert 'id="profile"' in (out / "report.html").read_text()


def test_a_task_with_its_own_loop_refuses_profiling(tmp_path, capsys):
    out = tmp_path / "w2v"
    code = main(["fit", "--model", "word2vec", "--data", "w2v:synthetic", "--epochs", "1", "--profile",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: train.profile") and err.count("\n") == 1
    assert not out.exists()
