"""Gradient accumulation under ``DistributedDataParallel``: ``no_sync()`` and a counting comm hook.

DDP all-reduces the gradients during every ``backward()``. With accumulation only the last
micro-batch of a group needs that: under ``with model.no_sync():`` the backward pass accumulates
into ``.grad`` locally, and the first backward outside it all-reduces the accumulated sum. Since
averaging is linear, the step is the same either way; only the number of all-reduces differs.
:func:`no_sync_worker` trains one model both ways on every rank and counts the all-reduces with a
communication hook that wraps DDP's default one. It runs under ``d2lkit.distributed.launch``.
"""

# No ``from __future__ import annotations`` here: DDP checks the comm hook's annotations at
# registration and rejects them as strings.
import contextlib
import copy
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from d2lkit import checks


@dataclass
class CommCount:
    """All-reduces launched by DDP, and the bytes of the gradient buckets they carried."""

    allreduces: int = 0
    bytes: int = 0


def counting_allreduce_hook(
    state: CommCount, bucket: dist.GradBucket
) -> torch.futures.Future[Tensor]:
    """Count the bucket in ``state``, then all-reduce it exactly as DDP's default hook does."""
    buffer = bucket.buffer()
    state.allreduces += 1
    state.bytes += buffer.numel() * buffer.element_size()
    return allreduce_hook(None, bucket)


@dataclass
class NoSyncTask:
    """One data-parallel run: every optimizer step uses ``world_size * accum_steps`` micro-batches.

    Step ``s`` takes the next ``world_size * accum_steps * micro_batch`` rows of ``(X, y)``; rank
    ``r`` takes the ``r``-th contiguous block of them, split into ``accum_steps`` micro-batches.
    """

    model: nn.Module
    X: Tensor
    y: Tensor
    micro_batch: int
    accum_steps: int
    steps: int
    lr: float = 0.1
    sync_modes: tuple[bool, ...] = (True, False)

    def __post_init__(self) -> None:
        checks.integer("micro_batch", self.micro_batch, minimum=1)
        checks.integer("accum_steps", self.accum_steps, minimum=1)
        checks.integer("steps", self.steps, minimum=1)
        checks.positive("lr", self.lr)


@dataclass
class NoSyncRun:
    """What one rank reports for one mode: final parameters and its communication count."""

    sync_every_micro_batch: bool
    params: Tensor
    comm: CommCount = field(default_factory=CommCount)


def micro_batches(
    task: NoSyncTask, step: int, rank: int, world_size: int
) -> list[tuple[Tensor, Tensor]]:
    """Return rank ``rank``'s micro-batches of optimizer step ``step`` (see ``NoSyncTask``)."""
    per_rank = task.accum_steps * task.micro_batch
    start = (step * world_size + rank) * per_rank
    if start + per_rank > len(task.y):
        raise ValueError(f"Invalid steps: {task.steps} steps need more than {len(task.y)} examples")
    return [
        (task.X[i: i + task.micro_batch], task.y[i: i + task.micro_batch])
        for i in range(start, start + per_rank, task.micro_batch)
    ]


def _train(task: NoSyncTask, rank: int, world_size: int, sync_every: bool) -> NoSyncRun:
    model = DistributedDataParallel(copy.deepcopy(task.model))
    run = NoSyncRun(sync_every, torch.empty(0))
    model.register_comm_hook(run.comm, counting_allreduce_hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=task.lr)
    for step in range(task.steps):
        optimizer.zero_grad(set_to_none=True)
        micro = micro_batches(task, step, rank, world_size)
        for j, (X, y) in enumerate(micro):
            # The forward pass too must run inside no_sync(): DDP decides there whether the
            # coming backward pass all-reduces.
            sync = sync_every or j == len(micro) - 1
            with contextlib.nullcontext() if sync else model.no_sync():
                loss = nn.functional.mse_loss(model(X), y) / task.accum_steps
                loss.backward()
        optimizer.step()
    run.params = torch.cat([p.detach().flatten() for p in model.module.parameters()])
    return run


def no_sync_worker(rank: int, world_size: int, task: NoSyncTask) -> list[NoSyncRun]:
    """Train ``task`` in every mode of ``task.sync_modes`` on this rank; return the runs."""
    if not dist.is_initialized():
        raise RuntimeError("no_sync_worker needs an initialized process group (use launch)")
    return [_train(task, rank, world_size, sync) for sync in task.sync_modes]


def big_batch_reference(task: NoSyncTask, world_size: int) -> Tensor:
    """Return the parameters after the same steps taken by one process on the whole batch."""
    model = copy.deepcopy(task.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=task.lr)
    rows = world_size * task.accum_steps * task.micro_batch
    for step in range(task.steps):
        X, y = task.X[step * rows: (step + 1) * rows], task.y[step * rows: (step + 1) * rows]
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(X), y).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])
