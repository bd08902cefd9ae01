r"""Gradient clipping by the global norm, as ``torch.nn.utils.clip_grad_norm_`` does it.

The global norm is the Euclidean norm of all gradients stacked into one vector,
$\|\mathbf{g}\| = (\sum_p \|\mathbf{g}_p\|^2)^{1/2}$. If it exceeds ``max_norm``, every gradient is
multiplied by ``max_norm / (norm + eps)``, so the direction is kept and the length becomes
``max_norm`` (up to ``eps``); otherwise nothing changes. With gradient accumulation, clip the
accumulated gradient once, after the last micro-batch and before the step: clipping is not linear,
so clipping each micro-batch's contribution is a different algorithm.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from d2lkit import checks


def global_grad_norm(params: Iterable[Tensor]) -> Tensor:
    """Return the Euclidean norm of all ``.grad`` tensors of ``params`` together (0 if none)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def clip_grad_norm_(params: Iterable[Tensor], max_norm: float, eps: float = 1e-6) -> Tensor:
    """Scale the gradients of ``params`` in place so their global norm is at most ``max_norm``.

    Returns the norm before clipping, like ``torch.nn.utils.clip_grad_norm_``.
    """
    max_norm = checks.positive("max_norm", max_norm)
    eps = checks.nonneg("eps", eps)
    params = list(params)
    norm = global_grad_norm(params)
    scale = torch.clamp(max_norm / (norm + eps), max=1.0)
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale.to(p.grad.dtype))
    return norm
