"""Muon (Jordan et al., 2024): momentum orthogonalized by a Newton-Schulz iteration.

Muon is for the matrix-shaped weights of hidden layers; every other parameter (biases, gains,
vectors) is updated by AdamW inside the same :class:`~d2lkit.optim.Optimizer`, as the method
prescribes and as one would combine ``torch.optim.Muon`` with ``torch.optim.AdamW``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor

from d2lkit import checks
from d2lkit.checks import flag
from d2lkit.optim import (
    MomentsState,
    Optimizer,
    _adamw_update,
    _nonneg,
    _positive,
    _unit,
    _zeros,
)

NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)
"""The quintic's coefficients ``(a, b, c)`` of Jordan et al. and ``torch.optim.Muon``."""


def newton_schulz(
    G: Tensor,
    steps: int = 5,
    coefficients: Sequence[float] = NS_COEFFICIENTS,
    eps: float = 1e-7,
) -> Tensor:
    r"""Return $G$ with its singular values pushed towards 1 by ``steps`` quintic iterations.

    $X \leftarrow G / \max(\|G\|_F, \epsilon)$ (so every singular value is at most 1), then
    $X \leftarrow aX + (bA + cA^2)X$ with $A = XX^\top$, which maps each singular value
    $\sigma$ to $a\sigma + b\sigma^3 + c\sigma^5$ and leaves the singular vectors alone: an
    approximation of $UV^\top$ for $G = U\Sigma V^\top$. The arithmetic is done in ``G``'s dtype
    (``torch.optim.Muon`` first casts to bfloat16; given ``G.bfloat16()`` this gives its numbers).
    """
    a, b, c = coefficients
    tall = G.size(0) > G.size(1)
    X = G.T if tall else G
    X = X / X.norm().clamp(min=eps)
    for _ in range(steps):
        A = X @ X.T
        B = torch.addmm(A, A, A, beta=b, alpha=c)
        X = torch.addmm(X, B, X, beta=a)
    return X.T if tall else X


def _lr_scale(shape: torch.Size, adjust: str) -> float:
    rows, cols = shape[:2]
    if adjust == "original":
        return math.sqrt(max(1.0, rows / cols))
    return 0.2 * math.sqrt(max(rows, cols))  # "match_rms_adamw"


class MuonState(NamedTuple):
    """Muon's state: a momentum per matrix (an empty tensor for the other parameters) and the
    AdamW state of the other parameters, in their order."""

    buffer: list[Tensor]
    adam: MomentsState


def _uses_muon(params: list[Tensor], adamw_matrices: tuple[int, ...]) -> list[bool]:
    """Whether each parameter is a matrix that Muon updates (the others go to AdamW)."""
    return [p.dim() == 2 and i not in adamw_matrices for i, p in enumerate(params)]


def _muon_init(params: list[Tensor], adamw_matrices: tuple[int, ...] = ()) -> MuonState:
    for i in adamw_matrices:  # checked once, against the parameters the state is made for
        if i >= len(params) or params[i].dim() != 2:
            what = "absent" if i >= len(params) else f"of shape {tuple(params[i].shape)}"
            raise ValueError(f"Invalid adamw_matrices: {adamw_matrices!r} (parameter {i} is "
                             f"{what}, not a matrix)")
    muon = _uses_muon(params, adamw_matrices)
    others = [p for p, m in zip(params, muon, strict=True) if not m]
    buffer = [torch.zeros_like(p) if m else p.new_zeros(0) for p, m in zip(params, muon)]
    return MuonState(buffer, MomentsState(_zeros(others), _zeros(others), 0))


@torch.no_grad()
def _muon_update(grads, state, params, hp):
    mu, lr = hp["momentum"], hp["lr"]
    muon = _uses_muon(params, hp["adamw_matrices"])
    new_params, buffer = list(params), list(state.buffer)
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        if not muon[i]:
            continue
        buffer[i] = torch.lerp(state.buffer[i], g, 1 - mu)
        direction = torch.lerp(g, buffer[i], mu) if hp["nesterov"] else buffer[i]
        ortho = newton_schulz(direction, hp["ns_steps"], hp["ns_coefficients"], hp["eps"])
        scale = lr * _lr_scale(p.shape, hp["adjust_lr"])
        new_params[i] = p * (1 - lr * hp["weight_decay"]) - scale * ortho
    others = [i for i, m in enumerate(muon) if not m]
    adam_hp = {
        "lr": hp["adam_lr"], "beta1": hp["beta1"], "beta2": hp["beta2"],
        "eps": hp["adam_eps"], "weight_decay": hp["adam_weight_decay"],
    }
    stepped, adam = _adamw_update(
        [grads[i] for i in others], state.adam, [params[i] for i in others], adam_hp
    )
    for i, p in zip(others, stepped, strict=True):
        new_params[i] = p
    return new_params, MuonState(buffer, adam)


def muon(
    lr: float = 0.02,
    momentum: float = 0.95,
    nesterov: bool = True,
    weight_decay: float = 0.1,
    ns_steps: int = 5,
    ns_coefficients: Sequence[float] = NS_COEFFICIENTS,
    eps: float = 1e-7,
    adjust_lr: str = "original",
    adam_lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    adam_eps: float = 1e-8,
    adam_weight_decay: float = 0.01,
    adamw_matrices: Iterable[int] = (),
) -> Optimizer:
    r"""Return Muon for the 2-D parameters and AdamW for all others.

    ``adamw_matrices`` lists the positions, in the parameter list, of matrices that AdamW updates
    instead, such as an output layer's weight, which Jordan et al. leave to AdamW.

    For a weight matrix: $B \leftarrow \mu B + (1-\mu) G$, the direction is
    $(1-\mu) G + \mu B$ (Nesterov) or $B$, $O = \mathrm{NS}(\cdot)$ (:func:`newton_schulz`),
    $W \leftarrow (1 - \eta\lambda) W - \eta s O$ with $s = \sqrt{\max(1, m/n)}$ for an
    $m \times n$ weight (``adjust_lr="original"``) or $s = 0.2\sqrt{\max(m, n)}$
    (``"match_rms_adamw"``). Same as ``torch.optim.Muon(lr=lr, momentum=momentum,
    nesterov=nesterov, weight_decay=weight_decay, ns_steps=ns_steps,
    ns_coefficients=ns_coefficients, eps=eps, adjust_lr_fn=adjust_lr)`` on the matrices (up to
    torch's bfloat16 iteration) and ``torch.optim.AdamW(lr=adam_lr, betas=(beta1, beta2),
    eps=adam_eps, weight_decay=adam_weight_decay)`` on the rest. A schedule of ``lr``
    (:func:`~d2lkit.optim.scheduled`) leaves ``adam_lr`` fixed.
    """
    if isinstance(ns_coefficients, str) or not isinstance(ns_coefficients, Sequence):
        raise TypeError(f"Invalid ns_coefficients: {ns_coefficients!r} (expected three numbers)")
    if len(ns_coefficients) != 3:
        raise ValueError(f"Invalid ns_coefficients: {ns_coefficients!r} (expected three numbers)")
    hp = {
        "lr": _nonneg("lr", lr),
        "momentum": _unit("momentum", momentum),
        "nesterov": flag("nesterov", nesterov),
        "weight_decay": _nonneg("weight_decay", weight_decay),
        "ns_steps": checks.integer("ns_steps", ns_steps, minimum=0),
        "ns_coefficients": tuple(
            checks.real(f"ns_coefficients[{i}]", c) for i, c in enumerate(ns_coefficients)
        ),
        "eps": _positive("eps", eps),
        "adjust_lr": checks.choice("adjust_lr", adjust_lr, ("original", "match_rms_adamw")),
        "adam_lr": _nonneg("adam_lr", adam_lr),
        "beta1": _unit("beta1", beta1),
        "beta2": _unit("beta2", beta2),
        "adam_eps": _positive("adam_eps", adam_eps),
        "adam_weight_decay": _nonneg("adam_weight_decay", adam_weight_decay),
        "adamw_matrices": _positions("adamw_matrices", adamw_matrices),
    }
    return Optimizer("muon", partial(_muon_init, adamw_matrices=hp["adamw_matrices"]),
                     _muon_update, hp)


def _positions(name: str, value: Iterable[int]) -> tuple[int, ...]:
    """Validate distinct positions in a parameter list."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"Invalid {name}: {value!r} (expected a sequence of ints)")
    positions = tuple(checks.integer(f"{name}[{i}]", p, minimum=0) for i, p in enumerate(value))
    if len(set(positions)) != len(positions):
        raise ValueError(f"Invalid {name}: {positions!r} (expected distinct positions)")
    return positions
