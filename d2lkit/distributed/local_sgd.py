"""When the workers of (post-)local SGD communicate, and the configuration of one training run."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from d2lkit.device import synchronize
from d2lkit.distributed.collectives import allreduce_mean_

__all__ = ["LocalSGD", "LocalSGDConfig"]


class LocalSGD:
    """When workers communicate in (post-)local SGD, with an optional outer optimizer (DiLoCo).

    Call ``synchronize_gradients()`` between ``backward()`` and the inner optimizer's ``step()``,
    and ``step()`` after it. The first ``warmup_steps`` steps are synchronous SGD: gradients are
    averaged over the workers at every step, as DDP does. After them, every worker takes
    ``local_steps`` steps on its own, then the parameters are averaged. With ``outer_lr=1`` and
    ``outer_momentum=0`` the average becomes the new model; otherwise the difference between the
    model at the start of the round and the average is an *outer gradient*, applied by SGD with
    (Nesterov) momentum on the model of the start of the round.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        local_steps: int,
        *,
        warmup_steps: int = 0,
        outer_lr: float = 1.0,
        outer_momentum: float = 0.0,
        nesterov: bool = False,
        group: dist.ProcessGroup | None = None,
    ) -> None:
        _check_schedule(local_steps, warmup_steps, outer_lr, outer_momentum, nesterov)
        self.params = list(params)
        self.local_steps = local_steps
        self.warmup_steps = warmup_steps
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.num_steps = 0
        self.rounds = 0
        self.payload_bytes = 0
        self.comm_time = 0.0
        self.synchronized = True
        self.anchor: list[torch.Tensor] | None = None
        self.outer: torch.optim.SGD | None = None
        if outer_lr != 1.0 or outer_momentum != 0.0:
            self.anchor = [p.detach().clone() for p in self.params]
            self.outer = torch.optim.SGD(
                self.anchor, lr=outer_lr, momentum=outer_momentum, nesterov=nesterov
            )

    @property
    def in_warmup(self) -> bool:
        """Return whether the next step is a synchronous (gradient all-reduce) step."""
        return self.num_steps < self.warmup_steps

    def synchronize_gradients(self) -> None:
        """In the warm-up phase, replace every gradient by its mean over the workers."""
        if self.in_warmup:
            self._allreduce([p.grad for p in self.params if p.grad is not None])

    def step(self) -> bool:
        """Count one local step; at the end of a round, average; return whether it averaged."""
        self.num_steps += 1
        if self.num_steps <= self.warmup_steps:
            if self.num_steps == self.warmup_steps and self.anchor is not None:
                with torch.no_grad():
                    for a, p in zip(self.anchor, self.params):
                        a.copy_(p)
            return False
        self.synchronized = False
        if (self.num_steps - self.warmup_steps) % self.local_steps == 0:
            self.average()
            return True
        return False

    def average(self) -> None:
        """End the current round now: average the parameters (through the outer optimizer)."""
        if self.synchronized:
            return
        if self.outer is None or self.anchor is None:
            self._allreduce(self.params)
        else:
            mean = [p.detach().clone() for p in self.params]
            self._allreduce(mean)
            for a, m in zip(self.anchor, mean):
                a.grad = a.detach() - m
            self.outer.step()
            with torch.no_grad():
                for p, a in zip(self.params, self.anchor):
                    p.copy_(a)
        self.synchronized = True

    def _allreduce(self, tensors: Sequence[torch.Tensor]) -> None:
        device = tensors[0].device
        synchronize(device)
        tik = time.perf_counter()
        self.payload_bytes += allreduce_mean_(tensors, self.group)
        synchronize(device)
        self.comm_time += time.perf_counter() - tik
        self.rounds += 1


def _check_schedule(
    local_steps: int, warmup_steps: int, outer_lr: float, outer_momentum: float, nesterov: bool
) -> None:
    if local_steps < 1:
        raise ValueError(f"Invalid number of local steps: {local_steps}")
    if warmup_steps < 0:
        raise ValueError(f"Invalid number of warm-up steps: {warmup_steps}")
    if not outer_lr > 0.0:
        raise ValueError(f"Invalid outer learning rate: {outer_lr}")
    if not 0.0 <= outer_momentum < 1.0:
        raise ValueError(f"Invalid outer momentum: {outer_momentum}")
    if nesterov and outer_momentum == 0.0:
        raise ValueError("Nesterov outer momentum needs outer_momentum > 0")


@dataclass(frozen=True)
class LocalSGDConfig:
    """One training run of (post-)local SGD; every size is per worker."""

    local_steps: int = 1
    """H: local steps between two averagings of the parameters."""
    synchronous: bool = False
    """All-reduce the gradients at every step (DDP) instead; needs ``local_steps=1``."""
    warmup_steps: int = 0
    """Post-local SGD: steps of synchronous SGD before local SGD starts."""
    lr: float = 0.1
    momentum: float = 0.0
    batch_size: int = 32
    epochs: int = 1
    outer_lr: float = 1.0
    outer_momentum: float = 0.0
    nesterov: bool = False
    engine: str = "d2lkit"
    """``"d2lkit"`` (``LocalSGD``) or ``"torch"`` (DDP with ``post_localSGD_hook`` and
    ``PostLocalSGDOptimizer``)."""
    eval_every: int = 16
    """Evaluate at the first synchronization at or after every ``eval_every`` local steps."""
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        _check_schedule(
            self.local_steps, self.warmup_steps, self.outer_lr, self.outer_momentum, self.nesterov
        )
        if not self.lr > 0.0:
            raise ValueError(f"Invalid learning rate: {self.lr}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {self.momentum}")
        if self.batch_size < 1:
            raise ValueError(f"Invalid batch size: {self.batch_size}")
        if self.epochs < 1:
            raise ValueError(f"Invalid number of epochs: {self.epochs}")
        if self.eval_every < 1:
            raise ValueError(f"Invalid evaluation interval: {self.eval_every}")
        if self.seed < 0:
            raise ValueError(f"Invalid seed: {self.seed}")
        if self.engine not in ("d2lkit", "torch"):
            raise ValueError(f"Invalid engine: {self.engine!r} (expected 'd2lkit' or 'torch')")
        if self.synchronous and (self.local_steps != 1 or self.warmup_steps != 0
                                 or self.outer_lr != 1.0 or self.outer_momentum != 0.0):
            raise ValueError("Synchronous SGD needs local_steps=1, warmup_steps=0 and no outer "
                             "optimizer (outer_lr=1, outer_momentum=0)")
        if self.engine == "torch" and (self.outer_lr != 1.0 or self.outer_momentum != 0.0):
            raise ValueError("The torch engine needs outer_lr=1 and outer_momentum=0")

    @property
    def label(self) -> str:
        """Return ``name`` or a short description such as ``'local SGD, H=4'``."""
        if self.name:
            return self.name
        if self.synchronous:
            return "synchronous SGD"
        label = f"local SGD, H={self.local_steps}"
        if self.warmup_steps:
            label = f"post-local SGD, H={self.local_steps}"
        if self.outer_lr != 1.0:
            label += f", outer lr {self.outer_lr}"
        if self.outer_momentum:
            label += f", outer {'Nesterov ' if self.nesterov else ''}momentum {self.outer_momentum}"
        return label

