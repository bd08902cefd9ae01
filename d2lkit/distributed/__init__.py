"""Data-parallel training with ``torch.distributed``: all-reduce helpers, local SGD, its launch.

One worker function, :func:`local_sgd_worker`, runs under two entry points:

* from Python or a notebook, ``launch(local_sgd_worker, world_size, task)`` starts the workers on
  this machine, joins them in one process group (gloo on 127.0.0.1) and returns every rank's
  result;
* from a shell, ``torchrun --nproc_per_node=N -m d2lkit.distributed [options]`` (or the console
  script: ``torchrun --nproc_per_node=N --no-python d2lkit-local-sgd [options]``), on several
  machines with torchrun's usual ``--nnodes``, ``--node_rank`` and ``--master_addr`` or
  ``--rdzv_endpoint``. Without torchrun, ``python -m d2lkit.distributed --nproc N`` uses ``launch``.

Every worker runs with one intra-op thread by default: K workers on a machine with few cores would
otherwise each start one thread per core and fight over them.

The modules, one idea each: :mod:`.collectives` (averaging and broadcasting tensors, the cost of
a ring all-reduce), :mod:`.local_sgd` (when local SGD communicates; the configuration of a run),
:mod:`.torch_engine` (the same schedule from torch's DDP hook and model averager),
:mod:`.training` (the worker, its task and history), :mod:`.launch` (starting workers with
torch's ``elastic_launch``), :mod:`.rendezvous` (its store, on the loopback interface only),
:mod:`.watchdog` (naming the rank that hangs) and :mod:`.cli` (the command line).

Why ``launch`` stands on ``elastic_launch`` (torchrun's engine)
MEASUREMENTS
"""

from d2lkit.distributed.cli import main
from d2lkit.distributed.collectives import allreduce_mean_, broadcast_, ring_allreduce_bytes
from d2lkit.distributed.launch import HOST, WorkerError, launch
from d2lkit.distributed.local_sgd import LocalSGD, LocalSGDConfig
from d2lkit.distributed.torch_engine import _TorchPostLocalSGD
from d2lkit.distributed.training import (
    LocalSGDRun,
    LocalSGDTask,
    build_model,
    local_sgd_worker,
    train_local_sgd,
)

__all__ = [
    "HOST",
    "LocalSGD",
    "LocalSGDConfig",
    "LocalSGDRun",
    "LocalSGDTask",
    "WorkerError",
    "_TorchPostLocalSGD",
    "allreduce_mean_",
    "broadcast_",
    "build_model",
    "launch",
    "local_sgd_worker",
    "main",
    "ring_allreduce_bytes",
    "train_local_sgd",
]
