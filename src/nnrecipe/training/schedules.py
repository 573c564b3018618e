"""Per-iteration learning-rate schedules: ``lr_at(step)`` is a pure function of the optimizer step.

Why hand-written and not `torch.optim.lr_scheduler`: a resumed run and a ``nnrecipe schedule --csv``
preview must compute bit-identical numbers for the same step. torch's schedulers are stateful
objects advanced by ``.step()``, and several use the recursive ("chainable") form
lr_t = lr_{t−1} · ratio, which accumulates floating-point error and depends on the whole history
of calls. Here every LR is evaluated in closed form from the step alone (timm's ``_get_lr(t)``
idea); the tests still use torch's schedulers as an oracle (rel. tol. 1e-6).

Conventions. η₀ = ``base_lr``, T = ``total_steps`` (steps 0 … T−1), w = warm-up steps
(`nnrecipe.training.warmup`). After warm-up t = step − w counts from the end of warm-up and
T' = T − w, so every decay ends exactly with the run; every step count in a schedule's parameters
(``step_size``, absolute ``milestones``, ``restart_period``, ``cycle_steps``) is counted in t. The
LR is f(step) · curve(t) with f the warm-up factor (1 after warm-up, and t = 0 during it), so the
warm-up composes with every schedule. η_min = ``min_lr_factor`` · η₀. Past the run (step ≥ T) the
LR holds its value at T − 1.

- ``constant``        η₀.
- ``step``            η₀ · γ^⌊t/s⌋ (He et al. 2016, ResNet: ÷10 at fixed points). ``step_size``
                      s unset: s = ⌈T'/3⌉, so the LR drops by γ at 1/3 and 2/3 of the steps after
                      warm-up whatever the run's length (a fixed s longer than the run never decays).
- ``multistep``       η₀ · γ^#{m ∈ milestones : m ≤ t}; milestones are fractions of T' if all < 1
                      (rounded to the nearest step), else steps.
- ``exponential``     η₀ · exp(−κ t).
- ``cosine``          η_min + (η₀ − η_min)/2 · (1 + cos(π t/T')) (Loshchilov & Hutter 2017, SGDR
                      without restarts). Like torch, η_min is reached at t = T', one step after the
                      run; the last step is just above it.
- ``cosine_restarts`` SGDR (Loshchilov & Hutter 2017): periods T_0, T_0·T_mult, T_0·T_mult², …;
                      within each, the cosine above from η₀ to η_min with t_cur, T_i in place of t, T'.
- ``linear``          max(η_min, η₀ · (1 − t/T')).
- ``inverse_sqrt``    η₀ · √w / √(w + t) (Vaswani et al. 2017, "Attention is all you need", eq. 3,
                      normalized so the peak at the end of warm-up is η₀); without warm-up
                      η₀ / √(t + 1).
- ``one_cycle``       Smith & Topin 2019, "Super-Convergence". Here η₀ IS the peak (torch's
                      ``max_lr``; ``max_lr_factor`` is not used): cosine rise from η₀/25 to η₀ over
                      the first pct_start·T' steps, then cosine annealing to
                      max(η₀/(25·10⁴), η_min). torch's OneCycleLR with div_factor=25,
                      final_div_factor=1e4, anneal_strategy='cos', three_phase=False, step for step.
- ``cyclic``          Smith 2017, "Cyclical Learning Rates for Training Neural Networks": triangle
                      between η₀ and ``max_lr_factor``·η₀, C = ``cycle_steps`` (⌊C/2⌋ up, the rest
                      down); ``triangular2`` halves the amplitude every cycle, ``exp_range`` scales
                      it by γ^t (use γ close to 1, e.g. 0.9999; the shared default 0.1 flattens it
                      after a few steps).
- ``plateau``         max(η_min, η₀ · factor^k), k = reductions so far; `observe(val_loss)` once an
                      epoch raises k when the loss has not improved by a relative 1e-4 for more
                      than ``plateau_patience`` epochs (torch's ReduceLROnPlateau, mode 'min',
                      threshold_mode 'rel', cooldown 0). Its counters are its `state_dict`.
- ``deepseek``        DeepSeek-AI 2024, "DeepSeek LLM" multi-step schedule: warm-up over 2000 steps
                      (``warmup.steps`` overrides it; if T ≤ 2000 it is scaled down to
                      round(0.1·T)), then η₀, ×0.316 from step 0.8·T and ×0.316² from 0.9·T.
                      The drops are placed in absolute steps of the whole run (not in t), so for
                      2000 < T < 2500 the warm-up overlaps the first drop and the factors multiply.

For ``one_cycle`` and ``cyclic``, which have their own rise, a configured warm-up still multiplies
in front: it ramps from start_factor·curve(0) to curve(0) (η₀/25 for one_cycle, η₀ for cyclic) and
the cycle starts after it; set ``schedule.warmup.fraction=0`` to use their own rise alone.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable

from nnrecipe.config import ScheduleConfig
from nnrecipe.errors import UserError
from nnrecipe.training.warmup import Warmup, warmup_from_config

Curve = Callable[[int], float]  # t (or the absolute step, see `warmup_prefix`) -> LR

ONE_CYCLE_DIV = 25.0  # initial LR = peak / 25 (torch OneCycleLR div_factor)
ONE_CYCLE_FINAL_DIV = 1e4  # final LR = initial / 1e4 (final_div_factor)
PLATEAU_THRESHOLD = 1e-4  # relative improvement that counts (ReduceLROnPlateau threshold, 'rel')
DEEPSEEK_WARMUP = 2000
DEEPSEEK_DROP = 0.316  # "31.6% of the maximum", then ×0.316 again ≈ 10% (DeepSeek LLM)


class Schedule:
    """LR of step `step` = warm-up factor(step) · curve(t); pure, so it needs no state."""

    def __init__(self, name: str, *, base_lr: float, total_steps: int, warmup: Warmup, curve: Curve,
                 warmup_prefix: bool = True):
        self.name, self.base_lr, self.total_steps = name, base_lr, total_steps
        self.warmup, self.curve = warmup, curve
        # True: the curve sees t = step − w (starts after warm-up); False: the absolute step.
        self.warmup_prefix = warmup_prefix

    def lr_at(self, step: int) -> float:
        step = operator.index(step)
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        step = min(step, self.total_steps - 1)  # hold the last value past the run
        t = max(step - self.warmup.steps, 0) if self.warmup_prefix else step
        return self.warmup.factor(step) * self.curve(t)

    def observe(self, val_loss: float) -> None:
        del val_loss  # only `plateau` reacts to the validation loss

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"schedule '{self.name}' has no state, got keys {sorted(state)}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, base_lr={self.base_lr}, total_steps={self.total_steps}, "
                f"warmup_steps={self.warmup.steps})")


class PlateauSchedule(Schedule):
    """max(η_min, η₀ · factor^k); `observe` counts epochs without a relative 1e-4 improvement."""

    def __init__(self, *, base_lr: float, total_steps: int, warmup: Warmup, factor: float, patience: int,
                 min_lr: float):
        super().__init__("plateau", base_lr=base_lr, total_steps=total_steps, warmup=warmup, curve=self._curve)
        self.factor, self.patience, self.min_lr = factor, patience, min_lr
        self.best: float | None = None  # None, not inf: the state must be strict JSON
        self.num_bad_epochs = 0
        self.reductions = 0

    def _curve(self, t: int) -> float:
        del t
        return max(self.min_lr, self.base_lr * self.factor**self.reductions)

    def observe(self, val_loss: float) -> None:
        val_loss = float(val_loss)  # a NaN/Inf loss is a bad epoch, never the best (state stays JSON)
        if math.isfinite(val_loss) and (self.best is None or val_loss < self.best * (1.0 - PLATEAU_THRESHOLD)):
            self.best, self.num_bad_epochs = val_loss, 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > self.patience:
            self.reductions += 1
            self.num_bad_epochs = 0

    def state_dict(self) -> dict:
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs, "reductions": self.reductions}

    def load_state_dict(self, state: dict) -> None:
        missing = {"best", "num_bad_epochs", "reductions"} - set(state)
        if missing:
            raise ValueError(f"plateau state lacks {sorted(missing)}")
        self.best = None if state["best"] is None else float(state["best"])
        self.num_bad_epochs, self.reductions = int(state["num_bad_epochs"]), int(state["reductions"])


# Curves: (cfg, lr=η₀, steps=T', warmup_steps=w) -> t ↦ LR.

def _constant(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    return lambda t: lr


def _step(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    size = cfg.step_size if cfg.step_size is not None else max(1, -(-steps // 3))
    return lambda t: lr * cfg.gamma ** (t // size)


def _milestone_steps(milestones: tuple[float, ...], steps: int) -> list[int]:
    if any(m < 0 for m in milestones):
        raise UserError(f"negative milestone in {list(milestones)}", "schedule.milestones",
                        "give fractions of the run in (0, 1) or step counts")
    if all(m < 1 for m in milestones):
        return sorted(round(m * steps) for m in milestones)
    if any(m < 1 for m in milestones):
        raise UserError(f"milestones {list(milestones)} mix fractions (< 1) and steps", "schedule.milestones",
                        "give all as fractions of the run or all as step counts")
    return sorted(round(m) for m in milestones)


def _multistep(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    marks = _milestone_steps(cfg.milestones, steps)
    return lambda t: lr * cfg.gamma ** sum(m <= t for m in marks)


def _exponential(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    return lambda t: lr * math.exp(-cfg.decay * t)


def _cosine_between(high: float, low: float, t: float, period: float) -> float:
    return low + (high - low) / 2 * (1 + math.cos(math.pi * t / period))


def _cosine(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    return lambda t: _cosine_between(lr, cfg.min_lr_factor * lr, t, steps)


def _cosine_restarts(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    t0, mult = cfg.restart_period, cfg.restart_mult

    def curve(t: int) -> float:
        if mult == 1:
            t_cur, period = t % t0, t0
        else:  # integer walk over the periods (log_mult(t) of them), exact where a float log is not
            t_cur, period = t, t0
            while t_cur >= period:
                t_cur, period = t_cur - period, period * mult
        return _cosine_between(lr, cfg.min_lr_factor * lr, t_cur, period)

    return curve


def _linear(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    return lambda t: max(cfg.min_lr_factor * lr, lr * (1 - t / steps))


def _inverse_sqrt(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    w = max(warmup_steps, 1)  # no warm-up: η₀/√(t+1), the same formula with w = 1
    return lambda t: lr * math.sqrt(w / (w + t))  # exactly η₀ at t = 0


def _one_cycle(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    initial = lr / ONE_CYCLE_DIV
    final = max(initial / ONE_CYCLE_FINAL_DIV, cfg.min_lr_factor * lr)
    rise_end = cfg.pct_start * steps - 1  # a float step, exactly as torch's OneCycleLR places it

    def curve(t: int) -> float:
        if t <= rise_end:
            pct = t / rise_end if rise_end > 0 else 1.0
            return _cosine_between(initial, lr, pct, 1.0)
        return _cosine_between(lr, final, (t - rise_end) / (steps - 1 - rise_end), 1.0)

    return curve


def _cyclic(cfg: ScheduleConfig, *, lr: float, steps: int, warmup_steps: int) -> Curve:
    cycle = cfg.cycle_steps
    up = cycle // 2
    height = (cfg.max_lr_factor - 1) * lr
    amplitude = {"triangular": lambda t: 1.0, "triangular2": lambda t: 0.5 ** (t // cycle),
                 "exp_range": lambda t: cfg.gamma**t}[cfg.cyclic_mode]

    def curve(t: int) -> float:
        pos = t % cycle
        frac = pos / up if pos <= up else (cycle - pos) / (cycle - up)
        return lr + height * frac * amplitude(t)

    return curve


def _pure(name: str, make_curve: Callable[..., Curve]) -> Callable[..., Schedule]:
    def build(cfg: ScheduleConfig, *, base_lr: float, total_steps: int) -> Schedule:
        warmup = warmup_from_config(cfg.warmup, total_steps=total_steps)
        curve = make_curve(cfg, lr=base_lr, steps=total_steps - warmup.steps, warmup_steps=warmup.steps)
        return Schedule(name, base_lr=base_lr, total_steps=total_steps, warmup=warmup, curve=curve)

    build.__name__ = f"build_{name}"
    return build


def _build_plateau(cfg: ScheduleConfig, *, base_lr: float, total_steps: int) -> Schedule:
    return PlateauSchedule(base_lr=base_lr, total_steps=total_steps,
                           warmup=warmup_from_config(cfg.warmup, total_steps=total_steps),
                           factor=cfg.plateau_factor, patience=cfg.plateau_patience,
                           min_lr=cfg.min_lr_factor * base_lr)


def _build_deepseek(cfg: ScheduleConfig, *, base_lr: float, total_steps: int) -> Schedule:
    default = DEEPSEEK_WARMUP if total_steps > DEEPSEEK_WARMUP else round(0.1 * total_steps)
    warmup = warmup_from_config(cfg.warmup, total_steps=total_steps, default_steps=default)

    def curve(step: int) -> float:  # integer comparisons: step ≥ 0.8·T exactly, no float rounding
        return base_lr * DEEPSEEK_DROP ** ((10 * step >= 8 * total_steps) + (10 * step >= 9 * total_steps))

    return Schedule("deepseek", base_lr=base_lr, total_steps=total_steps, warmup=warmup, curve=curve,
                    warmup_prefix=False)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": _pure("constant", _constant),
    "step": _pure("step", _step),
    "multistep": _pure("multistep", _multistep),
    "exponential": _pure("exponential", _exponential),
    "cosine": _pure("cosine", _cosine),
    "cosine_restarts": _pure("cosine_restarts", _cosine_restarts),
    "linear": _pure("linear", _linear),
    "inverse_sqrt": _pure("inverse_sqrt", _inverse_sqrt),
    "one_cycle": _pure("one_cycle", _one_cycle),
    "cyclic": _pure("cyclic", _cyclic),
    "plateau": _build_plateau,
    "deepseek": _build_deepseek,
}


def build_schedule(cfg: ScheduleConfig, *, base_lr: float, total_steps: int) -> Schedule:
    """The schedule named ``cfg.name`` for a run of `total_steps` optimizer steps peaking at `base_lr`."""
    if isinstance(total_steps, bool) or not hasattr(total_steps, "__index__") or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1, got {total_steps!r}")
    total_steps = operator.index(total_steps)  # numpy ints too
    if not (isinstance(base_lr, (int, float)) and math.isfinite(base_lr) and base_lr > 0):
        raise ValueError(f"base_lr must be a finite number > 0, got {base_lr!r}")
    if cfg.name == "auto":  # without a model to decide (config.schedule_name does), the general default
        cfg = cfg.model_copy(update={"name": "cosine"})
    try:
        builder = SCHEDULES[cfg.name]
    except KeyError:
        match = difflib.get_close_matches(cfg.name, list(SCHEDULES), n=1, cutoff=0.5)
        fix = f"did you mean '{match[0]}'?" if match else f"choose one of {', '.join(SCHEDULES)}"
        raise UserError(f"unknown schedule '{cfg.name}'", "schedule.name", fix) from None
    return builder(cfg, base_lr=float(base_lr), total_steps=total_steps)


def schedule_table(schedule: Schedule, steps: int) -> list[float]:
    """[lr_at(0), …, lr_at(steps − 1)]: the numbers a preview prints and the training loop uses."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    return [schedule.lr_at(step) for step in range(steps)]
