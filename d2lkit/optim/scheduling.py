"""An optimizer whose learning rate follows a schedule of the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

from d2lkit.optim import Optimizer, State, _check_optimizer


class ScheduledState(NamedTuple):
    """The state of a scheduled optimizer: the wrapped optimizer's state and the step count."""

    inner: State
    step: int


def scheduled(opt: Optimizer, schedule: Callable[[int], float]) -> Optimizer:
    """Return ``opt`` with its learning rate at step ``t = 0, 1, ...`` set to ``schedule(t)``.

    The wrapped state counts the steps; the ``lr`` in the ``hp`` passed to ``update`` is ignored.
    """
    _check_optimizer(opt)
    if not callable(schedule):
        raise TypeError(f"Invalid schedule: {schedule!r} (expected a function of the step)")

    def init(params: list[Tensor]) -> ScheduledState:
        return ScheduledState(opt.init(params), 0)

    def update(grads, state, params, hp):
        hp_t = {**hp, "lr": schedule(state.step)}
        new_params, inner = opt.update(grads, state.inner, params, hp_t)
        return new_params, ScheduledState(inner, state.step + 1)

    return Optimizer(f"scheduled {opt.name}", init, update, dict(opt.hp))
