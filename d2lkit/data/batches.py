"""Minibatches of tensors that already sit on their device."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from d2lkit import checks


class MinibatchIter:
    """Iterate over minibatches of tensors that already sit on their device.

    Each pass (epoch) draws a new permutation from a generator seeded once with ``seed`` and
    gathers each minibatch with one indexing operation per tensor: no per-item Python work, no
    worker processes, no host-to-device copies, and nothing gathered for batches never reached.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not tensors:
            raise ValueError("MinibatchIter needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"Tensors differ in length: {[len(t) for t in tensors]}")
        self.tensors = tensors
        self.batch_size = checks.integer("batch_size", batch_size, minimum=1)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(checks.integer("seed", seed))

    @property
    def num_examples(self) -> int:
        """Return the number of examples in one pass."""
        return len(self.tensors[0])

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_examples // self.batch_size
        return -(-self.num_examples // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = None
        if self.shuffle:
            order = torch.randperm(self.num_examples, generator=self.generator)
            order = order.to(self.tensors[0].device)
        for i in range(len(self)):
            start = i * self.batch_size
            if order is None:
                yield tuple(t[start: start + self.batch_size] for t in self.tensors)
            else:
                idx = order[start: start + self.batch_size]
                yield tuple(t[idx] for t in self.tensors)
