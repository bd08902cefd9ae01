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

Why ``launch`` stands on ``elastic_launch`` (torchrun's engine), and what it adds. Measured on
the 2-core build machine under a load average of about 13, two processes, gloo, torch 2.13 (the
launcher of d2lkit before this package; ``elastic_launch`` alone, with forkserver and the ``c10d``
rendezvous on 127.0.0.1:0; and ``launch`` as it is now), in seconds:

============================  =================  =====================  =====================
measure                       own launcher       ``elastic_launch``     ``launch`` (now)
============================  =================  =====================  =====================
first launch (forkserver)     13.3               8.5                    12.0
next launches (median of 5)   0.47               0.55                   0.42
one rank raises               0.60, rank 1       4.8, names rank 0      0.34, rank 1
one rank is SIGKILLed         0.58, rank 1       0.68, rank 1           0.22, rank 1
one rank hangs                11.4 (collective   10.5 (collective       6.1 (progress_timeout
                              timeout 10 s),     timeout 10 s),         5 s), rank 1 and
                              names rank 0       names rank 0           its stack
============================  =================  =====================  =====================

With ``start_method="spawn"`` every launch of ``elastic_launch`` took 12 s, so forkserver stays
the default. ``elastic_launch`` alone also left processes behind when the calling process was
killed: forkserver workers hold the forkserver's "alive" pipe, so neither exits, until the
collectives time out or forever. Its ``c10d`` and ``static`` stores listen on every interface.
None of this forbids it; :mod:`.launch` keeps torch's agent for starting, watching and stopping
the workers and for their results, and adds the loopback store, the attribution of a failure to
the rank that failed first, the :mod:`.watchdog` for hangs (default 30 s) and a watch on the
launcher's process in every worker. Reproduce: ``launch(fn, 2)`` with ``fn`` raising, killing
itself or sleeping on rank 1 while rank 0 waits in ``all_reduce``; the tests assert each bound.
"""

from d2lkit.distributed.cli import main
from d2lkit.distributed.collectives import (
    allreduce_mean_,
    broadcast_,
    fit_ring,
    ring_allreduce_bytes,
    time_allreduce,
)
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
    "fit_ring",
    "launch",
    "local_sgd_worker",
    "main",
    "ring_allreduce_bytes",
    "time_allreduce",
    "train_local_sgd",
]
