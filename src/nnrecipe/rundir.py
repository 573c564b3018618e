"""Writing a run directory atomically: every file goes into a hidden temporary sibling, which is
renamed into place (one ``os.rename``) only when complete, so a failure leaves nothing behind.

A single-model `fit` checkpoints while it trains, so its directory must exist before the end
(`RunInProgress`). When training starts (after every bad-input check has had its chance to fail)
the directory appears in one rename holding ``config.yaml``, an empty ``checkpoints/`` and the
marker file ``INCOMPLETE``; the process holds an exclusive lock on the marker (``flock``; the
kernel drops it when the process dies) so a second ``--resume`` cannot write into a run that is
still training. At the end the final files are written (by `write_run`) into a hidden
``.final-*`` folder inside the run, fsynced, moved into place, and the marker is deleted last:
that deletion is the commit. A directory with the marker is incomplete (`nnrecipe.load` refuses
it, ``nnrecipe fit --resume`` continues it); one without it holds every final file, whole.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path

from nnrecipe.config import Config, config_to_dict, save_config
from nnrecipe.errors import UserError
from nnrecipe.recipe.health import write_health_csv
from nnrecipe.run import INCOMPLETE, Run, save_model
from nnrecipe.training.callbacks import History
from nnrecipe.training.checkpoint import (Checkpointer, fsync_dir, latest_checkpoint, load_checkpoint,
                                         prune_checkpoints, save_checkpoint)
from nnrecipe.report.html import write_report
from nnrecipe.report.plots import plot_run

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; resuming one run twice at once is then not caught
    fcntl = None


_PLOTS_AND_REPORT = ContextVar("nnrecipe_plots_and_report", default=True)


@contextmanager
def plots_and_report(enabled: bool):
    """Inside ``with plots_and_report(False):`` `write_run` leaves out plots/ and report.html
    (seconds of matplotlib per fit); the model, metrics and history are written as always. Used by
    the scikit-learn estimators' throw-away runs in a temporary directory (`nnrecipe.sklearn`)."""
    token = _PLOTS_AND_REPORT.set(enabled)
    try:
        yield
    finally:
        _PLOTS_AND_REPORT.reset(token)


def write_history(rows: list[dict], path: Path, columns: tuple[str, ...] | None = None) -> None:
    """history.csv: `History`'s columns, or the fit's own (``train.curvature_every`` adds two)."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or History.columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def require_empty_out(out: str | Path | None) -> None:
    """Refuse an --out that already holds something: a run never overwrites another."""
    if out and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise UserError(f"output directory already exists and is not empty: {out}", "--out",
                        "choose a new directory or remove the old one")


def run_dir_name(out: str | Path | None, cfg: Config, name: str) -> Path:
    if out:
        return Path(out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{name}-{cfg.model.name}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


@contextmanager
def atomic_dir(final: Path):
    """Yield a hidden temporary sibling of `final`; rename it to `final` when the block succeeds,
    delete it when the block raises (an empty `final` left by the caller is replaced)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            final.rmdir()
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_run(run: Run, history_rows: list[dict], cfg: Config, final: Path, *,
              health_rows: list[dict] | None = None, figures: Callable[[Path], None] | None = None,
              columns: tuple[str, ...] | None = None) -> Path:
    """Write every artifact into a temporary sibling directory, then move it into place.
    `figures(tmp)`: a task's own plots, drawn before the report so that it embeds them; `columns`:
    history.csv's extra columns (curvature tracking)."""
    with atomic_dir(final) as tmp:
        save_config(cfg, tmp / "config.yaml")
        write_history(history_rows, tmp / "history.csv", columns)
        write_health_csv(health_rows or [], tmp / "health.csv")
        (tmp / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        save_model(run, tmp)
        if run.predictions:
            (tmp / "predictions.csv").write_text(run.predictions)
        if _PLOTS_AND_REPORT.get():
            if figures is not None:
                figures(tmp)
            plot_run(tmp)
            write_report(tmp)  # report.html: the run's evidence on one self-contained page
    return Path(final)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(folder)


def check_resumable(run_dir: str | Path) -> Path:
    """`run_dir` if it is an incomplete run; a `UserError` saying what it is otherwise."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}", "--resume", "pass the directory of an interrupted fit")
    if not (run_dir / INCOMPLETE).exists():
        if (run_dir / "model.json").exists():
            raise UserError("run is already complete", str(run_dir),
                            f"train a new one with `nnrecipe fit --config {run_dir / 'config.yaml'} --out NEW_DIR`")
        raise UserError("not the directory of an interrupted fit (no INCOMPLETE marker)", str(run_dir),
                        "pass a directory written by `nnrecipe fit`")
    if not (run_dir / "config.yaml").exists():
        raise UserError("incomplete run without config.yaml", str(run_dir), "start the run again")
    return run_dir


class RunInProgress:
    """The directory of a single-model fit that checkpoints while it trains (module docstring).

    Nothing exists until `open` (call it when training starts); `finish` writes the final files
    and commits; `close` releases the lock. Use it as a context manager (``with RunInProgress(...)
    as live:``): leaving the block closes it, and a Ctrl-C after `open` carries ``run_dir`` for the
    CLI's resume hint.
    """

    def __enter__(self) -> RunInProgress:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, KeyboardInterrupt) and self.opened:
            exc.run_dir = self.final  # the CLI says how to continue
        self.close()
        return False

    def __init__(self, final: str | Path, cfg: Config, *, resume: bool = False):
        self.final, self.cfg, self.resume = Path(final), cfg, resume
        self.opened = False
        self._lock = None

    def open(self) -> Path:
        """Create the directory (new run) or take over an incomplete one (resume); return checkpoints/.
        Opening an open run just returns checkpoints/ (ensemble members share one run)."""
        if self.opened:
            return self.final / "checkpoints"
        if self.resume:
            check_resumable(self.final)
        else:
            with atomic_dir(self.final) as tmp:
                save_config(self.cfg, tmp / "config.yaml")
                (tmp / "checkpoints").mkdir()
                (tmp / INCOMPLETE).write_text(
                    "This run has not finished: it is training, or it was interrupted.\n"
                    f"Continue it with: nnrecipe fit --resume {self.final}\n")
                _fsync_tree(tmp)
            fsync_dir(self.final.parent)
        self._take_lock()
        self.opened = True
        for stale in [*self.final.glob(".final-*"), *self.final.glob("..final-*")]:  # an interrupted finish
            shutil.rmtree(stale, ignore_errors=True)
        return self.final / "checkpoints"

    def _take_lock(self) -> None:
        if fcntl is None:
            return
        handle = open(self.final / INCOMPLETE, "rb")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise UserError("run is being trained by another process", str(self.final),
                            "wait for it to finish, or stop it first") from None
        self._lock = handle

    def finish(self, run: Run, history_rows: list[dict], *, health_rows: list[dict] | None = None) -> Path:
        """Write the final files next to checkpoints/ and commit by deleting the INCOMPLETE marker."""
        return self.commit(lambda staging: write_run(run, history_rows, self.cfg, staging, health_rows=health_rows))

    def commit(self, write: Callable[[Path], object]) -> Path:
        """`write(staging)` creates the final files in a new folder; move them in, then commit."""
        staging = self.final / f".final-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            write(staging)
            _fsync_tree(staging)
            for entry in sorted(staging.iterdir()):
                target = self.final / entry.name
                if entry.is_dir() and target.is_dir():  # plots/ of an earlier, interrupted finish
                    shutil.rmtree(target)
                os.replace(entry, target)
            fsync_dir(self.final)
            (self.final / INCOMPLETE).unlink(missing_ok=True)  # the commit: from here on, complete
            fsync_dir(self.final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.final

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None


def open_checkpointer(cfg: Config, live: RunInProgress, *, subdir: str | None = None) -> Checkpointer:
    """Open the run directory (every bad-input check has passed) and read the last checkpoint to resume.
    `subdir`: the checkpoints of one ensemble member, in checkpoints/SUBDIR."""
    directory = live.open() / subdir if subdir else live.open()
    path = latest_checkpoint(directory) if live.resume else None  # None: interrupted before the first one
    return Checkpointer(directory, config=config_to_dict(cfg), every_steps=cfg.train.checkpoint_every_steps,
                        keep=cfg.train.keep_checkpoints, resume=load_checkpoint(path) if path else None,
                        resume_path=path)


class EpochCheckpoints:
    """Per-epoch checkpoints for the fits with their own loops (GAN, word2vec): ``checkpoints/ckpt-EPOCH``
    in the run in progress `live`. Call it with the loop's state after each epoch (it must hold
    "epoch"); `resume` is the last such state when `live` resumes, else None."""

    def __init__(self, cfg: Config, live: RunInProgress):
        self.directory, self.config, self.keep = live.open(), config_to_dict(cfg), cfg.train.keep_checkpoints
        path = latest_checkpoint(self.directory) if live.resume else None
        self.resume = load_checkpoint(path) if path else None
        if self.resume is not None and self.resume.get("config") != self.config:
            raise UserError("config.yaml differs from the checkpoint's", str(path),
                            "put config.yaml back as it was, or start a new run")
        self.elapsed_before = float(self.resume["elapsed_seconds"]) if self.resume else 0.0
        self._clock = time.perf_counter()

    def __call__(self, state: dict) -> None:
        state = {**state, "config": self.config,
                 "elapsed_seconds": self.elapsed_before + time.perf_counter() - self._clock}
        save_checkpoint(self.directory, state["epoch"], state)
        prune_checkpoints(self.directory, keep=self.keep, best=None)
