"""Adafactor (Shazeer & Stern, 2018): second moments of a matrix kept as row and column sums."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from d2lkit import checks
from d2lkit.optim import Optimizer, _nonneg, _positive


class AdafactorState(NamedTuple):
    """Adafactor's state: for a tensor of 2+ dims a row and a column statistic (``v`` empty);
    for a vector or scalar a full second moment ``v`` (``row`` and ``col`` empty); the step."""

    row: list[Tensor]
    col: list[Tensor]
    v: list[Tensor]
    step: int


def _empty(p: Tensor) -> Tensor:
    return p.new_zeros(0)


def _adafactor_init(params: list[Tensor]) -> AdafactorState:
    row, col, v = [], [], []
    for p in params:
        factored = p.dim() > 1
        row.append(p.new_zeros(*p.shape[:-1], 1) if factored else _empty(p))
        col.append(p.new_zeros(*p.shape[:-2], 1, p.shape[-1]) if factored else _empty(p))
        v.append(_empty(p) if factored else torch.zeros_like(p))
    return AdafactorState(row, col, v, 0)


@torch.no_grad()
def _adafactor_update(grads, state, params, hp):
    step = state.step + 1
    lr, wd = hp["lr"], hp["weight_decay"]
    rate = step ** hp["beta2_decay"]  # 1 - beta2_t: the new statistic's share
    rho = min(lr, 1 / math.sqrt(step))
    new_params, rows, cols, vs = [], [], [], []
    for p, g, row, col, v in zip(params, grads, state.row, state.col, state.v, strict=True):
        eps1 = hp["eps1"] if hp["eps1"] is not None else torch.finfo(p.dtype).eps
        alpha = max(hp["eps2"], float(p.norm()) / math.sqrt(p.numel())) * rho
        if p.dim() > 1:
            row = torch.lerp(row, (g * g).mean(dim=-1, keepdim=True), rate)
            col = torch.lerp(col, (g * g).mean(dim=-2, keepdim=True), rate)
            var = row @ col / row.mean(dim=-2, keepdim=True).clamp(min=eps1)
        else:
            v = torch.lerp(v, g * g, rate)
            var = v
        u = g * var.clamp(min=eps1 * eps1).rsqrt()
        denom = max(1.0, float(u.norm()) / (math.sqrt(u.numel()) * hp["d"]))
        new_params.append(p * (1 - lr * wd) - alpha / denom * u)
        rows.append(row)
        cols.append(col)
        vs.append(v)
    return new_params, AdafactorState(rows, cols, vs, step)


def adafactor(
    lr: float = 0.01,
    beta2_decay: float = -0.8,
    eps1: float | None = None,
    eps2: float = 1e-3,
    d: float = 1.0,
    weight_decay: float = 0.0,
) -> Optimizer:
    r"""Return Adafactor as ``torch.optim.Adafactor`` computes it (no first moment).

    At step $t$ the statistics move towards the new squared gradient by $t^{c}$
    (``beta2_decay`` $= c = -0.8$), i.e. $\hat\beta_{2,t} = 1 - t^{c}$. For a matrix $G$ only the
    row means $R$ and column means $C$ of $G^2$ are kept and $V \approx R C / \mathrm{mean}(R)$, so
    an $m \times n$ weight costs $m + n$ numbers instead of $mn$; vectors keep a full $v$. The step
    $U = G / \sqrt{V}$ is clipped to RMS at most ``d`` and scaled by the *relative* step size
    $\alpha_t = \max(\epsilon_2, \mathrm{RMS}(x))\,\min(\eta, 1/\sqrt t)$:
    $x \leftarrow (1-\eta\lambda) x - \alpha_t U / \max(1, \mathrm{RMS}(U)/d)$. ``eps1=None``
    means the machine epsilon of the parameter's dtype. Same as ``torch.optim.Adafactor(lr=lr,
    beta2_decay=beta2_decay, eps=(eps1, eps2), d=d, weight_decay=weight_decay)``.
    """
    beta2_decay = checks.in_range("beta2_decay", beta2_decay, high=0.0)
    hp = {
        "lr": _nonneg("lr", lr),
        "beta2_decay": beta2_decay,
        "eps1": None if eps1 is None else _positive("eps1", eps1),
        "eps2": _nonneg("eps2", eps2),
        "d": _positive("d", d),
        "weight_decay": _nonneg("weight_decay", weight_decay),
    }
    return Optimizer("adafactor", _adafactor_init, _adafactor_update, hp)
