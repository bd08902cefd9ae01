r"""Gradient accumulation: one optimizer step from several micro-batches.

For a loss that averages over the $N$ examples of a batch, splitting the batch into micro-batches
$\mathcal{B}_1, \ldots, \mathcal{B}_k$ of sizes $n_1, \ldots, n_k$ gives
$\nabla \frac{1}{N} \sum_i \ell_i = \sum_j \frac{n_j}{N} \nabla L_{\mathcal{B}_j}$, where
$L_{\mathcal{B}_j}$ is the mean loss of micro-batch $j$. So each micro-batch must be weighted by
$n_j / N$, not by $1 / k$. The two agree only when all micro-batches have the same size, which
fails for the short last group of an epoch whose number of micro-batches is not a multiple of the
accumulation steps. For a summed loss no weight is needed.

The helpers here ask for *per-example* losses (``reduction='none'`` in ``torch.nn`` terms) and the
reduction the equivalent big batch would use. They backpropagate the *sum* of each micro-batch's
losses as it arrives and, for ``reduction='mean'``, divide the accumulated gradients once by the
number of loss elements actually seen. The group size is therefore never needed in advance, and a
short group is handled by construction. The result equals the big-batch step up to floating-point
round-off for models whose per-example losses do not depend on the other examples in the batch;
batch normalization breaks that assumption, and no scaling can repair it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Literal, TypeVar

import torch
from torch import Tensor, nn

from d2lkit import checks

Reduction = Literal["mean", "sum"]
LossFn = Callable[[Tensor, Tensor], Tensor]
T = TypeVar("T")

_REDUCTIONS = ("mean", "sum")


def _check_reduction(reduction: str) -> str:
    return checks.choice("reduction", reduction, _REDUCTIONS)


def accumulation_step(
    model: nn.Module,
    loss_fn: LossFn,
    micro_batches: Iterable[Sequence[Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    reduction: Reduction = "mean",
) -> float:
    """Take one optimizer step on a group of micro-batches as if it were one batch; return its loss.

    Each micro-batch is a tuple ``(*inputs, target)``; ``loss_fn(model(*inputs), target)`` must
    return one loss per example (or per token), not a scalar. ``reduction`` is the reduction of the
    equivalent big batch: ``'mean'`` divides by the number of loss elements in the whole group.
    """
    _check_reduction(reduction)
    optimizer.zero_grad(set_to_none=True)
    total: Tensor | float = 0.0
    count = 0
    for batch in micro_batches:
        *inputs, target = batch
        losses = loss_fn(model(*inputs), target)
        if losses.ndim == 0:
            raise ValueError(
                "loss_fn must return one loss per example (reduction='none'), got a scalar"
            )
        part = losses.sum()
        part.backward()
        total = total + part.detach()
        count += losses.numel()
    if count == 0:
        raise ValueError("Invalid micro_batches: the group is empty")
    if reduction == "mean":
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.div_(count)
        total = total / count
    optimizer.step()
    return float(total)


def grouped(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of ``size`` consecutive items; the last list holds what is left (maybe fewer).

    ``size`` is checked when ``grouped`` is called, not when the first group is asked for.
    """
    return _groups(iter(items), checks.integer("size", size, minimum=1))


def _groups(it: Iterator[T], size: int) -> Iterator[list[T]]:
    while group := list(islice(it, size)):
        yield group


def train_accumulated(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Sequence[Tensor]],
    optimizer: torch.optim.Optimizer,
    accum_steps: int,
    *,
    reduction: Reduction = "mean",
) -> list[float]:
    """Run one pass over ``batches``, one step per ``accum_steps`` micro-batches; return the losses.

    The last group may hold fewer micro-batches (and a last micro-batch fewer examples); it is
    weighted by the examples it really holds, so every step equals the big-batch step on the
    concatenation of its micro-batches. The returned list holds each step's group loss.
    """
    accum_steps = checks.integer("accum_steps", accum_steps, minimum=1)
    _check_reduction(reduction)
    return [
        accumulation_step(model, loss_fn, group, optimizer, reduction=reduction)
        for group in grouped(batches, accum_steps)
    ]
