"""Data-parallel training with ``torch.distributed``: process launch, all-reduce helpers, local SGD.

One worker function, :func:`local_sgd_worker`, runs under two entry points:

* from Python or a notebook, ``launch(local_sgd_worker, world_size, task)`` starts the workers on
  this machine, joins them in one process group (gloo on 127.0.0.1, a port chosen by the OS) and
  returns every rank's result;
* from a shell, ``torchrun --nproc_per_node=N -m d2lkit.distributed [options]`` (or the console
  script: ``torchrun --nproc_per_node=N --no-python d2lkit-local-sgd [options]``), on several
  machines with torchrun's usual ``--nnodes``, ``--node_rank`` and ``--master_addr`` or
  ``--rdzv_endpoint``. Without torchrun, ``python -m d2lkit.distributed --nproc N`` uses ``launch``.

Every worker runs with one intra-op thread by default: K workers on a machine with few cores would
otherwise each start one thread per core and fight over them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import datetime
import json
import math
import os
import pickle
import queue as queue_module
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DistributedSampler

from d2lkit.device import synchronize

__all__ = [
    "LocalSGD",
    "LocalSGDConfig",
    "LocalSGDRun",
    "LocalSGDTask",
    "WorkerError",
    "allreduce_mean_",
    "broadcast_",
    "build_model",
    "launch",
    "local_sgd_worker",
    "main",
    "ring_allreduce_bytes",
    "train_local_sgd",
]

HOST = "127.0.0.1"


# --------------------------------------------------------------------------------------------
# Collectives


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


# --------------------------------------------------------------------------------------------
# Local SGD


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


# --------------------------------------------------------------------------------------------
# Launching processes


class WorkerError(RuntimeError):
    """A worker raised or died; ``rank`` says which, the message carries its error and traceback."""

    def __init__(self, rank: int, message: str) -> None:
        super().__init__(f"rank {rank} {message}")
        self.rank = rank


def _set_process_name(name: str) -> None:
    """Name this process, as ``ps`` and ``/proc/<pid>/comm`` show it (Linux only)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_name = 15
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_name, name.encode()[:15])


def _exit_when_launcher_dies(lifeline: Any) -> None:
    """Exit this process as soon as the launcher closes its end of ``lifeline``, or dies."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv()
        os._exit(1)

    threading.Thread(target=watch, name="d2lkit-lifeline", daemon=True).start()


def _bootstrap(
    rank: int,
    world_size: int,
    port: int,
    backend: str,
    threads: int,
    init_timeout: float,
    collective_timeout: float,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    results: Any,
    lifeline: Any,
) -> None:
    """Run in a new process: join the process group, call ``fn``, send back its result."""
    _set_process_name(f"d2lkit-rank{rank}")
    _exit_when_launcher_dies(lifeline)
    torch.set_num_threads(threads)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR=HOST, MASTER_PORT=str(port))
    code = 0
    try:
        store = dist.TCPStore(HOST, port, world_size, is_master=False,
                              timeout=datetime.timedelta(seconds=init_timeout))
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=collective_timeout))
        message = (rank, True, pickle.dumps(fn(rank, world_size, *args)), time.time())
    except BaseException as err:
        detail = "".join(traceback.format_exception(err))
        message = (rank, False, f"failed with {type(err).__name__}: {err}\n\n{detail}", time.time())
        code = 1
    results.put(message)
    results.close()
    results.join_thread()
    if dist.is_initialized():
        dist.destroy_process_group()
    # Skip the interpreter's teardown, which takes seconds with torch loaded: the result is sent.
    os._exit(code)


def _exit_message(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name} before returning a result"
    return (f"exited with code {code} before returning a result "
            "(a traceback, if any, went to its standard error)")


def _first_failure(errors: dict[int, tuple[float, str]]) -> WorkerError:
    """Return the error of the worker that failed first; the others' errors often follow from it."""
    rank = min(errors, key=lambda r: (errors[r][0], r))
    others = [f"rank {r} {errors[r][1].splitlines()[0]}" for r in sorted(errors) if r != rank]
    also = "".join(f"\n  after it: {line}" for line in others)
    return WorkerError(rank, errors[rank][1].rstrip() + also)


def _collect(
    procs: list[Any], results: Any, timeout: float | None, grace: float = 1.0
) -> list[Any]:
    """Return the workers' results by rank; raise ``WorkerError`` soon after one fails or dies.

    After the first failure the others get ``grace`` seconds to report, so that the error raised
    is the first one (a worker that dies silently comes first: the others fail because of it).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    done: dict[int, Any] = {}
    errors: dict[int, tuple[float, str]] = {}
    first_failure = math.inf
    while len(done) < len(procs):
        # Exit codes first: a worker flushes its message before it exits, so the drain below
        # sees the message of every worker counted here as exited.
        exited = {rank: p.exitcode for rank, p in enumerate(procs) if p.exitcode is not None}
        block = True
        while True:
            try:
                rank, ok, payload, stamp = (
                    results.get(timeout=0.1) if block else results.get_nowait()
                )
            except queue_module.Empty:
                break
            block = False
            if ok:
                done[rank] = pickle.loads(payload)
            else:
                errors[rank] = (stamp, payload)
        for rank, code in exited.items():
            if rank not in done and rank not in errors:
                errors[rank] = (-math.inf, _exit_message(code))
        now = time.monotonic()
        if errors:
            first_failure = min(first_failure, now)
            if now >= first_failure + grace or len(exited) == len(procs):
                raise _first_failure(errors)
        elif deadline is not None and now > deadline:
            missing = sorted(set(range(len(procs))) - set(done))
            raise TimeoutError(f"Workers {missing} returned no result within {timeout} sec")
    return [done[rank] for rank in range(len(procs))]


def _stop(procs: list[Any], grace: float) -> None:
    """Join the workers for ``grace`` seconds, then terminate and kill whatever is left."""
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=2.0)
        if p.is_alive():
            p.kill()
            p.join()


def _check_importable(fn: Callable[..., Any]) -> None:
    """Raise ``ValueError`` unless a new process can import ``fn`` by its name."""
    main = sys.modules.get("__main__")
    interactive = main is not None and not hasattr(main, "__file__")
    if getattr(fn, "__module__", None) == "__main__" and interactive:
        raise ValueError(
            f"Workers cannot import {fn.__qualname__!r}, defined in this notebook or shell: "
            "define it in a module (a .py file) and import it from there"
        )
    try:
        pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ValueError(f"Workers cannot import {fn!r}: {err}") from err


def launch(
    fn: Callable[..., Any],
    world_size: int,
    *args: Any,
    backend: str = "gloo",
    threads_per_worker: int = 1,
    port: int = 0,
    init_timeout: float = 30.0,
    collective_timeout: float = 300.0,
    timeout: float | None = None,
    start_method: str = "forkserver",
) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` new processes; return results by rank.

    The processes are started by ``start_method``: ``"forkserver"`` (a server process imports
    torch once per session and forks every worker from it, which saves seconds per launch) or
    ``"spawn"`` (a fresh interpreter per worker). Either way ``fn`` and ``args`` must be
    importable or picklable. Each worker joins one process group on 127.0.0.1; the rendezvous
    store lives in this process, on ``port`` (0: a free port chosen by the OS, so the launch never
    waits on a busy one). If a worker raises or dies, the others are killed at once and
    ``WorkerError`` names the rank and its error; no worker outlives the call or this process.
    """
    if world_size < 1:
        raise ValueError(f"Invalid world size: {world_size}")
    if threads_per_worker < 1:
        raise ValueError(f"Invalid number of threads per worker: {threads_per_worker}")
    if not 0 <= port < 65536:
        raise ValueError(f"Invalid port: {port}")
    for name, value in [("init_timeout", init_timeout), ("collective_timeout", collective_timeout),
                        ("timeout", timeout)]:
        if value is not None and not value > 0:
            raise ValueError(f"Invalid {name}: {value}")
    if start_method not in ("forkserver", "spawn"):
        raise ValueError(f"Invalid start method: {start_method!r} (expected forkserver or spawn)")
    _check_importable(fn)
    store = dist.TCPStore(HOST, port, world_size, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=init_timeout))
    ctx = mp.get_context(start_method)
    if start_method == "forkserver":
        # torch.optim imports torch._dynamo on first use: seconds that every worker would repeat.
        ctx.set_forkserver_preload(["d2lkit.distributed", "torch._dynamo"])
    results = ctx.Queue()
    # The workers watch the reading end; when this process closes the writing end, or dies and
    # the kernel closes it, they exit, whatever they are doing.
    lifeline, lifeline_writer = ctx.Pipe(duplex=False)
    procs: list[Any] = []
    ok = False
    try:
        for rank in range(world_size):
            p = ctx.Process(
                target=_bootstrap, name=f"d2lkit-rank{rank}", daemon=True,
                args=(rank, world_size, store.port, backend, threads_per_worker, init_timeout,
                      collective_timeout, fn, args, results, lifeline),
            )
            p.start()
            procs.append(p)
        out = _collect(procs, results, timeout)
        ok = True
        return out
    finally:
        _stop(procs, grace=10.0 if ok else 0.0)
        lifeline_writer.close()
        lifeline.close()
        results.close()
        results.join_thread()
        del store


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


# --------------------------------------------------------------------------------------------
# Command line (torchrun)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="d2lkit-local-sgd",
        description="Local SGD on Fashion-MNIST with torch.distributed. Under torchrun, every "
                    "process is one worker; without it, --nproc workers are spawned here.",
    )
    p.add_argument("--local-steps", type=int, nargs="+", default=[1, 2, 4, 8, 16], metavar="H",
                   help="local steps between averagings; H=1 runs synchronous SGD")
    p.add_argument("--warmup-steps", type=int, default=0,
                   help="post-local SGD: synchronous steps before local SGD starts")
    p.add_argument("--outer-lr", type=float, default=1.0)
    p.add_argument("--outer-momentum", type=float, default=0.0)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=32, help="per worker")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=16, help="local steps")
    p.add_argument("--n-train", type=int, default=8192)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--model", choices=["mlp", "lenet"], default="mlp")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["gloo", "nccl"], default=None,
                   help="default: nccl if CUDA is available, else gloo")
    p.add_argument("--nproc", type=int, default=2, help="workers to spawn without torchrun")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per worker")
    p.add_argument("--json", default=None, help="write rank 0's histories to this file")
    return p


def _cli_task(args: argparse.Namespace) -> LocalSGDTask:
    from d2lkit.data import fashion_mnist

    torch.manual_seed(args.seed)
    plain = (args.warmup_steps, args.outer_lr, args.outer_momentum) == (0, 1.0, 0.0)
    configs = [
        LocalSGDConfig(
            local_steps=h, synchronous=h == 1 and plain,
            warmup_steps=args.warmup_steps, outer_lr=args.outer_lr,
            outer_momentum=args.outer_momentum, nesterov=args.nesterov, lr=args.lr,
            momentum=args.momentum, batch_size=args.batch_size, epochs=args.epochs,
            eval_every=args.eval_every, seed=args.seed,
        )
        for h in args.local_steps
    ]
    return LocalSGDTask(build_model(args.model), fashion_mnist(True, args.n_train),
                        fashion_mnist(False, args.n_test), configs)


def _summary(runs: list[LocalSGDRun]) -> str:
    from d2lkit.report import fmt_sec, format_table

    rows = [
        (r.config.label, r.rounds[-1], f"{r.sent_bytes[-1] / 2**20:.1f}", r.test_acc[-1],
         fmt_sec(r.train_time[-1]))
        for r in runs
    ]
    return format_table(rows, ["run", "rounds", "MiB sent/worker", "test acc", "train time"])


def _to_json(runs: list[LocalSGDRun]) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        record = {k: v for k, v in asdict(r).items() if k != "final_params"}
        record["sent_bytes"] = r.sent_bytes
        out.append(record)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run local SGD on Fashion-MNIST from the command line (under torchrun or not); return 0."""
    args = _parser().parse_args(argv)
    backend = args.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    task = _cli_task(args)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        torch.set_num_threads(args.threads)
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=300))
        try:
            rank = dist.get_rank()
            runs = local_sgd_worker(rank, dist.get_world_size(), task)
        finally:
            dist.destroy_process_group()
    else:
        rank = 0
        runs = launch(local_sgd_worker, args.nproc, task, backend=backend,
                      threads_per_worker=args.threads)[0]
    if rank == 0:
        print(f"{runs[0].world_size} workers, {backend}, {runs[0].num_params} parameters")
        print(_summary(runs))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(_to_json(runs), f, indent=1)
    return 0


if __name__ == "__main__":
    # Run main() from the module imported under its own name, so that what is pickled to the
    # workers (and back) refers to d2lkit.distributed, not to __main__. Without a spec, the
    # workers re-run this file as a script, which does nothing, instead of re-importing it as
    # a module, which makes runpy warn.
    __spec__ = None
    from d2lkit.distributed import main as _main

    raise SystemExit(_main())
