r"""Schedule-Free SGD and AdamW (Defazio et al., 2024): averaging in place of a decay schedule.

Three sequences live side by side: $z$ takes the base optimizer's steps, $x$ is a running
(weighted) average of the $z$'s, and the gradient is taken at their interpolation
$y = \beta x + (1-\beta) z$. Training sees $y$ (the parameters ``update`` returns); the point
to evaluate and to keep is $x$, returned by :func:`eval_params`. This is why the ``torch``
versions need ``optimizer.eval()`` before evaluation and ``optimizer.train()`` after.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from d2lkit import checks
from d2lkit.optim import Optimizer, _nonneg, _positive, _unit, _zeros


class ScheduleFreeState(NamedTuple):
    """The state: the base sequence ``z``, the average ``x``, the second moment ``v`` (empty
    tensors for SGD), the step, the largest learning rate so far and the sum of the weights."""

    z: list[Tensor]
    x: list[Tensor]
    v: list[Tensor]
    step: int
    lr_max: float
    weight_sum: float


def _sf_init(params: list[Tensor], moments: bool) -> ScheduleFreeState:
    v = _zeros(params) if moments else [p.new_zeros(0) for p in params]
    return ScheduleFreeState(
        [p.clone() for p in params], [p.clone() for p in params], v, 0, -1.0, 0.0
    )


def _sgd_init(params: list[Tensor]) -> ScheduleFreeState:
    return _sf_init(params, moments=False)


def _adamw_init(params: list[Tensor]) -> ScheduleFreeState:
    return _sf_init(params, moments=True)


def _averaging_weight(state: ScheduleFreeState, hp) -> tuple[float, float, float, float]:
    """Return (lr_t, lr_max, weight_sum, c): the warmed-up rate and the new average's weight."""
    k = state.step
    warmup = hp["warmup_steps"]
    lr = hp["lr"] * ((k + 1) / warmup if k < warmup else 1.0)
    lr_max = max(lr, state.lr_max)
    weight = (k + 1) ** hp["r"] * lr_max ** hp["weight_lr_power"]
    weight_sum = state.weight_sum + weight
    c = weight / weight_sum if weight_sum > 0 else 0.0
    return lr, lr_max, weight_sum, c


@torch.no_grad()
def _sf_sgd_update(grads, state, params, hp):
    lr, lr_max, weight_sum, c = _averaging_weight(state, hp)
    beta = hp["momentum"]
    z, x, y = [], [], []
    for g, y_i, z_i, x_i in zip(grads, params, state.z, state.x, strict=True):
        z_i = z_i - lr * (g + hp["weight_decay"] * y_i)
        x_i = (1 - c) * x_i + c * z_i
        z.append(z_i)
        x.append(x_i)
        y.append(beta * x_i + (1 - beta) * z_i)
    return y, ScheduleFreeState(z, x, state.v, state.step + 1, lr_max, weight_sum)


@torch.no_grad()
def _sf_adamw_update(grads, state, params, hp):
    lr, lr_max, weight_sum, c = _averaging_weight(state, hp)
    beta1, beta2 = hp["beta1"], hp["beta2"]
    bc2 = 1 - beta2 ** (state.step + 1)
    z, x, v, y = [], [], [], []
    for g, y_i, z_i, x_i, v_i in zip(grads, params, state.z, state.x, state.v, strict=True):
        z_i = z_i - lr * hp["weight_decay"] * y_i
        v_i = beta2 * v_i + (1 - beta2) * g * g
        z_i = z_i - lr * g / ((v_i / bc2).sqrt() + hp["eps"])
        x_i = (1 - c) * x_i + c * z_i
        z.append(z_i)
        x.append(x_i)
        v.append(v_i)
        y.append(beta1 * x_i + (1 - beta1) * z_i)
    return y, ScheduleFreeState(z, x, v, state.step + 1, lr_max, weight_sum)


def _averaging_hp(warmup_steps: int, r: float, weight_lr_power: float) -> dict:
    return {
        "warmup_steps": checks.integer("warmup_steps", warmup_steps, minimum=0),
        "r": _nonneg("r", r),
        "weight_lr_power": _nonneg("weight_lr_power", weight_lr_power),
    }


def schedule_free_sgd(
    lr: float = 1.0,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
) -> Optimizer:
    r"""Return Schedule-Free SGD: $z \leftarrow z - \eta_t (g(y) + \lambda y)$,
    $x \leftarrow (1-c_t) x + c_t z$, $y \leftarrow \beta x + (1-\beta) z$.

    $\eta_t$ rises linearly over ``warmup_steps`` and then stays at ``lr``; the average's
    weights are $c_t = w_t / \sum_{i \le t} w_i$ with $w_t = t^r \max_{i\le t}\eta_i^{p}$
    (``weight_lr_power`` $= p$), so with $r = 0$ and no warmup $x$ is the plain mean of the $z$'s.
    ``update`` returns $y$; evaluate at :func:`eval_params`. Same as
    ``schedulefree.SGDScheduleFreeReference`` with the same arguments.
    """
    hp = {
        "lr": _nonneg("lr", lr),
        "momentum": _unit("momentum", momentum),
        "weight_decay": _nonneg("weight_decay", weight_decay),
        **_averaging_hp(warmup_steps, r, weight_lr_power),
    }
    return Optimizer("schedule-free sgd", _sgd_init, _sf_sgd_update, hp)


def schedule_free_adamw(
    lr: float = 0.0025,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
) -> Optimizer:
    r"""Return Schedule-Free AdamW: the SGD version whose $z$-step is divided by
    $\sqrt{\hat v} + \epsilon$ (no first moment: $\beta_1$ is the interpolation weight of $y$).

    The decay $z \leftarrow z - \eta_t \lambda y$ is decoupled and taken at $y$. Same as
    ``schedulefree.AdamWScheduleFreeReference`` with the same arguments (``decay_at_z=False``).
    """
    hp = {
        "lr": _nonneg("lr", lr),
        "beta1": _unit("beta1", beta1),
        "beta2": _unit("beta2", beta2),
        "eps": _positive("eps", eps),
        "weight_decay": _nonneg("weight_decay", weight_decay),
        **_averaging_hp(warmup_steps, r, weight_lr_power),
    }
    return Optimizer("schedule-free adamw", _adamw_init, _sf_adamw_update, hp)


def eval_params(state: ScheduleFreeState) -> list[Tensor]:
    """Return the averaged parameters $x$: the ones to evaluate, checkpoint and ship."""
    if not isinstance(state, ScheduleFreeState):
        raise TypeError(f"Invalid state: {type(state).__name__} (expected a ScheduleFreeState)")
    return list(state.x)
