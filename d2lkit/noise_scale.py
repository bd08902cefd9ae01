r"""The gradient noise scale and the critical batch size (McCandlish et al., 2018).

Let $G$ be the full-batch gradient and $\Sigma$ the covariance of the gradient of one example. The
gradient $G_B$ of a batch of $B$ independently drawn examples satisfies
$\mathbb{E} |G_B|^2 = |G|^2 + \operatorname{tr}\Sigma / B$. Measuring $|G_B|^2$ at two batch sizes
$b < b'$ therefore gives unbiased estimates of both terms (the paper's Appendix A):
$|G|^2 \approx (b' |G_{b'}|^2 - b |G_b|^2) / (b' - b)$ and
$\operatorname{tr}\Sigma \approx (|G_b|^2 - |G_{b'}|^2) / (1/b - 1/b')$. Their ratio is the
*simple noise scale* $B_\text{simple} = \operatorname{tr}\Sigma / |G|^2$. A ratio of unbiased
estimates is not unbiased, and a single estimate is very noisy, so the paper smooths numerator
and denominator separately with exponential moving averages before dividing;
:class:`NoiseScaleTracker` does so.

The noise scale predicts the *critical batch size*: the number of optimizer steps $S$ and of
examples $E = BS$ needed to reach a fixed loss trade off as $S = S_\text{min}(1 + B_\text{crit}/B)$,
that is $E = E_\text{min} + S_\text{min} B$ with $B_\text{crit} = E_\text{min} / S_\text{min}$;
:func:`fit_tradeoff` fits this curve to measured pairs $(B, S)$.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn


class GradSqNorms(NamedTuple):
    """Squared gradient norms measured at two batch sizes."""

    small: float  # mean over the micro-batches of their squared gradient norms
    big: float  # squared norm of the micro-batches' mean gradient
    b_small: int
    b_big: int


class NoiseComponents(NamedTuple):
    """Unbiased estimates of the squared true gradient norm and of the gradient noise trace."""

    grad_sq: float  # squared norm of the true gradient
    trace_cov: float  # trace of the per-example gradient covariance


class TradeoffFit(NamedTuple):
    r"""Fitted steps-versus-examples trade-off $S = S_\text{min} (1 + B_\text{crit} / B)$."""

    s_min: float
    e_min: float
    b_crit: float


def _check_sizes(b_small: int, b_big: int) -> None:
    if b_small < 1:
        raise ValueError(f"Invalid b_small: {b_small}")
    if b_big <= b_small:
        raise ValueError(f"Invalid b_big: {b_big} (must exceed b_small={b_small})")


def grad_sq_norms(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    batch: Sequence[Tensor],
    b_small: int,
) -> GradSqNorms:
    """Return the squared gradient norm at ``b_small`` (averaged) and at the whole batch.

    ``batch`` is ``(*inputs, target)`` with ``b_big`` examples, a multiple of ``b_small``;
    ``loss_fn`` returns per-example losses. The batch is split into ``b_big / b_small``
    micro-batches, each gradient is computed with ``torch.autograd.grad`` (``.grad`` is left
    untouched) and the big-batch gradient is their average, exactly as in gradient accumulation.
    The model's mode (train/eval) is the caller's choice.
    """
    *inputs, target = batch
    b_big = target.shape[0]
    _check_sizes(b_small, b_big)
    if b_big % b_small:
        raise ValueError(f"Invalid b_small: {b_small} (must divide the batch size {b_big})")
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    small_sq = 0.0
    k = b_big // b_small
    for j in range(k):
        part = slice(j * b_small, (j + 1) * b_small)
        loss = loss_fn(model(*(x[part] for x in inputs)), target[part]).mean()
        grads = torch.autograd.grad(loss, params)
        small_sq += sum(float(g.pow(2).sum()) for g in grads) / k
        for t, g in zip(total, grads, strict=True):
            t.add_(g, alpha=1.0 / k)
    big_sq = sum(float(t.pow(2).sum()) for t in total)
    return GradSqNorms(small_sq, big_sq, b_small, b_big)


def noise_components(
    g_small_sq: float, g_big_sq: float, b_small: int, b_big: int
) -> NoiseComponents:
    r"""Return the unbiased estimates of $|G|^2$ and $\operatorname{tr}\Sigma$ from two sizes."""
    _check_sizes(b_small, b_big)
    grad_sq = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
    trace_cov = (g_small_sq - g_big_sq) / (1.0 / b_small - 1.0 / b_big)
    return NoiseComponents(grad_sq, trace_cov)


class NoiseScaleTracker:
    r"""Moving averages of $|G|^2$ and $\operatorname{tr}\Sigma$, and their ratio $B_\text{simple}$.

    The averages are bias-corrected like Adam's moments, so the first update already gives the
    plain estimate.
    """

    def __init__(self, beta: float = 0.9) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta: {beta}")
        self.beta = beta
        self.steps = 0
        self._grad_sq = 0.0
        self._trace_cov = 0.0

    def update(self, norms: GradSqNorms) -> float:
        r"""Fold one measurement into the averages; return the current $B_\text{simple}$."""
        est = noise_components(*norms)
        self.steps += 1
        self._grad_sq = self.beta * self._grad_sq + (1 - self.beta) * est.grad_sq
        self._trace_cov = self.beta * self._trace_cov + (1 - self.beta) * est.trace_cov
        return self.b_simple

    @property
    def grad_sq(self) -> float:
        """Bias-corrected moving average of $|G|^2$."""
        return self._grad_sq / (1 - self.beta**self.steps) if self.steps else math.nan

    @property
    def trace_cov(self) -> float:
        r"""Bias-corrected moving average of $\operatorname{tr}\Sigma$."""
        return self._trace_cov / (1 - self.beta**self.steps) if self.steps else math.nan

    @property
    def b_simple(self) -> float:
        """The simple noise scale, their ratio (``inf`` while the average of $|G|^2$ is <= 0)."""
        if not self.steps:
            return math.nan
        return self.trace_cov / self.grad_sq if self.grad_sq > 0 else math.inf


def fit_tradeoff(batch_sizes: Sequence[float], steps: Sequence[float]) -> TradeoffFit:
    r"""Fit $S = S_\text{min} + E_\text{min} / B$ to measured steps by relative least squares."""
    if len(batch_sizes) != len(steps) or len(steps) < 2:
        raise ValueError(
            f"Invalid data: need two or more (batch size, steps) pairs, got "
            f"{len(batch_sizes)} batch sizes and {len(steps)} step counts"
        )
    b = torch.as_tensor(batch_sizes, dtype=torch.float64)
    s = torch.as_tensor(steps, dtype=torch.float64)
    if (b <= 0).any() or (s <= 0).any():
        raise ValueError("Invalid data: batch sizes and step counts must be positive")
    design = torch.stack([torch.ones_like(b), 1.0 / b], dim=1) / s[:, None]
    coef = torch.linalg.lstsq(design, torch.ones_like(s)[:, None]).solution[:, 0]
    s_min, e_min = float(coef[0]), float(coef[1])
    b_crit = e_min / s_min if s_min > 0 else math.inf
    return TradeoffFit(s_min, e_min, b_crit)
