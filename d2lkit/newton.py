"""Newton's method in one variable, plain and damped.

Newton's step divides the derivative by the curvature, ``x - lr * f'(x) / f''(x)``. Near a minimum
with ``f'' > 0`` it converges quadratically; where ``f'' < 0`` it steps *uphill*, towards a maximum.
The damped variant divides by ``max(|f''(x)|, min_curvature)`` instead, which keeps every step a
descent direction and bounds its length where the curvature vanishes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from d2lkit import checks
from d2lkit.toy import Objective1D


def newton_1d(
    objective: Objective1D,
    x0: float,
    steps: int,
    *,
    lr: float = 1.0,
    damped: bool = False,
    min_curvature: float = 1e-8,
) -> Tensor:
    """Return the float64 path ``[steps + 1]`` of (damped) Newton's method on ``objective``.

    ``lr`` scales every step (1 is the pure Newton step). With ``damped=True`` the curvature is
    replaced by ``max(|f''(x)|, min_curvature)``, so the step always points downhill.
    """
    x0 = checks.real("x0", x0)
    steps = checks.integer("steps", steps, minimum=0)
    lr = checks.positive("lr", lr)
    min_curvature = checks.positive("min_curvature", min_curvature)
    x = torch.tensor(x0, dtype=torch.float64)
    path = [x]
    for _ in range(steps):
        curvature = objective.hess(x)
        if damped:
            curvature = curvature.abs().clamp(min=min_curvature)
        x = x - lr * objective.grad(x) / curvature
        path.append(x)
    return torch.stack(path)
