"""Writing a run directory atomically: every file goes into a hidden temporary sibling, which is
renamed into place (one ``os.rename``) only when complete, so a failure leaves nothing behind."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from nnrecipe.config import Config, save_config
from nnrecipe.errors import UserError
from nnrecipe.recipe.health import write_health_csv
from nnrecipe.run import Run, save_model
from nnrecipe.training.callbacks import History


def write_history(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=History.columns)
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
              health_rows: list[dict] | None = None) -> Path:
    """Write every artifact into a temporary sibling directory, then move it into place."""
    from nnrecipe.report.plots import plot_run

    with atomic_dir(final) as tmp:
        save_config(cfg, tmp / "config.yaml")
        write_history(history_rows, tmp / "history.csv")
        write_health_csv(health_rows or [], tmp / "health.csv")
        (tmp / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        save_model(run, tmp)
        if run.predictions:
            (tmp / "predictions.csv").write_text(run.predictions)
        plot_run(tmp)
    return Path(final)
