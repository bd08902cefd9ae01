"""Post-local SGD built from torch's own pieces: DDP's communication hook and model averager."""

from __future__ import annotations

import math
import warnings

import torch
import torch.distributed as dist
from torch import nn

from d2lkit.distributed.local_sgd import LocalSGDConfig


class _TorchPostLocalSGD:
    """Post-local SGD from torch's own pieces, behind ``LocalSGD``'s interface and counters."""

    def __init__(self, model: nn.Module, config: LocalSGDConfig, warmup_steps: int) -> None:
        from torch.distributed.algorithms.ddp_comm_hooks.post_localSGD_hook import (
            PostLocalSGDState,
            post_localSGD_hook,
        )
        from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager
        from torch.distributed.optim import PostLocalSGDOptimizer

        self.model = nn.parallel.DistributedDataParallel(model)
        state = PostLocalSGDState(None, None, warmup_steps, post_local_gradient_allreduce=False)
        self.model.register_comm_hook(state, post_localSGD_hook)
        inner = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=config.momentum)
        # torch's averager averages after the first local step of each period; shifting its
        # warm-up by H - 1 steps makes it average after the H-th, as LocalSGD does.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            averager = PeriodicModelAverager(
                config.local_steps, warmup_steps + config.local_steps - 1
            )
        self.optimizer = PostLocalSGDOptimizer(inner, averager)
        self.local_steps, self.warmup_steps = config.local_steps, warmup_steps
        self.bytes_per_round = sum(p.numel() * p.element_size() for p in model.parameters())
        self.num_steps = self.rounds = self.payload_bytes = 0
        self.comm_time = math.nan
        self.synchronized = True

    def synchronize_gradients(self) -> None:
        """Nothing to do: DDP's communication hook all-reduces the gradients in ``backward()``."""

    def step(self) -> None:
        """Count one step and the communication that DDP and the averager did for it."""
        self.num_steps += 1
        if self.num_steps > self.warmup_steps:
            self.synchronized = (self.num_steps - self.warmup_steps) % self.local_steps == 0
        if self.synchronized:
            self._count()

    def average(self) -> None:
        """End the current round now with torch's parameter averaging."""
        from torch.distributed.algorithms.model_averaging.utils import average_parameters

        if not self.synchronized:
            average_parameters(iter(self.model.parameters()), dist.group.WORLD)
            self._count()
            self.synchronized = True

    def _count(self) -> None:
        self.rounds += 1
        self.payload_bytes += self.bytes_per_round
