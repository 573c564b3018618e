"""LR schedules against their closed forms (written out here by hand) and torch's schedulers."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from torch.optim import lr_scheduler as L

from nnrecipe.config import ScheduleConfig, WarmupConfig
from nnrecipe.errors import UserError
from nnrecipe.training.schedules import SCHEDULES, build_schedule, schedule_table

LR = 0.1
T = 1000
NO_WARMUP = WarmupConfig(fraction=0.0)

# Settings that make each schedule's features show inside T = 1000 steps.
SETTINGS: dict[str, dict] = {
    "step": {"step_size": 70, "gamma": 0.5},
    "multistep": {"milestones": (0.3, 0.6), "gamma": 0.5},
    "exponential": {"decay": 3e-3},
    "cosine": {"min_lr_factor": 0.05},
    "cosine_restarts": {"restart_period": 50, "restart_mult": 2, "min_lr_factor": 0.05},
    "linear": {"min_lr_factor": 0.1},
    "one_cycle": {"pct_start": 0.3},
    "cyclic": {"cycle_steps": 60, "max_lr_factor": 4.0},
}
WARMUPS = {
    "none": NO_WARMUP,
    "fraction": WarmupConfig(fraction=0.1),  # w = 100
    "steps": WarmupConfig(steps=37, fraction=0.5, start_factor=0.2),  # steps wins over fraction
}


def _cfg(name: str, warmup: WarmupConfig = NO_WARMUP, **extra) -> ScheduleConfig:
    return ScheduleConfig(name=name, warmup=warmup, **{**SETTINGS.get(name, {}), **extra})


# --- closed forms, written from the README formulas (no calls into the module under test) --------

def _warmup_steps(c: ScheduleConfig, total: int) -> int:
    if c.warmup.steps is not None:
        return c.warmup.steps
    return min(round(c.warmup.fraction * total), total - 1)


def _ramp(step: int, w: int, s: float) -> float:
    return 1.0 if step >= w else s + (1 - s) * step / w


def _cos(high: float, low: float, x: float) -> float:  # x in [0, 1]
    return low + (high - low) * (1 + math.cos(math.pi * x)) / 2


def _multistep(t, Tp, w, c, lr):
    ms = c.milestones
    marks = [round(m * Tp) for m in ms] if all(m < 1 for m in ms) else [round(m) for m in ms]
    return lr * c.gamma ** len([m for m in marks if m <= t])


def _restarts(t, Tp, w, c, lr):
    T0, k = c.restart_period, c.restart_mult
    n = 0  # period index: the first n whose cumulative end T0·(1 + k + … + kⁿ) exceeds t
    while T0 * sum(k**i for i in range(n + 1)) <= t:
        n += 1
    start = T0 * sum(k**i for i in range(n))
    return _cos(lr, c.min_lr_factor * lr, (t - start) / (T0 * k**n))


def _one_cycle(t, Tp, w, c, lr):
    initial, final = lr / 25, max(lr / 25 / 1e4, c.min_lr_factor * lr)
    peak_at = c.pct_start * Tp - 1
    if t <= peak_at:
        return _cos(initial, lr, t / peak_at)
    return _cos(lr, final, (t - peak_at) / (Tp - 1 - peak_at))


def _cyclic(t, Tp, w, c, lr):  # Smith 2017, the x-form of his reference code
    C = c.cycle_steps
    cycle = math.floor(1 + t / C)
    x = 1 + t / C - cycle
    ratio = (C // 2) / C
    scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    amp = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": c.gamma**t}[c.cyclic_mode]
    return lr + (c.max_lr_factor * lr - lr) * scale * amp


AFTER_WARMUP = {  # (t, T' = T − w, w, cfg, η₀) -> LR
    "constant": lambda t, Tp, w, c, lr: lr,
    "step": lambda t, Tp, w, c, lr: lr * c.gamma ** math.floor(t / c.step_size),
    "multistep": _multistep,
    "exponential": lambda t, Tp, w, c, lr: lr * math.exp(-c.decay * t),
    "cosine": lambda t, Tp, w, c, lr: _cos(lr, c.min_lr_factor * lr, t / Tp),
    "cosine_restarts": _restarts,
    "linear": lambda t, Tp, w, c, lr: max(c.min_lr_factor * lr, lr * (1 - t / Tp)),
    "inverse_sqrt": lambda t, Tp, w, c, lr: lr * math.sqrt(w) / math.sqrt(w + t) if w else lr / math.sqrt(t + 1),
    "one_cycle": _one_cycle,
    "cyclic": _cyclic,
    "plateau": lambda t, Tp, w, c, lr: lr,  # nothing observed yet: k = 0
}


def _deepseek(step: int, c: ScheduleConfig, lr: float, total: int) -> float:
    w = c.warmup.steps if c.warmup.steps is not None else (2000 if total > 2000 else round(0.1 * total))
    drops = (step >= 0.8 * total) + (step >= 0.9 * total)
    return _ramp(step, w, c.warmup.start_factor) * lr * 0.316**drops


def closed_form(name: str, step: int, c: ScheduleConfig, lr: float, total: int) -> float:
    if name == "deepseek":
        return _deepseek(step, c, lr, total)
    w = _warmup_steps(c, total)
    return _ramp(step, w, c.warmup.start_factor) * AFTER_WARMUP[name](max(step - w, 0), total - w, w, c, lr)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


# --- every registered schedule equals its closed form ---------------------------------------------

def test_every_registered_schedule_has_a_closed_form_here():
    missing = set(SCHEDULES) - set(AFTER_WARMUP) - {"deepseek"}
    assert not missing, f"write the closed form of {sorted(missing)} in this file"


@pytest.mark.parametrize("warmup", WARMUPS.values(), ids=WARMUPS.keys())
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_matches_closed_form_at_every_step(name, warmup):
    # Every step covers step 0, the warm-up edges w−1, w, w+1, each milestone ±1 and T−1.
    c = _cfg(name, warmup)
    s = build_schedule(c, base_lr=LR, total_steps=T)
    table = schedule_table(s, T)
    bad = [(i, got, closed_form(name, i, c, LR, T)) for i, got in enumerate(table)
           if not _close(got, closed_form(name, i, c, LR, T))]
    assert not bad, f"{name}: first mismatches (step, got, want) {bad[:3]}"
    assert table == [s.lr_at(i) for i in reversed(range(T))][::-1]  # pure: call order is irrelevant
    assert s.lr_at(T + 50) == table[-1]  # past the run: holds the last value


@pytest.mark.parametrize(("name", "extra"), [
    ("multistep", {"milestones": (300, 650)}),
    ("multistep", {"milestones": ()}),
    ("cosine_restarts", {"restart_mult": 1}),
    ("cyclic", {"cyclic_mode": "triangular2"}),
    ("cyclic", {"cyclic_mode": "exp_range", "gamma": 0.999}),
    ("cyclic", {"cycle_steps": 61}),  # odd cycle: 30 up, 31 down
    ("one_cycle", {"min_lr_factor": 0.01, "pct_start": 0.25}),
    ("linear", {"min_lr_factor": 0.0}),
    ("cosine", {"min_lr_factor": 0.0}),
    ("step", {"step_size": 1}),
])
@pytest.mark.parametrize("warmup", WARMUPS.values(), ids=WARMUPS.keys())
def test_variants_match_closed_form(name, extra, warmup):
    c = _cfg(name, warmup, **extra)
    table = schedule_table(build_schedule(c, base_lr=LR, total_steps=T), T)
    assert all(_close(got, closed_form(name, i, c, LR, T)) for i, got in enumerate(table))


# --- anchors: literal values at the points that matter --------------------------------------------

def test_anchor_values():
    def lr(name, step, **kw):
        return build_schedule(_cfg(name, **kw), base_lr=LR, total_steps=T).lr_at(step)

    assert lr("step", 69) == LR and lr("step", 70) == LR * 0.5 and lr("step", 140) == LR * 0.25
    assert lr("multistep", 299) == LR and lr("multistep", 300) == LR * 0.5 and lr("multistep", 600) == LR * 0.25
    assert lr("multistep", 649, milestones=(300, 650)) == LR * 0.5
    assert lr("multistep", 650, milestones=(300, 650)) == LR * 0.25
    assert lr("cosine", 0) == LR and lr("cosine", 500) == pytest.approx((LR + 0.005) / 2)
    assert lr("cosine_restarts", 49) < 0.01 and lr("cosine_restarts", 50) == LR  # restart after T_0
    assert lr("cosine_restarts", 149) < 0.01 and lr("cosine_restarts", 150) == LR  # then after 2·T_0
    assert lr("linear", 500) == pytest.approx(LR / 2) and lr("linear", 950) == pytest.approx(0.1 * LR)  # floor
    assert lr("inverse_sqrt", 0) == LR and lr("inverse_sqrt", 3) == pytest.approx(LR / 2)
    assert lr("one_cycle", 0) == pytest.approx(LR / 25) and lr("one_cycle", 299) == pytest.approx(LR)
    assert lr("one_cycle", T - 1) == pytest.approx(LR / 25 / 1e4, rel=1e-3)
    assert lr("cyclic", 0) == LR and lr("cyclic", 30) == pytest.approx(4 * LR) and lr("cyclic", 60) == LR


@pytest.mark.parametrize("total,warmup", [(90, 0), (100, 10), (7, 0), (20000, 500)])
def test_step_without_a_step_size_decays_at_a_third_and_two_thirds_of_the_run(total, warmup):
    cfg = ScheduleConfig(name="step", warmup=WarmupConfig(steps=warmup))
    sched = build_schedule(cfg, base_lr=1.0, total_steps=total)
    size = math.ceil((total - warmup) / 3)
    drops = [s for s in range(warmup + 1, total) if sched.lr_at(s) < sched.lr_at(s - 1)]
    assert drops == [warmup + size, warmup + 2 * size]
    assert sched.lr_at(total - 1) == pytest.approx(0.01)  # γ² by the end: every run decays twice
    given = max(2, total // 5)  # an absolute step_size is kept
    fixed = build_schedule(cfg.model_copy(update={"step_size": given}), base_lr=1.0, total_steps=total)
    assert [s for s in range(warmup + 1, total) if fixed.lr_at(s) < fixed.lr_at(s - 1)] == \
        list(range(warmup + given, total, given))


def test_inverse_sqrt_is_continuous_with_the_warmup_peak():
    s = build_schedule(_cfg("inverse_sqrt", WarmupConfig(steps=400)), base_lr=LR, total_steps=T)
    assert s.lr_at(399) == pytest.approx(LR * 399 / 400) and s.lr_at(400) == LR
    assert s.lr_at(900) == pytest.approx(LR * math.sqrt(400 / 900))  # ∝ 1/√step


# --- warm-up ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(set(SCHEDULES) - {"deepseek"}))
def test_warmup_composes_with_every_schedule(name):
    c = _cfg(name, WarmupConfig(steps=40, start_factor=0.25))
    s = build_schedule(c, base_lr=LR, total_steps=T)
    top = LR / 25 if name == "one_cycle" else LR  # the curve's value at its own t = 0
    for step in (0, 1, 20, 39):
        assert s.lr_at(step) == pytest.approx(top * (0.25 + 0.75 * step / 40), rel=1e-12)
    assert s.lr_at(40) == pytest.approx(top, rel=1e-12)  # the curve starts at w
    if name == "inverse_sqrt":
        return  # its curve depends on w itself (√w/√step); see the test above
    no_warmup = build_schedule(_cfg(name), base_lr=LR, total_steps=T - 40)  # the same curve, shifted by w
    assert [s.lr_at(40 + t) for t in range(0, T - 40, 13)] == [no_warmup.lr_at(t) for t in range(0, T - 40, 13)]


def test_warmup_start_factor_zero_skips_the_first_update():
    s = build_schedule(_cfg("constant", WarmupConfig(steps=10)), base_lr=LR, total_steps=T)
    assert s.lr_at(0) == 0.0  # deliberate: the optimizer's moments see one batch before weights move
    assert s.lr_at(1) == pytest.approx(LR / 10) and s.lr_at(9) == pytest.approx(0.9 * LR) and s.lr_at(10) == LR


def test_warmup_fraction_is_rounded_and_capped():
    def w(warmup, total):
        return build_schedule(_cfg("cosine", warmup), base_lr=LR, total_steps=total).warmup.steps

    assert w(WarmupConfig(fraction=0.05), T) == 50
    assert w(WarmupConfig(fraction=0.9), 1) == 0  # capped at T − 1
    assert w(WarmupConfig(steps=0, fraction=0.5), T) == 0  # explicit 0 wins over the fraction


# --- deepseek --------------------------------------------------------------------------------------

def test_deepseek_preset():
    total = 10_000
    s = build_schedule(ScheduleConfig(name="deepseek"), base_lr=LR, total_steps=total)  # fraction 0.05 ignored
    expected = {0: 0.0, 1999: LR * 1999 / 2000, 2000: LR, 7999: LR, 8000: LR * 0.316, 8999: LR * 0.316,
                9000: LR * 0.316**2, total - 1: LR * 0.316**2}
    assert {k: s.lr_at(k) for k in expected} == pytest.approx(expected, rel=1e-12)


def test_deepseek_short_run_and_override():
    short = build_schedule(ScheduleConfig(name="deepseek"), base_lr=LR, total_steps=1500)
    assert short.warmup.steps == 150 and short.lr_at(150) == LR and short.lr_at(1199) == LR
    assert short.lr_at(1200) == pytest.approx(LR * 0.316)
    given = build_schedule(ScheduleConfig(name="deepseek", warmup=WarmupConfig(steps=500)), base_lr=LR,
                           total_steps=10_000)
    assert given.lr_at(499) == pytest.approx(LR * 499 / 500) and given.lr_at(500) == LR


# --- plateau ---------------------------------------------------------------------------------------

def test_plateau_observe_sequence():
    s = build_schedule(ScheduleConfig(name="plateau", warmup=NO_WARMUP, plateau_patience=2, plateau_factor=0.5),
                       base_lr=LR, total_steps=T)
    lrs = []
    for loss in [1.0, 0.9, 0.9, 0.9, 0.9,  # 3 epochs without improvement > patience 2: ×0.5
                 0.89995,  # better by 5.6e-5 relative < 1e-4: does not count as an improvement
                 0.5, 0.5, 0.5, 0.6]:  # new best, then 3 bad epochs: ×0.5 again
        s.observe(loss)
        lrs.append(s.lr_at(123))
    assert lrs == [LR] * 4 + [LR / 2] * 5 + [LR / 4]
    assert s.state_dict() == {"best": 0.5, "num_bad_epochs": 0, "reductions": 2}
    s.observe(math.nan)  # a bad epoch, never the best
    assert s.state_dict() == {"best": 0.5, "num_bad_epochs": 1, "reductions": 2}


def test_plateau_floor_and_torch_oracle():
    rng = random.Random(0)
    losses = [1 / (1 + 0.1 * i) + rng.uniform(0, 0.3) for i in range(200)]
    c = ScheduleConfig(name="plateau", warmup=NO_WARMUP, plateau_patience=3, plateau_factor=0.5)
    s = build_schedule(c, base_lr=LR, total_steps=T)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    ref = L.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=3, threshold=1e-4, threshold_mode="rel", eps=0)
    for loss in losses:
        s.observe(loss)
        ref.step(loss)
        assert s.lr_at(0) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
    floored = build_schedule(c.model_copy(update={"min_lr_factor": 0.3}), base_lr=LR, total_steps=T)
    for loss in [1.0] * 50:
        floored.observe(loss)
    assert floored.lr_at(0) == pytest.approx(0.3 * LR)


# --- state_dict round trip -------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_state_dict_round_trip(name):
    c = _cfg(name, WARMUPS["fraction"], plateau_patience=1)
    s = build_schedule(c, base_lr=LR, total_steps=T)
    for loss in [1.0, 1.0, 1.0, 0.5, 0.7]:
        s.observe(loss)
    state = json.loads(json.dumps(s.state_dict(), allow_nan=False))  # strict JSON
    resumed = build_schedule(c, base_lr=LR, total_steps=T)
    resumed.load_state_dict(state)
    assert schedule_table(resumed, T) == schedule_table(s, T)  # bit-identical
    for loss in [0.7, 0.7, 0.4]:
        s.observe(loss)
        resumed.observe(loss)
        assert resumed.state_dict() == s.state_dict() and resumed.lr_at(500) == s.lr_at(500)


def test_pure_schedules_reject_foreign_state():
    with pytest.raises(ValueError):
        build_schedule(_cfg("cosine"), base_lr=LR, total_steps=T).load_state_dict({"reductions": 1})
    with pytest.raises(ValueError):
        build_schedule(_cfg("plateau"), base_lr=LR, total_steps=T).load_state_dict({})


# --- torch.optim.lr_scheduler as an oracle ---------------------------------------------------------

N = 400
ORACLES = {  # (our config, torch scheduler factory); no warm-up
    "step": ({"step_size": 37, "gamma": 0.7}, lambda o, c: L.StepLR(o, step_size=37, gamma=0.7)),
    "multistep": ({"milestones": (50, 120, 121, 300), "gamma": 0.5},
                  lambda o, c: L.MultiStepLR(o, milestones=[50, 120, 121, 300], gamma=0.5)),
    "exponential": ({"decay": 5e-3}, lambda o, c: L.ExponentialLR(o, gamma=math.exp(-5e-3))),
    "cosine": ({"min_lr_factor": 0.1}, lambda o, c: L.CosineAnnealingLR(o, T_max=N, eta_min=0.1 * LR)),
    "cosine_restarts": ({"restart_period": 30, "restart_mult": 2, "min_lr_factor": 0.02},
                        lambda o, c: L.CosineAnnealingWarmRestarts(o, T_0=30, T_mult=2, eta_min=0.02 * LR)),
    "cosine_restarts_mult1": ({"restart_period": 45, "restart_mult": 1},
                              lambda o, c: L.CosineAnnealingWarmRestarts(o, T_0=45, T_mult=1)),
    "linear": ({}, lambda o, c: L.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=N)),
    "one_cycle": ({"pct_start": 0.3}, lambda o, c: L.OneCycleLR(
        o, max_lr=LR, total_steps=N, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
        final_div_factor=1e4, three_phase=False, cycle_momentum=False)),
    "cyclic": ({"cycle_steps": 50, "max_lr_factor": 6.0}, lambda o, c: L.CyclicLR(
        o, base_lr=LR, max_lr=6 * LR, step_size_up=25, step_size_down=25, cycle_momentum=False)),
    "cyclic_triangular2": ({"cycle_steps": 51, "cyclic_mode": "triangular2"}, lambda o, c: L.CyclicLR(
        o, base_lr=LR, max_lr=10 * LR, step_size_up=25, step_size_down=26, mode="triangular2",
        cycle_momentum=False)),
    "cyclic_exp_range": ({"cycle_steps": 40, "cyclic_mode": "exp_range", "gamma": 0.995}, lambda o, c: L.CyclicLR(
        o, base_lr=LR, max_lr=10 * LR, step_size_up=20, mode="exp_range", gamma=0.995, cycle_momentum=False)),
}


@pytest.mark.parametrize("case", ORACLES)
def test_matches_torch_scheduler(case):
    settings, make = ORACLES[case]
    name = case.split("_mult1")[0].removesuffix("_triangular2").removesuffix("_exp_range")
    c = ScheduleConfig(name=name, warmup=NO_WARMUP, **settings)
    ours = schedule_table(build_schedule(c, base_lr=LR, total_steps=N), N)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    sched = make(opt, c)
    theirs = []
    for _ in range(N):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-12 * LR)


def test_warmup_matches_torch_sequential():
    c = ScheduleConfig(name="cosine", warmup=WarmupConfig(steps=50, start_factor=0.1))
    ours = schedule_table(build_schedule(c, base_lr=LR, total_steps=N), N)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    sched = L.SequentialLR(opt, [L.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=50),
                                 L.CosineAnnealingLR(opt, T_max=N - 50)], milestones=[50])
    theirs = []
    for _ in range(N):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-12 * LR)


# --- bad inputs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("total_steps", [0, -5, 2.5, True, None])
def test_bad_total_steps(total_steps):
    with pytest.raises(ValueError):
        build_schedule(ScheduleConfig(), base_lr=LR, total_steps=total_steps)


@pytest.mark.parametrize("base_lr", [0.0, -1e-3, math.nan, math.inf])
def test_bad_base_lr(base_lr):
    with pytest.raises(ValueError):
        build_schedule(ScheduleConfig(), base_lr=base_lr, total_steps=T)


def test_config_errors_name_the_key():
    with pytest.raises(UserError, match="did you mean 'cosine'"):
        build_schedule(ScheduleConfig(name="cosin"), base_lr=LR, total_steps=T)
    with pytest.raises(UserError, match="warm-up"):
        build_schedule(ScheduleConfig(warmup=WarmupConfig(steps=T)), base_lr=LR, total_steps=T)
    with pytest.raises(UserError, match="mix"):
        build_schedule(ScheduleConfig(name="multistep", milestones=(0.5, 300)), base_lr=LR, total_steps=T)
    with pytest.raises(UserError, match="negative"):
        build_schedule(ScheduleConfig(name="multistep", milestones=(-1, 300)), base_lr=LR, total_steps=T)


def test_bad_steps():
    s = build_schedule(ScheduleConfig(), base_lr=LR, total_steps=T)
    with pytest.raises(ValueError):
        s.lr_at(-1)
    with pytest.raises(TypeError):
        s.lr_at(1.5)
    with pytest.raises(ValueError):
        schedule_table(s, -1)
    assert schedule_table(s, 0) == []


def test_one_step_run():
    for name in SCHEDULES:
        lr = build_schedule(ScheduleConfig(name=name), base_lr=LR, total_steps=1).lr_at(0)
        assert math.isfinite(lr) and lr >= 0
