r"""Backtracking (Armijo) line search and gradient descent that uses it.

From a point $\mathbf{x}$ with gradient $\mathbf{g}$ and a descent direction $\mathbf{d}$
($\mathbf{g}^\top \mathbf{d} < 0$), backtracking tries the step sizes
$\eta_0, \beta\eta_0, \beta^2\eta_0, \ldots$ and accepts the first that decreases $f$ by at least a
fraction $c$ of what the tangent promises (Armijo's sufficient-decrease condition):
$f(\mathbf{x} + \eta\mathbf{d}) \le f(\mathbf{x}) + c\,\eta\,\mathbf{g}^\top\mathbf{d}$.
Every trial costs one evaluation of $f$, and no gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from d2lkit import checks

Function = Callable[[Tensor], Tensor]


def _check(lr0: float, beta: float, c: float, max_evals: int) -> tuple[float, float, float, int]:
    lr0 = checks.positive("lr0", lr0)
    beta = checks.in_range("beta", beta, 0.0, 1.0, low_open=True, high_open=True)
    c = checks.in_range("c", c, 0.0, 1.0, low_open=True, high_open=True)
    max_evals = checks.integer("max_evals", max_evals, minimum=1)
    return lr0, beta, c, max_evals


def armijo(
    f: Function,
    x: Tensor,
    grad: Tensor,
    direction: Tensor | None = None,
    *,
    lr0: float = 1.0,
    beta: float = 0.5,
    c: float = 1e-4,
    max_evals: int = 60,
) -> tuple[float, int]:
    """Return the first step ``lr0 * beta**k`` that satisfies Armijo's condition, and ``k + 1``.

    ``direction`` defaults to ``-grad``. The second value is the number of evaluations of ``f``
    spent on trial points. Raises ``ValueError`` if ``direction`` is not a descent direction and
    ``RuntimeError`` if no step is accepted within ``max_evals`` trials.
    """
    lr0, beta, c, max_evals = _check(lr0, beta, c, max_evals)
    d = -grad if direction is None else direction
    slope = float((grad * d).sum())
    if not slope < 0:
        raise ValueError(f"Invalid direction: slope g.d = {slope!r} (expected < 0)")
    fx = float(f(x))
    lr = lr0
    for evals in range(1, max_evals + 1):
        if float(f(x + lr * d)) <= fx + c * lr * slope:
            return lr, evals
        lr *= beta
    raise RuntimeError(f"No step accepted in {max_evals} trials (last lr {lr / beta!r})")


@dataclass(frozen=True)
class LineSearchRun:
    """The path of gradient descent with backtracking, its step sizes and its cost."""

    path: Tensor
    """Iterates ``[steps + 1, d]``."""
    lrs: list[float]
    """The accepted step size of every step."""
    function_evals: int
    """Evaluations of ``f``: one at every iterate plus every trial point."""
    gradient_evals: int
    """Evaluations of the gradient: one per step."""


def gd_armijo(
    f: Function,
    grad: Function,
    x0: Tensor,
    steps: int,
    *,
    lr0: float = 1.0,
    beta: float = 0.5,
    c: float = 1e-4,
) -> LineSearchRun:
    """Run ``steps`` steps of gradient descent whose step size comes from ``armijo``.

    Every line search starts again from ``lr0``. Stops early if the gradient is exactly zero.
    """
    lr0, beta, c, _ = _check(lr0, beta, c, 1)
    steps = checks.integer("steps", steps, minimum=0)
    x = torch.as_tensor(x0, dtype=torch.float64).clone()
    path, lrs, f_evals = [x], [], 0
    for _ in range(steps):
        g = grad(x)
        if not bool(g.any()):
            break
        lr, evals = armijo(f, x, g, lr0=lr0, beta=beta, c=c)
        f_evals += 1 + evals
        x = x - lr * g
        path.append(x)
        lrs.append(lr)
    return LineSearchRun(torch.stack(path), lrs, f_evals, len(lrs))
