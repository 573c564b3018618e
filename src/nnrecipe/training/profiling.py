"""Step profiling (``train.profile``, ``nnrecipe fit --profile``): where an epoch's time goes.

Per epoch, wall-clock seconds (``time.perf_counter``) spent in each phase of the training steps:

- ``data``      - getting the next batch: indexing in-memory tensors, or waiting on the DataLoader
                  workers of ``data.lazy``;
- ``forward``   - augmentation, forward pass, loss and penalty (and the batch's accuracy counts);
- ``backward``  - ``loss.backward()`` (every micro-batch under ``train.accumulate``);
- ``optimizer`` - unscaling, clipping, the NaN/Inf guard and ``optimizer.step()``;
- ``callbacks`` - the per-step callbacks (log-step hooks, mid-epoch checkpoints);
- ``train_step`` - a custom step (the GAN's two players) as a whole, which has its own phases.

``samples_per_second`` = training rows / the sum of the phases (validation, which runs after the
steps, is not counted), ``peak_rss_mb`` the process's peak resident memory so far
(``getrusage``'s ``ru_maxrss``), ``peak_cuda_mb`` ``torch.cuda.max_memory_allocated`` on CUDA.
When the data phase is more than `DATA_SHARE_LIMIT` (30 %) of an epoch's step time a warning is
logged (once per fit, at the first such epoch): the model waits for its input.

On an accelerator, kernels run asynchronously, so each phase boundary synchronizes the device
while profiling (that is the price of attributing time to phases; with ``profile: off`` nothing
here runs and nothing syncs: the trainer's ``profiler`` is None). On the CPU ops are synchronous
and the phases add only two clock reads each.

``profile: trace`` also records a few steps with ``torch.profiler`` after a warm-up
(`TRACE_WAIT` + `TRACE_WARMUP` steps skipped, `TRACE_ACTIVE` recorded, the schedule Lightning's
``profiler="pytorch"`` and the PyTorch profiler recipe use) and writes ``RUN/profile/trace.json``
(Chrome trace format: open it in chrome://tracing or Perfetto) and ``RUN/profile/operators.txt``
(the top operators by self CPU time, ``key_averages().table``). torch's profiler records the
operators; the phase clock here exists because torch has no per-phase, per-epoch breakdown. The
recorder's bookkeeping and the trace export are left out of the phases, but its 5 recorded steps
run slower than the rest (it records every operator).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

import torch

try:
    import resource
except ImportError:  # not on Windows: peak memory is then not reported
    resource = None

from nnrecipe.training.callbacks import Callback

PHASES = ("data", "forward", "backward", "optimizer", "callbacks", "train_step")
DATA_SHARE_LIMIT = 0.30
TRACE_WAIT, TRACE_WARMUP, TRACE_ACTIVE = 1, 2, 5
TOP_OPERATORS = 25

logger = logging.getLogger(__name__)


def peak_rss_mb() -> float | None:
    """The process's peak resident set size in MiB (None where `resource` does not exist)."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class StepProfiler(Callback):
    """Phase clock of the training steps (module docstring). The trainer calls `phase` and
    `batches`; as a callback it closes each epoch's row and, in trace mode, drives torch's profiler."""

    order = 95  # after the History row is taken, before nothing that needs it

    def __init__(self, *, device: torch.device, trace_dir: str | Path | None = None):
        self.device = device
        self.trace_dir = Path(trace_dir) if trace_dir is not None else None
        self.every_steps = 1 if trace_dir is not None else None  # trace mode: one profiler step per step
        self.rows: list[dict] = []
        self.warnings: list[str] = []
        self._seconds = dict.fromkeys(PHASES, 0.0)
        self._samples = 0
        self._torch_profiler = None
        self._sync = device.type == "cuda"

    # -- the clock ------------------------------------------------------------------------------

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str):
        start = self._now()
        try:
            yield
        finally:
            self._seconds[name] += self._now() - start

    def batches(self, iterable):
        """Yield from `iterable`, timing each ``next`` as the data phase and counting rows."""
        iterator = iter(iterable)
        while True:
            start = self._now()
            try:
                xb, yb = next(iterator)
            except StopIteration:
                return
            self._seconds["data"] += self._now() - start
            self._samples += len(yb) if yb is not None else len(xb)
            yield xb, yb

    # -- callback hooks -------------------------------------------------------------------------

    def on_fit_begin(self, trainer, logs):
        if self.trace_dir is not None:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if self.device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self._torch_profiler = torch.profiler.profile(
                activities=activities, on_trace_ready=self._write_trace,
                schedule=torch.profiler.schedule(wait=TRACE_WAIT, warmup=TRACE_WARMUP, active=TRACE_ACTIVE, repeat=1))
            self._torch_profiler.start()

    def on_epoch_begin(self, trainer, logs):
        self._seconds, self._samples = dict.fromkeys(PHASES, 0.0), 0

    def on_step_end(self, trainer, logs):
        if self._torch_profiler is not None:
            start = time.perf_counter()
            self._torch_profiler.step()  # writes the trace after its last active step
            # the recorder's own bookkeeping is not the run's: out of the callbacks phase it runs in
            self._seconds["callbacks"] -= time.perf_counter() - start

    def on_epoch_end(self, trainer, logs):
        busy = sum(self._seconds.values())
        row = {"epoch": logs["epoch"], **{f"{k}_seconds": v for k, v in self._seconds.items()},
               "samples_per_second": self._samples / busy if busy > 0 else None, "peak_rss_mb": peak_rss_mb(),
               "peak_cuda_mb": torch.cuda.max_memory_allocated(self.device) / 2**20 if self._sync else None}
        self.rows.append(row)
        share = self._seconds["data"] / busy if busy > 0 else 0.0
        if share > DATA_SHARE_LIMIT and not self.warnings:  # once per fit: the rows show every epoch's share
            msg = (f"warning: waiting for data took {share:.0%} of the training steps' time in epoch {logs['epoch']} "
                   "(use data.lazy with more workers, or in-memory data)")
            self.warnings.append(msg)
            logger.warning(msg)

    def on_fit_end(self, trainer, logs):
        if self._torch_profiler is not None:
            self._torch_profiler.stop()  # a run shorter than the schedule writes what it recorded
            self._torch_profiler = None

    def _write_trace(self, prof) -> None:
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(self.trace_dir / "trace.json"))
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=TOP_OPERATORS)
        (self.trace_dir / "operators.txt").write_text(table + "\n")

    # -- state and summary ----------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"rows": [dict(r) for r in self.rows], "warnings": list(self.warnings)}

    def load_state_dict(self, state: dict) -> None:
        self.rows, self.warnings = [dict(r) for r in state["rows"]], list(state["warnings"])

    def summary(self) -> dict:
        """metrics.json's ``profile``: totals over the epochs, the mean throughput, the peaks, the rows."""
        totals = {f"{k}_seconds": sum(r[f"{k}_seconds"] for r in self.rows) for k in PHASES}
        busy = sum(totals.values())
        rates = [r["samples_per_second"] for r in self.rows if r["samples_per_second"] is not None]
        peaks = [r["peak_rss_mb"] for r in self.rows if r["peak_rss_mb"] is not None]
        cuda = [r["peak_cuda_mb"] for r in self.rows if r["peak_cuda_mb"] is not None]
        return {**totals, "data_share": totals["data_seconds"] / busy if busy > 0 else None,
                "samples_per_second": sum(rates) / len(rates) if rates else None,
                "peak_rss_mb": max(peaks) if peaks else None, "peak_cuda_mb": max(cuda) if cuda else None,
                "trace": "profile/trace.json" if self.trace_dir is not None else None,
                "warnings": list(self.warnings), "epochs": [dict(r) for r in self.rows]}
