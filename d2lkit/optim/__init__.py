"""From-scratch optimizers as pure ``init``/``update`` pairs over explicit state.

Every factory validates its hyperparameters and returns an :class:`Optimizer`. Its ``init(params)``
builds the state the algorithm keeps (a small ``NamedTuple`` of tensor lists, plus a step count
where bias correction needs one), and ``update(grads, state, params, hp)`` returns
``(new_params, new_state)`` without touching its inputs. ``hp`` is passed to every call, so a
training loop may hand in a scheduled learning rate (``{**opt.hp, "lr": lr_t}``).

Each algorithm reproduces the matching ``torch.optim`` class up to round-off; the docstrings give
the update rule and the mapping of hyperparameters, and ``tests/test_optim.py`` checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch
from torch import Tensor

from d2lkit import checks

State = tuple
"""An optimizer's state: a ``NamedTuple`` of tensor lists (one tensor per parameter)."""

UpdateFn = Callable[
    [list[Tensor], State, list[Tensor], Mapping[str, float]], tuple[list[Tensor], State]
]


class Optimizer(NamedTuple):
    """A from-scratch optimizer: a name, a pure ``init``/``update`` pair and its hyperparameters."""

    name: str
    init: Callable[[list[Tensor]], State]
    update: UpdateFn
    hp: dict[str, float]


class NoState(NamedTuple):
    """The state of plain SGD: nothing."""


class VelocityState(NamedTuple):
    """The state of momentum and Nesterov: one velocity per parameter."""

    velocity: list[Tensor]


class SquareAvgState(NamedTuple):
    """The state of AdaGrad (sum) and RMSProp (leaky average): one squared-gradient statistic."""

    s: list[Tensor]


class AdadeltaState(NamedTuple):
    """The state of Adadelta: leaky averages of squared gradients and of squared updates."""

    s: list[Tensor]
    delta: list[Tensor]


class MomentsState(NamedTuple):
    """The state of Adam, AdamW and Yogi: first and second moment estimates and the step count."""

    m: list[Tensor]
    v: list[Tensor]
    step: int


# The validators every factory uses (also from the optimizers in this package's other modules):
# each returns a finite float or raises TypeError/ValueError naming the parameter (d2lkit.checks).
_nonneg = checks.nonneg
_positive = checks.positive
_unit = checks.unit


def _zeros(params: list[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(p) for p in params]


def _no_state(params: list[Tensor]) -> NoState:
    return NoState()


def _velocity_init(params: list[Tensor]) -> VelocityState:
    return VelocityState(_zeros(params))


def _square_avg_init(params: list[Tensor]) -> SquareAvgState:
    return SquareAvgState(_zeros(params))


def _adadelta_init(params: list[Tensor]) -> AdadeltaState:
    return AdadeltaState(_zeros(params), _zeros(params))


def _moments_init(params: list[Tensor]) -> MomentsState:
    return MomentsState(_zeros(params), _zeros(params), 0)


# ----- SGD, momentum, Nesterov ---------------------------------------------------------------


@torch.no_grad()
def _sgd_update(grads, state, params, hp):
    new_params = [p - hp["lr"] * g for p, g in zip(params, grads, strict=True)]
    return new_params, state


@torch.no_grad()
def _momentum_update(grads, state, params, hp):
    velocity = [hp["momentum"] * v + g for v, g in zip(state.velocity, grads, strict=True)]
    new_params = [p - hp["lr"] * v for p, v in zip(params, velocity, strict=True)]
    return new_params, VelocityState(velocity)


@torch.no_grad()
def _nesterov_update(grads, state, params, hp):
    mu = hp["momentum"]
    velocity = [mu * v + g for v, g in zip(state.velocity, grads, strict=True)]
    new_params = [
        p - hp["lr"] * (g + mu * v) for p, g, v in zip(params, grads, velocity, strict=True)
    ]
    return new_params, VelocityState(velocity)


def sgd(lr: float) -> Optimizer:
    r"""Return minibatch SGD, $x \leftarrow x - \eta g$; same as ``torch.optim.SGD(lr=lr)``."""
    return Optimizer("sgd", _no_state, _sgd_update, {"lr": _nonneg("lr", lr)})


def momentum(lr: float, momentum: float) -> Optimizer:
    r"""Return heavy-ball momentum, $v \leftarrow \mu v + g,\ x \leftarrow x - \eta v$.

    Same as ``torch.optim.SGD(lr=lr, momentum=momentum)`` (``dampening=0``): torch stores the
    first velocity as $g_1$, which is $\mu \cdot 0 + g_1$. The velocity here is not scaled by
    $\eta$, so changing the learning rate mid-run does not rescale the stored velocity.
    """
    hp = {"lr": _nonneg("lr", lr), "momentum": _unit("momentum", momentum)}
    return Optimizer("momentum", _velocity_init, _momentum_update, hp)


def nesterov(lr: float, momentum: float) -> Optimizer:
    r"""Return Nesterov momentum, $v \leftarrow \mu v + g,\ x \leftarrow x - \eta (g + \mu v)$.

    This is the reformulation used by ``torch.optim.SGD(lr=lr, momentum=momentum,
    nesterov=True)``: the look-ahead gradient of Sutskever et al. (2013) rewritten so that only the
    gradient at the current parameters is needed.
    """
    hp = {"lr": _nonneg("lr", lr), "momentum": _unit("momentum", momentum)}
    return Optimizer("nesterov", _velocity_init, _nesterov_update, hp)


# ----- AdaGrad, RMSProp, Adadelta ------------------------------------------------------------


@torch.no_grad()
def _adagrad_update(grads, state, params, hp):
    s = [s + g * g for s, g in zip(state.s, grads, strict=True)]
    new_params = [
        p - hp["lr"] * g / (s_i.sqrt() + hp["eps"])
        for p, g, s_i in zip(params, grads, s, strict=True)
    ]
    return new_params, SquareAvgState(s)


@torch.no_grad()
def _rmsprop_update(grads, state, params, hp):
    gamma = hp["gamma"]
    s = [gamma * s + (1 - gamma) * g * g for s, g in zip(state.s, grads, strict=True)]
    new_params = [
        p - hp["lr"] * g / (s_i.sqrt() + hp["eps"])
        for p, g, s_i in zip(params, grads, s, strict=True)
    ]
    return new_params, SquareAvgState(s)


@torch.no_grad()
def _adadelta_update(grads, state, params, hp):
    rho, eps = hp["rho"], hp["eps"]
    s = [rho * s + (1 - rho) * g * g for s, g in zip(state.s, grads, strict=True)]
    rescaled = [
        (d + eps).sqrt() / (s_i + eps).sqrt() * g
        for d, s_i, g in zip(state.delta, s, grads, strict=True)
    ]
    delta = [rho * d + (1 - rho) * r * r for d, r in zip(state.delta, rescaled, strict=True)]
    new_params = [p - hp["lr"] * r for p, r in zip(params, rescaled, strict=True)]
    return new_params, AdadeltaState(s, delta)


def adagrad(lr: float, eps: float = 1e-6) -> Optimizer:
    r"""Return AdaGrad, $s \leftarrow s + g^2,\ x \leftarrow x - \eta\, g / (\sqrt{s} + \epsilon)$.

    Same as ``torch.optim.Adagrad(lr=lr, eps=eps)`` (``lr_decay=0``,
    ``initial_accumulator_value=0``): $\epsilon$ is added *outside* the square root, as in
    torch and in Duchi et al. (2011). The d2l from-scratch code uses $\sqrt{s + \epsilon}$
    instead; the two differ only while $s$ is tiny. Torch's default ``eps`` is ``1e-10``.
    """
    hp = {"lr": _nonneg("lr", lr), "eps": _positive("eps", eps)}
    return Optimizer("adagrad", _square_avg_init, _adagrad_update, hp)


def rmsprop(lr: float, gamma: float = 0.9, eps: float = 1e-6) -> Optimizer:
    r"""Return RMSProp: AdaGrad with a leaky average, $s \leftarrow \gamma s + (1-\gamma) g^2$.

    The step is $x \leftarrow x - \eta\, g / (\sqrt{s} + \epsilon)$. Same as
    ``torch.optim.RMSprop(lr=lr, alpha=gamma, eps=eps)`` (``momentum=0``, ``centered=False``):
    torch calls the decay ``alpha`` (default ``0.99``) and, like AdaGrad here,
    adds $\epsilon$ outside the square root.
    """
    hp = {"lr": _nonneg("lr", lr), "gamma": _unit("gamma", gamma), "eps": _positive("eps", eps)}
    return Optimizer("rmsprop", _square_avg_init, _rmsprop_update, hp)


def adadelta(rho: float = 0.9, eps: float = 1e-5, lr: float = 1.0) -> Optimizer:
    r"""Return Adadelta (Zeiler, 2012): RMSProp whose step size is a leaky average of past updates.

    $s \leftarrow \rho s + (1-\rho) g^2$, $g' = \sqrt{\Delta + \epsilon} / \sqrt{s + \epsilon}\, g$,
    $x \leftarrow x - \eta g'$, $\Delta \leftarrow \rho \Delta + (1-\rho) g'^2$. Note that $\Delta$
    is updated with the *rescaled* gradient $g'$ and after it is used. Same as
    ``torch.optim.Adadelta(lr=lr, rho=rho, eps=eps)``; the paper has no learning rate, which is
    $\eta = 1$, the extra scale torch (default ``lr=1.0``) and this function both allow.
    """
    hp = {"rho": _unit("rho", rho), "eps": _positive("eps", eps), "lr": _nonneg("lr", lr)}
    return Optimizer("adadelta", _adadelta_init, _adadelta_update, hp)


# ----- Adam, AdamW, Yogi ---------------------------------------------------------------------


def _adam_step(grads, state, params, hp, second_moment):
    """Shared body of Adam and Yogi: moments, bias correction, step; returns (params, state)."""
    beta1, beta2, step = hp["beta1"], hp["beta2"], state.step + 1
    m = [beta1 * m + (1 - beta1) * g for m, g in zip(state.m, grads, strict=True)]
    v = [second_moment(v, g * g, beta2) for v, g in zip(state.v, grads, strict=True)]
    m_hat = [m_i / (1 - beta1**step) for m_i in m]
    v_hat = [v_i / (1 - beta2**step) for v_i in v]
    new_params = [
        p - hp["lr"] * mh / (vh.sqrt() + hp["eps"])
        for p, mh, vh in zip(params, m_hat, v_hat, strict=True)
    ]
    return new_params, MomentsState(m, v, step)


def _adam_second_moment(v: Tensor, g2: Tensor, beta2: float) -> Tensor:
    return beta2 * v + (1 - beta2) * g2


def _yogi_second_moment(v: Tensor, g2: Tensor, beta2: float) -> Tensor:
    return v - (1 - beta2) * torch.sign(v - g2) * g2


@torch.no_grad()
def _adam_update(grads, state, params, hp):
    grads = [g + hp["weight_decay"] * p for g, p in zip(grads, params, strict=True)]
    return _adam_step(grads, state, params, hp, _adam_second_moment)


@torch.no_grad()
def _adamw_update(grads, state, params, hp):
    decayed = [p * (1 - hp["lr"] * hp["weight_decay"]) for p in params]
    return _adam_step(grads, state, decayed, hp, _adam_second_moment)


@torch.no_grad()
def _yogi_update(grads, state, params, hp):
    return _adam_step(grads, state, params, hp, _yogi_second_moment)


def _moments_hp(lr: float, beta1: float, beta2: float, eps: float) -> dict[str, float]:
    return {
        "lr": _nonneg("lr", lr),
        "beta1": _unit("beta1", beta1),
        "beta2": _unit("beta2", beta2),
        "eps": _positive("eps", eps),
    }


def adam(
    lr: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
) -> Optimizer:
    r"""Return Adam (Kingma & Ba, 2015) with bias-corrected moments.

    $m \leftarrow \beta_1 m + (1-\beta_1) g$, $v \leftarrow \beta_2 v + (1-\beta_2) g^2$,
    $\hat m = m / (1-\beta_1^t)$, $\hat v = v / (1-\beta_2^t)$,
    $x \leftarrow x - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$ with $t = 1, 2, \ldots$ counted in
    the state. $\epsilon$ is added outside the square root, to $\sqrt{\hat v}$, as in
    ``torch.optim.Adam(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)``.
    ``weight_decay`` is an L2 penalty added to the gradient, $g \leftarrow g + \lambda x$, as in
    ``torch.optim.Adam``; for decoupled decay use :func:`adamw`. Torch's default ``eps`` is
    ``1e-8``.
    """
    hp = _moments_hp(lr, beta1, beta2, eps)
    hp["weight_decay"] = _nonneg("weight_decay", weight_decay)
    return Optimizer("adam", _moments_init, _adam_update, hp)


def adamw(
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> Optimizer:
    r"""Return AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    First $x \leftarrow (1 - \eta\lambda) x$, then the Adam step on the unchanged gradient, as in
    ``torch.optim.AdamW(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)``, whose
    defaults these are. The decay is scaled by the current $\eta$, so a schedule shrinks it too.
    """
    hp = _moments_hp(lr, beta1, beta2, eps)
    hp["weight_decay"] = _nonneg("weight_decay", weight_decay)
    return Optimizer("adamw", _moments_init, _adamw_update, hp)


def yogi(
    lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-3
) -> Optimizer:
    r"""Return Yogi (Zaheer et al., 2018): Adam with an additive second-moment update.

    $v \leftarrow v - (1-\beta_2)\,\mathrm{sign}(v - g^2)\, g^2$ replaces Adam's
    $v \leftarrow v + (1-\beta_2)(g^2 - v)$, so $v$ moves by at most $(1-\beta_2) g^2$ per step
    whatever the size of $v$. Everything else is Adam as in :func:`adam`, including the bias
    correction of $m$ and $v$ that d2l applies; the paper's Algorithm 2 has no bias correction,
    and since $v$ is no longer a leaky average the correction is a heuristic here. With $v_0 = 0$
    and the same ``eps`` the first step equals Adam's. ``torch.optim`` has no Yogi.
    """
    return Optimizer("yogi", _moments_init, _yogi_update, _moments_hp(lr, beta1, beta2, eps))


def _check_optimizer(opt: Optimizer) -> None:
    if not isinstance(opt, Optimizer):
        raise TypeError(f"Invalid opt: {opt!r} (expected a d2lkit.optim.Optimizer)")


# ----- Running an optimizer, and the optimizers of today: one module each, imported last since
# ----- they build on the above.

from d2lkit.optim.adafactor import AdafactorState as AdafactorState  # noqa: E402
from d2lkit.optim.adafactor import adafactor as adafactor  # noqa: E402
from d2lkit.optim.footprint import state_bytes as state_bytes  # noqa: E402
from d2lkit.optim.lars_lamb import lamb as lamb  # noqa: E402
from d2lkit.optim.lars_lamb import lars as lars  # noqa: E402
from d2lkit.optim.lion import LionState as LionState  # noqa: E402
from d2lkit.optim.lion import lion as lion  # noqa: E402
from d2lkit.optim.muon import MuonState as MuonState  # noqa: E402
from d2lkit.optim.muon import muon as muon  # noqa: E402
from d2lkit.optim.muon import newton_schulz as newton_schulz  # noqa: E402
from d2lkit.optim.paths import trace_1d as trace_1d  # noqa: E402
from d2lkit.optim.paths import trace_2d as trace_2d  # noqa: E402
from d2lkit.optim.radam_nadam import NAdamState as NAdamState  # noqa: E402
from d2lkit.optim.radam_nadam import nadam as nadam  # noqa: E402
from d2lkit.optim.radam_nadam import radam as radam  # noqa: E402
from d2lkit.optim.schedule_free import ScheduleFreeState as ScheduleFreeState  # noqa: E402
from d2lkit.optim.schedule_free import eval_params as eval_params  # noqa: E402
from d2lkit.optim.schedule_free import schedule_free_adamw as schedule_free_adamw  # noqa: E402
from d2lkit.optim.schedule_free import schedule_free_sgd as schedule_free_sgd  # noqa: E402
from d2lkit.optim.scheduling import ScheduledState as ScheduledState  # noqa: E402
from d2lkit.optim.scheduling import scheduled as scheduled  # noqa: E402
