"""The path an optimizer takes on a toy objective of one or two variables, for plotting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from d2lkit import checks
from d2lkit.optim import Optimizer, _check_optimizer


def trace_2d(
    opt: Optimizer,
    grad_fn: Callable[[Tensor, Tensor], Sequence[Tensor | float]],
    x0: tuple[float, float] = (-5.0, -2.0),
    steps: int = 20,
) -> Tensor:
    """Return the float64 path ``[steps + 1, 2]`` of ``opt`` started at ``x0``.

    ``grad_fn(x1, x2)`` returns the two partial derivatives at ``(x1, x2)`` (0-dim tensors), as
    the seeds' ``f_grad`` do; the path can be drawn with ``d2lkit.plot.plot_trace_2d``.
    """
    _check_optimizer(opt)
    if not callable(grad_fn):
        raise TypeError(f"Invalid grad_fn: {grad_fn!r} (expected a function of (x1, x2))")
    if isinstance(x0, str) or not isinstance(x0, Sequence):
        raise TypeError(f"Invalid x0: {x0!r} (expected a pair of numbers)")
    if len(x0) != 2:
        raise ValueError(f"Invalid x0: {x0!r} (expected two coordinates)")
    x0 = (checks.real("x0[0]", x0[0]), checks.real("x0[1]", x0[1]))
    steps = checks.integer("steps", steps, minimum=0)
    params = [torch.tensor(x0, dtype=torch.float64)]
    state = opt.init(params)
    path = [params[0]]
    for _ in range(steps):
        x1, x2 = params[0]
        g = torch.stack([torch.as_tensor(gi, dtype=torch.float64) for gi in grad_fn(x1, x2)])
        params, state = opt.update([g], state, params, opt.hp)
        path.append(params[0])
    return torch.stack(path)


def trace_1d(
    opt: Optimizer, grad: Callable[[Tensor], Tensor], x0: float = 10.0, steps: int = 10
) -> Tensor:
    """Return the float64 path ``[steps + 1]`` of ``opt`` on a function of one variable.

    It is ``trace_2d`` on ``(x1, x2)`` with a gradient that is zero along ``x2``, so ``x2`` never
    moves and ``x1`` follows the 1-D iteration exactly.
    """
    x0 = checks.real("x0", x0)
    if not callable(grad):
        raise TypeError(f"Invalid grad: {grad!r} (expected a function of x)")
    path = trace_2d(opt, lambda x1, x2: (grad(x1), torch.zeros_like(x2)), (x0, 0.0), steps)
    return path[:, 0]
