r"""Constraints by projection: the Euclidean projection onto a ball and projected gradient descent.

For a closed convex set $\mathcal{C}$, $\mathrm{Proj}_\mathcal{C}(\mathbf{x})$ is the point of
$\mathcal{C}$ closest to $\mathbf{x}$. For the ball $\|\mathbf{x} - \mathbf{c}\| \le r$ it is
$\mathbf{c} + (\mathbf{x} - \mathbf{c}) \min(1, r / \|\mathbf{x} - \mathbf{c}\|)$. Projected
gradient descent takes a gradient step and projects back:
$\mathbf{x}_t = \mathrm{Proj}_\mathcal{C}(\mathbf{x}_{t-1} - \eta \nabla f(\mathbf{x}_{t-1}))$.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from d2lkit import checks


def project_ball(x: Tensor, radius: float, center: Tensor | None = None) -> Tensor:
    """Return the point of the ball ``||z - center|| <= radius`` closest to ``x`` (last axis)."""
    radius = checks.nonneg("radius", radius)
    c = torch.zeros_like(x) if center is None else torch.as_tensor(center, dtype=x.dtype)
    offset = x - c
    norm = torch.linalg.vector_norm(offset, dim=-1, keepdim=True)
    scale = torch.where(norm > radius, radius / norm.clamp(min=torch.finfo(x.dtype).tiny), 1.0)
    return c + offset * scale


def projected_gd(
    grad: Callable[[Tensor], Tensor],
    project: Callable[[Tensor], Tensor],
    x0: Tensor,
    lr: float,
    steps: int,
) -> Tensor:
    """Return the float64 path ``[steps + 1, d]`` of projected gradient descent from ``x0``.

    ``x0`` is projected first, so every iterate is feasible.
    """
    lr = checks.positive("lr", lr)
    steps = checks.integer("steps", steps, minimum=0)
    x = project(torch.as_tensor(x0, dtype=torch.float64))
    path = [x]
    for _ in range(steps):
        x = project(x - lr * grad(x))
        path.append(x)
    return torch.stack(path)
