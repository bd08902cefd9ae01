"""The local SGD worker: what every rank trains, the history it records, its launch."""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from d2lkit.device import synchronize
from d2lkit.distributed.collectives import broadcast_, ring_allreduce_bytes
from d2lkit.distributed.launch import launch
from d2lkit.distributed.local_sgd import LocalSGD, LocalSGDConfig
from d2lkit.distributed.torch_engine import _TorchPostLocalSGD

__all__ = ["LocalSGDRun", "LocalSGDTask", "build_model", "local_sgd_worker", "train_local_sgd"]


@dataclass
class LocalSGDTask:
    """What every worker trains: an initial model, the data and the list of runs."""

    model: nn.Module
    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    configs: list[LocalSGDConfig]
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)


@dataclass
class LocalSGDRun:
    """The history of one run on one rank, one entry per evaluation (the first before training)."""

    config: LocalSGDConfig
    world_size: int
    num_params: int
    steps: list[int] = field(default_factory=list)
    """Local steps taken by each worker."""
    examples: list[int] = field(default_factory=list)
    """Examples processed by all workers together."""
    rounds: list[int] = field(default_factory=list)
    """Communication rounds: all-reduces of the model or of its gradient."""
    payload_bytes: list[int] = field(default_factory=list)
    """Bytes of all the tensors all-reduced so far."""
    train_time: list[float] = field(default_factory=list)
    """Training time on this rank, evaluation excluded."""
    comm_time: list[float] = field(default_factory=list)
    """Time on this rank inside the all-reduces (waiting for slower workers included)."""
    train_loss: list[float] = field(default_factory=list)
    """Mean minibatch loss over all workers since the previous evaluation."""
    test_acc: list[float] = field(default_factory=list)
    final_params: torch.Tensor | None = None

    @property
    def sent_bytes(self) -> list[float]:
        """Return the bytes each worker has sent so far, under the ring all-reduce cost model."""
        return [ring_allreduce_bytes(b, self.world_size) for b in self.payload_bytes]


def build_model(name: str = "mlp", hidden: int = 128) -> nn.Module:
    """Return a Fashion-MNIST classifier: ``'mlp'`` (one hidden layer) or ``'lenet'``."""
    if name == "mlp":
        if hidden < 1:
            raise ValueError(f"Invalid number of hidden units: {hidden}")
        return nn.Sequential(
            nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )
    if name == "lenet":
        from d2lkit.models import lenet

        return lenet()
    raise ValueError(f"Invalid model: {name!r} (expected 'mlp' or 'lenet')")


def _worker_device() -> torch.device:
    """Return this rank's device: its local GPU under NCCL, else the CPU."""
    if dist.get_backend() != "nccl":
        return torch.device("cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank() % torch.cuda.device_count()))
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> float:
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), chunk):
            logits = model(X[start: start + chunk])
            correct += int((logits.argmax(dim=1) == y[start: start + chunk]).sum())
    return correct / len(y)



def _train_run(
    config: LocalSGDConfig, task: LocalSGDTask, rank: int, world_size: int, device: torch.device
) -> LocalSGDRun:
    """Train one configuration on this rank and return its history."""
    torch.manual_seed(config.seed + rank)
    model = copy.deepcopy(task.model).to(device)
    broadcast_(model.parameters())
    X, y = (t.to(device) for t in task.train)
    X_test, y_test = (t.to(device) for t in task.test)
    loss_fn = task.loss_fn.to(device)
    sampler = DistributedSampler(range(len(y)), world_size, rank, shuffle=True, seed=config.seed)
    steps_per_epoch = len(sampler) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"Batch size {config.batch_size} exceeds the {len(sampler)} examples per worker"
        )
    total_steps = steps_per_epoch * config.epochs
    num_params = sum(p.numel() for p in model.parameters())

    warmup_steps = total_steps if config.synchronous else config.warmup_steps
    schedule: LocalSGD | _TorchPostLocalSGD
    if config.engine == "torch":
        schedule = _TorchPostLocalSGD(model, config, warmup_steps)
        net, optimizer = schedule.model, schedule.optimizer
    else:
        net = model
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        schedule = LocalSGD(
            model.parameters(), config.local_steps, warmup_steps=warmup_steps,
            outer_lr=config.outer_lr, outer_momentum=config.outer_momentum,
            nesterov=config.nesterov,
        )

    run = LocalSGDRun(config, world_size, num_params)
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    train_time = 0.0

    def record() -> None:
        nonlocal loss_sum, loss_count
        stats = torch.stack([loss_sum, torch.tensor(float(loss_count), device=device)])
        dist.all_reduce(stats)
        acc = torch.tensor(_accuracy(model, X_test, y_test) if rank == 0 else 0.0,
                           dtype=torch.float64, device=device)
        dist.broadcast(acc, src=0)
        steps = schedule.num_steps
        run.steps.append(steps)
        run.examples.append(steps * config.batch_size * world_size)
        run.rounds.append(schedule.rounds)
        run.payload_bytes.append(schedule.payload_bytes)
        run.comm_time.append(schedule.comm_time)
        run.train_time.append(train_time)
        run.train_loss.append(float(stats[0] / stats[1]) if loss_count else math.nan)
        run.test_acc.append(float(acc))
        loss_sum, loss_count = torch.zeros((), device=device), 0
        dist.barrier()

    record()
    next_eval = config.eval_every
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), device=device)
        tik = time.perf_counter()
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size: (i + 1) * config.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(net(X[idx]), y[idx])
            loss.backward()
            schedule.synchronize_gradients()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach()
            loss_count += 1
            if schedule.num_steps == total_steps and not schedule.synchronized:
                schedule.average()
            if schedule.num_steps >= next_eval and schedule.synchronized:
                synchronize(device)
                train_time += time.perf_counter() - tik
                record()
                next_eval = (schedule.num_steps // config.eval_every + 1) * config.eval_every
                tik = time.perf_counter()
        synchronize(device)
        train_time += time.perf_counter() - tik
    if run.steps[-1] != total_steps:
        record()
    run.final_params = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu()
    return run


def local_sgd_worker(rank: int, world_size: int, task: LocalSGDTask) -> list[LocalSGDRun]:
    """Train every configuration of ``task`` on this rank of the process group; return the runs."""
    if not dist.is_initialized():
        raise RuntimeError("local_sgd_worker needs an initialized process group (use launch)")
    if (rank, world_size) != (dist.get_rank(), dist.get_world_size()):
        raise ValueError(
            f"Rank {rank} of {world_size} does not match the process group "
            f"(rank {dist.get_rank()} of {dist.get_world_size()})"
        )
    device = _worker_device()
    dist.barrier()
    return [_train_run(config, task, rank, world_size, device) for config in task.configs]



def train_local_sgd(
    task: LocalSGDTask, world_size: int, backend: str = "gloo"
) -> list[LocalSGDRun]:
    """Train ``task`` on ``world_size`` spawned workers and return rank 0's runs.

    Raises ``RuntimeError`` if the ranks end a run with different parameters.
    """
    per_rank = launch(local_sgd_worker, world_size, task, backend=backend)
    for rank, runs in enumerate(per_rank[1:], start=1):
        for ours, theirs in zip(per_rank[0], runs):
            if not torch.equal(ours.final_params, theirs.final_params):
                raise RuntimeError(f"Rank {rank} ended {ours.config.label!r} with other parameters")
    return per_rank[0]

