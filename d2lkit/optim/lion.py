"""Lion (Chen et al., 2023): the sign of an interpolated momentum, with decoupled weight decay."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from d2lkit.optim import Optimizer, _nonneg, _unit, _zeros


class LionState(NamedTuple):
    """The state of Lion: one momentum (a leaky average of gradients) per parameter."""

    m: list[Tensor]


def _lion_init(params: list[Tensor]) -> LionState:
    return LionState(_zeros(params))


@torch.no_grad()
def _lion_update(grads, state, params, hp):
    lr, beta1, beta2 = hp["lr"], hp["beta1"], hp["beta2"]
    new_params, m = [], []
    for p, g, m_i in zip(params, grads, state.m, strict=True):
        step = torch.sign(beta1 * m_i + (1 - beta1) * g)
        new_params.append(p * (1 - lr * hp["weight_decay"]) - lr * step)
        m.append(beta2 * m_i + (1 - beta2) * g)
    return new_params, LionState(m)


def lion(
    lr: float = 1e-4, beta1: float = 0.9, beta2: float = 0.99, weight_decay: float = 0.0
) -> Optimizer:
    r"""Return Lion: $x \leftarrow (1-\eta\lambda)x - \eta\,\mathrm{sign}(\beta_1 m+(1-\beta_1)g)$.

    The momentum is updated *after* the step with the other rate, $m \leftarrow \beta_2 m +
    (1-\beta_2) g$, so the step mixes in the new gradient more strongly ($1-\beta_1 = 0.1$) than
    the memory keeps it ($1-\beta_2 = 0.01$). Every coordinate moves by exactly $\pm\eta$ (or 0),
    so $\eta$ is typically 3-10 times smaller than AdamW's and $\lambda$ as many times larger.
    Same as ``lion_pytorch.Lion(lr=lr, betas=(beta1, beta2), weight_decay=weight_decay)``.
    """
    hp = {
        "lr": _nonneg("lr", lr),
        "beta1": _unit("beta1", beta1),
        "beta2": _unit("beta2", beta2),
        "weight_decay": _nonneg("weight_decay", weight_decay),
    }
    return Optimizer("lion", _lion_init, _lion_update, hp)
