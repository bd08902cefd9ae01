"""Toy objectives of one and two variables, with derivatives in closed form.

The chapters on gradient descent, momentum and adaptive methods run their optimizers on these
functions, small enough to draw every iterate. Everything works elementwise on tensors of any
shape, so ``f`` can be drawn on a grid; 2-D functions take the coordinates ``(x1, x2)`` separately
and their gradients return the pair of partial derivatives, the form ``d2lkit.optim.trace_2d`` and
``d2lkit.plot.plot_trace_2d`` expect.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

GradFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Objective1D:
    """A function of one variable with its first and second derivatives, all elementwise."""

    f: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]
    hess: Callable[[Tensor], Tensor]


def square() -> Objective1D:
    """Return ``f(x) = x**2`` (minimum 0 at ``x = 0``, curvature 2 everywhere)."""
    return Objective1D(
        f=lambda x: x**2,
        grad=lambda x: 2 * x,
        hess=lambda x: torch.full_like(x, 2.0),
    )


def x_cos(c: float = 0.15 * math.pi) -> Objective1D:
    """Return the nonconvex ``f(x) = x * cos(c * x)``, which has infinitely many local minima."""
    if not c > 0:
        raise ValueError(f"Invalid frequency c: {c}")
    return Objective1D(
        f=lambda x: x * torch.cos(c * x),
        grad=lambda x: torch.cos(c * x) - c * x * torch.sin(c * x),
        hess=lambda x: -2 * c * torch.sin(c * x) - c**2 * x * torch.cos(c * x),
    )


@dataclass(frozen=True)
class Quadratic2D:
    """The axis-aligned quadratic ``f(x1, x2) = a1 * x1**2 + a2 * x2**2``, minimized at 0."""

    a1: float
    a2: float

    def __post_init__(self) -> None:
        if not self.a1 > 0:
            raise ValueError(f"Invalid coefficient a1: {self.a1}")
        if not self.a2 > 0:
            raise ValueError(f"Invalid coefficient a2: {self.a2}")

    def f(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Return ``a1 * x1**2 + a2 * x2**2`` elementwise (``x1``, ``x2`` may be grids)."""
        return self.a1 * x1**2 + self.a2 * x2**2

    def grad(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        """Return the partial derivatives ``(2 * a1 * x1, 2 * a2 * x2)``."""
        return 2 * self.a1 * x1, 2 * self.a2 * x2

    def eigenvalues(self) -> tuple[float, float]:
        """Return the eigenvalues of the Hessian, ``(2 * a1, 2 * a2)``."""
        return 2 * self.a1, 2 * self.a2


def quadratic_2d(a1: float = 1.0, a2: float = 2.0) -> Quadratic2D:
    """Return ``a1 * x1**2 + a2 * x2**2``; the default is the gradient-descent example."""
    return Quadratic2D(a1, a2)


def ill_conditioned_2d() -> Quadratic2D:
    """Return ``0.1 * x1**2 + 2 * x2**2``, flat along ``x1`` and steep along ``x2``."""
    return Quadratic2D(0.1, 2.0)


def with_noise(grad: GradFn, sigma: float = 1.0, seed: int = 0) -> GradFn:
    """Return ``grad`` plus independent ``N(0, sigma**2)`` noise per coordinate and call.

    The noise comes from a private generator seeded with ``seed``, so a trace is reproducible
    whatever else has drawn random numbers before it.
    """
    if not sigma >= 0:
        raise ValueError(f"Invalid noise level sigma: {sigma}")
    gen = torch.Generator().manual_seed(seed)

    def noisy_grad(x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        g1, g2 = grad(x1, x2)
        g1 = g1 + sigma * torch.randn(g1.shape, generator=gen, dtype=g1.dtype)
        g2 = g2 + sigma * torch.randn(g2.shape, generator=gen, dtype=g2.dtype)
        return g1, g2

    return noisy_grad


def cosh(c: float = 0.5) -> Objective1D:
    """Return the convex ``f(x) = cosh(c * x)``, minimized at 0 with ``f''(0) = c**2``."""
    if not c > 0:
        raise ValueError(f"Invalid frequency c: {c}")
    return Objective1D(
        f=lambda x: torch.cosh(c * x),
        grad=lambda x: c * torch.sinh(c * x),
        hess=lambda x: c**2 * torch.cosh(c * x),
    )


@dataclass(frozen=True)
class DoubleWell2D:
    """``f(x1, x2) = x1**2 + (x2**2 - 1)**2 / 4``: a saddle at 0 between minima at ``x2 = ±1``.

    The Hessian at the origin is ``diag(2, -1)``: curved up along ``x1``, down along ``x2``.
    Gradient descent started on the line ``x2 = 0`` stays on it and converges to the saddle.
    """

    def f(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Return ``x1**2 + (x2**2 - 1)**2 / 4`` elementwise."""
        return x1**2 + (x2**2 - 1) ** 2 / 4

    def grad(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        """Return the partial derivatives ``(2 * x1, x2**3 - x2)``."""
        return 2 * x1, x2**3 - x2

    def hessian(self, x1: float, x2: float) -> Tensor:
        """Return the 2 x 2 Hessian ``diag(2, 3 * x2**2 - 1)`` at one point, in float64."""
        return torch.tensor([[2.0, 0.0], [0.0, 3.0 * x2**2 - 1.0]], dtype=torch.float64)


def double_well_2d() -> DoubleWell2D:
    """Return the saddle example ``x1**2 + (x2**2 - 1)**2 / 4`` (minima at ``(0, ±1)``)."""
    return DoubleWell2D()
