"""Check each ``d2lkit.sched`` schedule step by step against ``torch.optim.lr_scheduler``."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch.optim import lr_scheduler

from d2lkit import sched

TorchScheduler = lr_scheduler.LRScheduler


def torch_lrs(
    make: Callable[[torch.optim.Optimizer], TorchScheduler], base_lr: float, steps: int
) -> list[float]:
    """Return the learning rate torch's scheduler sets for steps ``0 .. steps - 1``."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def assert_matches(schedule: sched.Schedule, expected: list[float]) -> None:
    ours = [schedule(t) for t in range(len(expected))]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_constant():
    assert_matches(sched.constant(0.3), torch_lrs(lambda o: lr_scheduler.ConstantLR(
        o, factor=1.0), 0.3, 20))


@pytest.mark.parametrize("step_size", [1, 3])
def test_factor_is_step_lr(step_size):
    expected = torch_lrs(lambda o: lr_scheduler.StepLR(o, step_size, gamma=0.7), 0.5, 40)
    assert_matches(sched.factor(0.5, 0.7, step_size=step_size), expected)


def test_factor_floor_clips_step_lr():
    expected = torch_lrs(lambda o: lr_scheduler.StepLR(o, 1, gamma=0.9), 2.0, 60)
    floored = [max(0.01, lr) for lr in expected]
    assert min(expected) < 0.01  # the floor is active in this range
    assert_matches(sched.factor(2.0, 0.9, floor=0.01), floored)


def test_multistep():
    # the seed's setting: lr 0.5 halved at epochs 15 and 30, over 40 epochs to pass both
    expected = torch_lrs(lambda o: lr_scheduler.MultiStepLR(o, [15, 30], gamma=0.5), 0.5, 40)
    assert_matches(sched.multistep(0.5, [15, 30], gamma=0.5), expected)


def test_exponential():
    expected = torch_lrs(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.95), 0.1, 60)
    assert_matches(sched.exponential(0.1, 0.95), expected)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_polynomial(power):
    expected = torch_lrs(lambda o: lr_scheduler.PolynomialLR(o, 20, power=power), 0.2, 30)
    assert_matches(sched.polynomial(0.2, 20, power=power), expected)


def test_cosine_is_cosine_annealing_until_total_steps():
    expected = torch_lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, 20, eta_min=0.01), 0.3, 21)
    assert_matches(sched.cosine(0.3, 20, final_lr=0.01), expected)


def test_cosine_stays_at_final_lr_where_torch_climbs_back():
    torch_tail = torch_lrs(
        lambda o: lr_scheduler.CosineAnnealingLR(o, 20, eta_min=0.01), 0.3, 61)[21:]
    ours = sched.cosine(0.3, 20, final_lr=0.01)
    assert [ours(t) for t in range(21, 61)] == [0.01] * 40
    # torch's cosine has period 2 * T_max: back at base_lr at step 40, at eta_min again at 60
    assert torch_tail[40 - 21] == pytest.approx(0.3)
    assert torch_tail[60 - 21] == pytest.approx(0.01)
    assert min(torch_tail[:-1]) > 0.01


@pytest.mark.parametrize("begin", [0.03, 0.0])
def test_cosine_warmup_is_linear_then_cosine(begin):
    base, total, warmup = 0.3, 20, 5

    def make(o):
        # LinearLR refuses start_factor 0 (the seed's warmup from 0): approach it instead
        start = max(begin / base, 1e-12)
        return lr_scheduler.SequentialLR(o, [
            lr_scheduler.LinearLR(o, start_factor=start, total_iters=warmup),
            lr_scheduler.CosineAnnealingLR(o, total - warmup, eta_min=0.01),
        ], milestones=[warmup])

    expected = torch_lrs(make, base, total + 1)
    schedule = sched.cosine(base, total, final_lr=0.01, warmup_steps=warmup, warmup_begin_lr=begin)
    assert_matches(schedule, expected)
    assert schedule(0) == begin
    assert schedule(warmup) == base


def test_torch_warmup_cannot_start_from_zero():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    with pytest.raises(ValueError):
        lr_scheduler.LinearLR(opt, start_factor=0.0)


@pytest.mark.parametrize(("total", "pct", "anneal"), [
    (100, 0.3, "cos"), (100, 0.25, "linear"), (47, 0.3, "cos"), (10, 0.5, "cos")])
def test_one_cycle(total, pct, anneal):
    def make(o):
        return lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=total, pct_start=pct,
                                       anneal_strategy=anneal, cycle_momentum=False,
                                       div_factor=20.0, final_div_factor=100.0)

    expected = torch_lrs(make, 0.5, total)
    schedule = sched.one_cycle(0.5, total, pct_start=pct, div_factor=20.0,
                               final_div_factor=100.0, anneal=anneal)
    assert_matches(schedule, expected)
    assert schedule(total + 5) == pytest.approx(0.5 / 20.0 / 100.0)


def test_one_cycle_peaks_at_max_lr():
    schedule = sched.one_cycle(0.4, 200, pct_start=0.3)
    peak = max(range(200), key=schedule)
    assert math.isclose(schedule(peak), 0.4, rel_tol=1e-4)
    assert peak in (58, 59)  # torch puts the peak at step pct_start * total - 1 = 59


def test_torch_one_cycle_cycles_momentum_of_plain_sgd():
    # why the chapter passes cycle_momentum=False: SGD's default momentum 0 gets replaced
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)


def test_schedules_are_pure():
    schedule = sched.cosine(0.3, 20, final_lr=0.01, warmup_steps=5)
    forward = [schedule(t) for t in range(30)]
    backward = [schedule(t) for t in reversed(range(30))][::-1]
    assert forward == backward
    assert schedule(25) == 0.01  # no need to have visited step 20 first


@pytest.mark.parametrize(("make", "match"), [
    (lambda: sched.constant(-0.1), "lr: -0.1"),
    (lambda: sched.factor(0.1, -0.5), "factor: -0.5"),
    (lambda: sched.factor(0.1, 1.5), "factor: 1.5"),
    (lambda: sched.factor(0.1, 0.5, step_size=0), "step_size: 0"),
    (lambda: sched.factor(0.1, 0.5, floor=0.2), "floor: 0.2"),
    (lambda: sched.exponential(0.1, 0.0), "gamma: 0.0"),
    (lambda: sched.multistep(0.5, [30, 15]), "milestones"),
    (lambda: sched.multistep(0.5, [15, 15]), "milestones"),
    (lambda: sched.multistep(0.5, [0, 15]), r"milestones\[0\]: 0"),
    (lambda: sched.multistep(0.5, [15], gamma=-0.5), "gamma: -0.5"),
    (lambda: sched.polynomial(0.1, 0), "total_steps: 0"),
    (lambda: sched.polynomial(0.1, 10, power=0.0), "power: 0.0"),
    (lambda: sched.cosine(0.3, 20, warmup_steps=25), "warmup_steps: 25"),
    (lambda: sched.cosine(0.3, 20, warmup_steps=20), "warmup_steps: 20"),
    (lambda: sched.cosine(0.3, 20, warmup_steps=-1), "warmup_steps: -1"),
    (lambda: sched.cosine(0.3, 20, final_lr=0.5), "final_lr: 0.5"),
    (lambda: sched.one_cycle(0.0, 100), "max_lr: 0.0"),
    (lambda: sched.one_cycle(0.1, 100, pct_start=1.0), "pct_start: 1.0"),
    (lambda: sched.one_cycle(0.1, 100, pct_start=0.01), "pct_start: 0.01"),
    (lambda: sched.one_cycle(0.1, 100, anneal="step"), "anneal: 'step'"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_float_step_counts_raise_type_error():
    with pytest.raises(TypeError, match=r"total_steps: 2\.5"):
        sched.cosine(0.3, 2.5)


def test_negative_step_raises():
    with pytest.raises(ValueError, match=r"^Invalid t: -1 "):
        sched.multistep(0.5, [15])(-1)
