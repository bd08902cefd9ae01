"""RAdam (Liu et al., 2020) and NAdam (Dozat, 2016): Adam with a rectified or a Nesterov step."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from d2lkit.checks import flag
from d2lkit.optim import MomentsState, Optimizer, _moments_hp, _moments_init, _nonneg, _zeros


def _decay(grads, params, hp):
    """Apply weight decay: decoupled (shrink the parameters) or L2 (add to the gradient)."""
    wd = hp["weight_decay"]
    if hp["decoupled"]:
        return grads, [p * (1 - hp["lr"] * wd) for p in params]
    return [g + wd * p for g, p in zip(grads, params, strict=True)], params


@torch.no_grad()
def _radam_update(grads, state, params, hp):
    grads, params = _decay(grads, params, hp)
    beta1, beta2, step = hp["beta1"], hp["beta2"], state.step + 1
    m = [beta1 * m + (1 - beta1) * g for m, g in zip(state.m, grads, strict=True)]
    v = [beta2 * v + (1 - beta2) * g * g for v, g in zip(state.v, grads, strict=True)]
    bc1, bc2 = 1 - beta1**step, 1 - beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    rho = rho_inf - 2 * step * beta2**step / bc2
    if rho > 5:
        rect = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        scale = [rect * math.sqrt(bc2) / (v_i.sqrt() + hp["eps"]) for v_i in v]
    else:  # too few steps for a trustworthy variance: a momentum-SGD step
        scale = [torch.ones_like(v_i) for v_i in v]
    new_params = [
        p - hp["lr"] * m_i / bc1 * s for p, m_i, s in zip(params, m, scale, strict=True)
    ]
    return new_params, MomentsState(m, v, step)


def radam(
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> Optimizer:
    r"""Return RAdam: Adam whose adaptive step is switched on gradually by a rectification term.

    With $\rho_\infty = 2/(1-\beta_2) - 1$ and $\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)$
    (the length of the average that $v_t$ effectively is), the step is plain momentum,
    $\eta\hat m$, while $\rho_t \le 5$, and afterwards $\eta\, r_t \hat m \sqrt{1-\beta_2^t} /
    (\sqrt{v} + \epsilon)$ with $r_t = \sqrt{(\rho_t-4)(\rho_t-2)\rho_\infty /
    ((\rho_\infty-4)(\rho_\infty-2)\rho_t)} \to 1$: a warmup built into the optimizer. Same as
    ``torch.optim.RAdam(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
    decoupled_weight_decay=decoupled)``.
    """
    hp = _moments_hp(lr, beta1, beta2, eps)
    hp["weight_decay"] = _nonneg("weight_decay", weight_decay)
    hp["decoupled"] = flag("decoupled", decoupled)
    return Optimizer("radam", _moments_init, _radam_update, hp)


class NAdamState(NamedTuple):
    """NAdam's state: Adam's moments, the step and the product of the momentum schedule."""

    m: list[Tensor]
    v: list[Tensor]
    step: int
    mu_product: float


def _nadam_init(params: list[Tensor]) -> NAdamState:
    return NAdamState(_zeros(params), _zeros(params), 0, 1.0)


@torch.no_grad()
def _nadam_update(grads, state, params, hp):
    grads, params = _decay(grads, params, hp)
    beta1, beta2, step = hp["beta1"], hp["beta2"], state.step + 1
    psi = hp["momentum_decay"]
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
    mu_product = state.mu_product * mu
    m = [beta1 * m + (1 - beta1) * g for m, g in zip(state.m, grads, strict=True)]
    v = [beta2 * v + (1 - beta2) * g * g for v, g in zip(state.v, grads, strict=True)]
    bc2 = 1 - beta2**step
    new_params = []
    for p, g, m_i, v_i in zip(params, grads, m, v, strict=True):
        denom = (v_i / bc2).sqrt() + hp["eps"]
        look_ahead = (1 - mu) / (1 - mu_product) * g + mu_next / (1 - mu_product * mu_next) * m_i
        new_params.append(p - hp["lr"] * look_ahead / denom)
    return new_params, NAdamState(m, v, step, mu_product)


def nadam(
    lr: float = 0.002,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled: bool = False,
) -> Optimizer:
    r"""Return NAdam: Adam with a Nesterov look-ahead in the first moment.

    The momentum follows the schedule $\mu_t = \beta_1 (1 - 0.96^{t\psi}/2)$
    (``momentum_decay`` $= \psi$), and the step combines the current gradient and the momentum
    as seen one step ahead: $x \leftarrow x - \eta \big(\frac{1-\mu_t}{1-\prod_{i\le t}\mu_i} g +
    \frac{\mu_{t+1}}{1-\prod_{i\le t+1}\mu_i} m\big) / (\sqrt{\hat v} + \epsilon)$. Same as
    ``torch.optim.NAdam(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
    momentum_decay=momentum_decay, decoupled_weight_decay=decoupled)``.
    """
    hp = _moments_hp(lr, beta1, beta2, eps)
    hp["weight_decay"] = _nonneg("weight_decay", weight_decay)
    hp["momentum_decay"] = _nonneg("momentum_decay", momentum_decay)
    hp["decoupled"] = flag("decoupled", decoupled)
    return Optimizer("nadam", _nadam_init, _nadam_update, hp)

