"""Linear learning-rate warm-up, composable with every schedule in `nnrecipe.training.schedules`.

Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (gradual warm-up):
over the first w steps the LR is multiplied by

    f(step) = s + (1 − s) · step / w      for 0 ≤ step < w,      f(step) = 1 afterwards,

s = ``start_factor``. So the LR rises linearly from s·η₀ at step 0 to η₀ at step w, and the schedule
after it is continuous with the ramp (its curve starts at η₀ at step w).

Step 0 with ``start_factor = 0`` (the default) has LR 0, on purpose: the first optimizer step moves
no weight, but Adam-type optimizers still fold one batch into their moment estimates (and SGD fills
its momentum buffer) before any weight moves. The alternative, (step + 1)/w, was not chosen because
it reaches η₀ one step early and is then not continuous with a curve that starts at step w. Set
``start_factor > 0`` to move the weights from the first step.

w = ``warmup.steps`` if given, else round(``fraction`` · T) capped at T − 1 (so a schedule always
has at least one step of its own); an explicit ``steps ≥ T`` is a configuration error. w = 0: no
warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnrecipe.config import WarmupConfig
from nnrecipe.errors import UserError


@dataclass(frozen=True)
class Warmup:
    steps: int = 0
    start_factor: float = 0.0

    def factor(self, step: int) -> float:
        """f(step) = s + (1 − s)·step/w for step < w, else 1 (multiplies the schedule's LR)."""
        if step >= self.steps:
            return 1.0
        return self.start_factor + (1.0 - self.start_factor) * step / self.steps


def warmup_from_config(cfg: WarmupConfig, *, total_steps: int, default_steps: int | None = None) -> Warmup:
    """Resolve w: ``cfg.steps`` if set, else `default_steps` (a preset's own), else round(fraction·T)."""
    if cfg.steps is not None:
        if cfg.steps >= total_steps:
            raise UserError(f"warm-up of {cfg.steps} steps is not shorter than the run ({total_steps} steps)",
                            "schedule.warmup.steps", "lower it, or use schedule.warmup.fraction")
        steps = cfg.steps
    elif default_steps is not None:
        steps = min(default_steps, total_steps - 1)
    else:
        steps = min(round(cfg.fraction * total_steps), total_steps - 1)
    return Warmup(steps=steps, start_factor=cfg.start_factor)
