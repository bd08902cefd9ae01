"""The collectives of data-parallel training: averaging and broadcasting tensors, and their cost."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist

__all__ = ["allreduce_mean_", "broadcast_", "fit_ring", "ring_allreduce_bytes", "time_allreduce"]


def allreduce_mean_(tensors: Sequence[torch.Tensor], group: dist.ProcessGroup | None = None) -> int:
    """Replace each tensor by its mean over the group, in one all-reduce; return payload bytes."""
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    dist.all_reduce(flat, group=group)
    flat /= dist.get_world_size(group)
    offset = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(flat[offset: offset + t.numel()].view_as(t))
            offset += t.numel()
    return flat.numel() * flat.element_size()


def broadcast_(
    tensors: Iterable[torch.Tensor], src: int = 0, group: dist.ProcessGroup | None = None
) -> None:
    """Overwrite every tensor with rank ``src``'s copy, as DDP does with a model at construction."""
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=src, group=group)


def ring_allreduce_bytes(payload_bytes: float, world_size: int) -> float:
    """Return the bytes each worker sends in a ring all-reduce: ``2 (K - 1) / K * payload``."""
    if world_size < 1:
        raise ValueError(f"Invalid world size: {world_size}")
    return 2 * (world_size - 1) / world_size * payload_bytes


def time_allreduce(
    rank: int, world_size: int, sizes: Sequence[int], repeats: int = 20
) -> list[float]:
    """Return the seconds of one all-reduce of ``sizes[i]`` bytes of float32, for each i.

    A worker for :func:`~d2lkit.distributed.launch`: every rank runs it, and each all-reduce is
    preceded by a barrier, so that a measurement starts with all ranks ready. One untimed
    all-reduce per size comes first (the backend sets up its buffers on first use), then the
    fastest of ``repeats`` timed ones is kept: other processes can only add time to a run.
    """
    if not dist.is_initialized():
        raise RuntimeError("time_allreduce needs an initialized process group (use launch)")
    fastest = []
    for size in sizes:
        tensor = torch.zeros(max(1, size // 4))
        dist.all_reduce(tensor)
        seconds = []
        for _ in range(repeats):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(tensor)
            seconds.append(time.perf_counter() - start)
        fastest.append(min(seconds))
    return fastest


def fit_ring(
    sizes: Sequence[float], seconds: Sequence[float], world_size: int
) -> tuple[float, float]:
    r"""Fit $\alpha$ (seconds per message) and $\beta$ (bytes per second) of the ring model.

    Least squares of $T = 2(K-1)\alpha + \frac{2(K-1)}{K} S / \beta$ on the measured times,
    each weighted by its inverse, so that the small payloads (which determine $\alpha$) count as
    much as the large ones. Raises ``ValueError`` if a fitted value is not positive: the times do
    not follow the model (too few sizes, or too noisy).
    """
    if world_size < 2:
        raise ValueError(f"Invalid world_size: {world_size!r} (expected >= 2 workers in a ring)")
    if len(sizes) < 2:
        raise ValueError(f"Invalid sizes: {sizes!r} (expected at least two payload sizes)")
    if len(seconds) != len(sizes):
        raise ValueError(f"Invalid seconds: {seconds!r} (expected one time per size)")
    k = world_size
    times = torch.tensor(seconds, dtype=torch.float64)
    design = torch.tensor([[2 * (k - 1), ring_allreduce_bytes(s, k)] for s in sizes],
                          dtype=torch.float64)
    coef = torch.linalg.lstsq(design / times[:, None], torch.ones_like(times)[:, None]).solution
    alpha, inverse_beta = coef[:, 0].tolist()
    if alpha <= 0 or inverse_beta <= 0:
        raise ValueError(f"The times do not follow the ring model: the fit gives alpha "
                         f"{alpha:.3g} s and 1/beta {inverse_beta:.3g} s/byte (expected both > 0)")
    return alpha, 1 / inverse_beta
