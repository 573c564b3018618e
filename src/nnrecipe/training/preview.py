"""Preview an LR schedule before training: the very numbers `fit` will set, step by step.

`preview_schedule` resolves the configuration exactly as `fit` does (file < --set overrides) and
evaluates the schedule's pure `lr_at(step)` for every step 0…N−1.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nnrecipe.config import resolve_config, schedule_name
from nnrecipe.training.schedules import build_schedule, schedule_table
from nnrecipe.training.setup import initial_lr


def preview_schedule(name: str, *, steps: int, lr: float | None = None, overrides: list[str] | None = None,
                     config: str | Path | None = None) -> list[float]:
    """LRs for steps 0…steps−1 of schedule `name`; η₀ is `lr`, else the one `fit` computes
    (`nnrecipe.training.setup.initial_lr`: optimizer.lr or its default, scaled as the config says)."""
    cfg = resolve_config(file=config, overrides=[f"schedule.name={name}", *(overrides or [])])
    base = lr or initial_lr(cfg)
    spec = cfg.schedule.model_copy(update={"name": schedule_name(cfg)})
    return schedule_table(build_schedule(spec, base_lr=base, total_steps=steps), steps)


def key_steps(lrs: list[float], count: int = 11) -> list[int]:
    """Evenly spaced steps plus the first, the last and the peak: what a table of LRs should show."""
    n = len(lrs)
    picks = {0, n - 1, max(range(n), key=lrs.__getitem__)}
    picks.update(min(n - 1, round(i * n / (count - 1))) for i in range(count))
    return sorted(picks)


def write_schedule_csv(lrs: list[float], path: str | Path) -> None:
    with Path(path).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "lr"])
        writer.writerows((step, repr(lr)) for step, lr in enumerate(lrs))
