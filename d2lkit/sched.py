"""Learning-rate schedules as pure functions of the step.

Every factory validates its hyperparameters and returns a ``Schedule``: a function from a step
index ``t = 0, 1, 2, ...`` to the learning rate to use *at* that step. A step is whatever unit the
training loop counts (an epoch or a minibatch update); the functions keep no state, so
``schedule(t)`` gives the same value however often and in whatever order it is called.

Each schedule matches a class in :mod:`torch.optim.lr_scheduler` (``tests/test_sched.py`` checks
them step by step): the value at ``t`` is the learning rate that torch's scheduler has set after
``t`` calls of ``scheduler.step()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

from d2lkit import checks

Schedule = Callable[[int], float]


def _check_lr(name: str, value: float) -> float:
    return checks.nonneg(name, value)


def _check_decay(name: str, value: float) -> float:
    return checks.in_range(name, value, 0.0, 1.0, low_open=True)


def _check_steps(name: str, value: int, minimum: int = 1) -> int:
    return checks.integer(name, value, minimum)


def _check_t(t: int) -> int:
    return checks.integer("t", t, minimum=0)


def _ramp(start: float, end: float, t: int, steps: int) -> float:
    """The rate ``t`` steps into a linear ramp from ``start`` to ``end`` over ``steps`` steps."""
    return start + (end - start) * t / steps


def constant(lr: float) -> Schedule:
    """Return the schedule that keeps ``lr`` at every step."""
    lr = _check_lr("lr", lr)

    def schedule(t: int) -> float:
        _check_t(t)
        return lr

    return schedule


def factor(base_lr: float, factor: float, step_size: int = 1, floor: float = 0.0) -> Schedule:
    """Return ``max(floor, base_lr * factor ** (t // step_size))``: ``StepLR`` with a floor."""
    base_lr, factor = _check_lr("base_lr", base_lr), _check_decay("factor", factor)
    step_size = _check_steps("step_size", step_size)
    floor = checks.in_range("floor", floor, 0.0, base_lr)  # 0 <= floor <= base_lr

    def schedule(t: int) -> float:
        _check_t(t)
        return max(floor, base_lr * factor ** (t // step_size))

    return schedule


def exponential(base_lr: float, gamma: float) -> Schedule:
    """Return ``base_lr * gamma ** t``, torch's ``ExponentialLR``."""
    base_lr, gamma = _check_lr("base_lr", base_lr), _check_decay("gamma", gamma)

    def schedule(t: int) -> float:
        _check_t(t)
        return base_lr * gamma**t

    return schedule


def multistep(base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """Return ``base_lr * gamma ** (number of milestones <= t)``, torch's ``MultiStepLR``."""
    base_lr, gamma = _check_lr("base_lr", base_lr), _check_decay("gamma", gamma)
    if isinstance(milestones, str) or not isinstance(milestones, Iterable):
        raise TypeError(f"Invalid milestones: {milestones!r} (expected a sequence of ints)")
    milestones = [_check_steps(f"milestones[{i}]", m) for i, m in enumerate(milestones)]
    if any(b <= a for a, b in pairwise(milestones)):
        raise ValueError(f"Invalid milestones: {milestones} (expected strictly increasing)")

    def schedule(t: int) -> float:
        _check_t(t)
        return base_lr * gamma ** sum(m <= t for m in milestones)

    return schedule


def polynomial(base_lr: float, total_steps: int, power: float = 1.0) -> Schedule:
    """Return ``base_lr * (1 - min(t, total_steps) / total_steps) ** power`` (``PolynomialLR``)."""
    base_lr, total_steps = _check_lr("base_lr", base_lr), _check_steps("total_steps", total_steps)
    power = checks.positive("power", power)

    def schedule(t: int) -> float:
        _check_t(t)
        return base_lr * (1.0 - min(t, total_steps) / total_steps) ** power

    return schedule


def cosine(
    base_lr: float,
    total_steps: int,
    final_lr: float = 0.0,
    warmup_steps: int = 0,
    warmup_begin_lr: float = 0.0,
) -> Schedule:
    """Return a cosine decay from ``base_lr`` to ``final_lr`` after an optional linear warmup.

    For ``t < warmup_steps`` the rate rises linearly from ``warmup_begin_lr`` to ``base_lr``; from
    ``warmup_steps`` to ``total_steps`` it follows half a cosine down to ``final_lr`` and then
    stays there.
    Without warmup this is torch's ``CosineAnnealingLR(T_max=total_steps, eta_min=final_lr)`` up to
    ``total_steps``; past it torch's rate climbs back up (its cosine has period ``2 * T_max``).
    """
    base_lr, total_steps = _check_lr("base_lr", base_lr), _check_steps("total_steps", total_steps)
    final_lr = checks.in_range("final_lr", final_lr, 0.0, base_lr)  # 0 <= final_lr <= base_lr
    warmup_steps = _check_steps("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps >= total_steps:
        raise ValueError(
            f"Invalid warmup_steps: {warmup_steps} (expected fewer than total_steps={total_steps})"
        )
    warmup_begin_lr = _check_lr("warmup_begin_lr", warmup_begin_lr)
    decay_steps = total_steps - warmup_steps

    def schedule(t: int) -> float:
        _check_t(t)
        if t < warmup_steps:
            return _ramp(warmup_begin_lr, base_lr, t, warmup_steps)
        progress = min(t - warmup_steps, decay_steps) / decay_steps
        return final_lr + (base_lr - final_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0

    return schedule


def one_cycle(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
) -> Schedule:
    """Return the one-cycle schedule of torch's ``OneCycleLR`` (two phases, learning rate only).

    The rate climbs from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of the
    run, then anneals to ``max_lr / (div_factor * final_div_factor)`` at step ``total_steps - 1``
    and stays there.
    """
    max_lr = checks.positive("max_lr", max_lr)
    total_steps = _check_steps("total_steps", total_steps, minimum=2)
    pct_start = checks.real("pct_start", pct_start)
    # torch's phase boundary: the rate peaks at step pct_start * total_steps - 1 (a float)
    peak = pct_start * total_steps - 1.0
    if not 0.0 < peak < total_steps - 1:
        raise ValueError(
            f"Invalid pct_start: {pct_start} (the rise must last more than 1 step "
            f"and end before step {total_steps - 1})"
        )
    div_factor = checks.positive("div_factor", div_factor)
    final_div_factor = checks.positive("final_div_factor", final_div_factor)
    anneal = checks.choice("anneal", anneal, ("cos", "linear"))
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    last = total_steps - 1

    def interpolate(start: float, end: float, pct: float) -> float:
        if anneal == "cos":
            return end + (start - end) * (1.0 + math.cos(math.pi * pct)) / 2.0
        return start + (end - start) * pct

    def schedule(t: int) -> float:
        _check_t(t)
        if t <= peak:
            return interpolate(initial_lr, max_lr, t / peak)
        return interpolate(max_lr, min_lr, (min(t, last) - peak) / (last - peak))

    return schedule


def wsd(
    base_lr: float,
    total_steps: int,
    decay_steps: int,
    warmup_steps: int = 0,
    final_lr: float = 0.0,
    warmup_begin_lr: float = 0.0,
) -> Schedule:
    """Return warmup-stable-decay: a linear warmup, a constant plateau, a linear cooldown.

    For ``t < warmup_steps`` the rate rises linearly from ``warmup_begin_lr`` to ``base_lr``; it
    stays at ``base_lr`` until ``total_steps - decay_steps`` and then falls linearly, reaching
    ``final_lr`` at ``total_steps`` and staying there. The plateau does not depend on the budget:
    a run can be continued from any point of it and cooled down whenever a model is wanted. Same
    as ``SequentialLR`` of ``LinearLR`` (warmup, from ``warmup_begin_lr / base_lr``),
    ``ConstantLR(factor=1)`` and ``LinearLR`` (to ``final_lr / base_lr``), or the matching
    ``LambdaLR``.
    """
    base_lr = checks.nonneg("base_lr", base_lr)
    total_steps = checks.integer("total_steps", total_steps, minimum=1)
    decay_steps = checks.integer("decay_steps", decay_steps, minimum=1)
    warmup_steps = checks.integer("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps + decay_steps > total_steps:
        raise ValueError(
            f"Invalid decay_steps: {decay_steps!r} (expected warmup_steps + decay_steps <= "
            f"total_steps={total_steps})"
        )
    final_lr = checks.in_range("final_lr", final_lr, 0.0, base_lr)
    warmup_begin_lr = checks.in_range("warmup_begin_lr", warmup_begin_lr, 0.0, base_lr)
    decay_start = total_steps - decay_steps

    def schedule(t: int) -> float:
        t = checks.integer("t", t, minimum=0)
        if t < warmup_steps:
            return _ramp(warmup_begin_lr, base_lr, t, warmup_steps)
        if t < decay_start:
            return base_lr
        return _ramp(base_lr, final_lr, min(t - decay_start, decay_steps), decay_steps)

    return schedule


def linear_to_zero(base_lr: float, total_steps: int, warmup_steps: int = 0) -> Schedule:
    """Return a linear warmup over ``warmup_steps`` and then a linear decay to 0 at ``total_steps``.

    This is :func:`wsd` without a plateau (``decay_steps = total_steps - warmup_steps``); without
    warmup it is ``polynomial(base_lr, total_steps, power=1)``, torch's ``LinearLR(1, 0,
    total_steps)``.
    """
    total_steps = checks.integer("total_steps", total_steps, minimum=1)
    warmup_steps = checks.integer("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps >= total_steps:
        raise ValueError(
            f"Invalid warmup_steps: {warmup_steps!r} (expected fewer than "
            f"total_steps={total_steps})"
        )
    return wsd(base_lr, total_steps, total_steps - warmup_steps, warmup_steps)
