"""The collectives of data-parallel training: averaging and broadcasting tensors, and their cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist

__all__ = ["allreduce_mean_", "broadcast_", "ring_allreduce_bytes"]


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

