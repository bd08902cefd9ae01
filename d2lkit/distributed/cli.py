"""The command line of local SGD: ``python -m d2lkit.distributed`` and ``d2lkit-local-sgd``.

Under ``torchrun`` every process is one worker and joins the process group torchrun set up;
without it, ``--nproc`` workers are started by :func:`d2lkit.distributed.launch`. Which of the two
is decided by the launcher variables in the environment, checked before anything else: torchrun
sets all of ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT`` and ``TORCHELASTIC_RUN_ID``. Some of them without ``TORCHELASTIC_RUN_ID`` (left
over in a shell, say) are refused with their names, as is a ``--nproc`` that differs from
torchrun's ``--nproc_per_node``: either would otherwise start something else than asked, or wait
forever for a rendezvous that never comes. The ``--json`` path is checked before training, too.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from d2lkit.distributed.launch import launch
from d2lkit.distributed.local_sgd import LocalSGDConfig
from d2lkit.distributed.training import LocalSGDRun, LocalSGDTask, build_model, local_sgd_worker

__all__ = ["launcher_variables", "main"]

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                      "MASTER_PORT", "TORCHELASTIC_RUN_ID")
"""What torchrun sets for every worker (among others)."""


def launcher_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the variables of ``environ`` that a launcher (torchrun, or a user by hand) sets."""
    names = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
             "MASTER_ADDR", "MASTER_PORT"}
    return {k: v for k, v in sorted(environ.items())
            if k in names or k.startswith("TORCHELASTIC_")}


def under_torchrun(nproc: int | None, environ: Mapping[str, str]) -> bool:
    """Return whether torchrun started this process; raise ``RuntimeError`` on a conflict."""
    found = launcher_variables(environ)
    if not found:
        return False
    shown = ", ".join(f"{k}={v!r}" for k, v in found.items())
    if "TORCHELASTIC_RUN_ID" not in found:
        raise RuntimeError(
            f"Launcher variables are set ({shown}) but torchrun did not start this process "
            "(TORCHELASTIC_RUN_ID is not set): unset them to start --nproc workers here, or run "
            "this command under torchrun"
        )
    missing = [k for k in TORCHRUN_VARIABLES if k not in found]
    if missing:
        raise RuntimeError(f"torchrun's environment is incomplete: {', '.join(missing)} "
                           f"missing (found {shown})")
    if nproc is not None and str(nproc) != found["LOCAL_WORLD_SIZE"]:
        raise RuntimeError(
            f"--nproc {nproc} conflicts with torchrun's LOCAL_WORLD_SIZE="
            f"{found['LOCAL_WORLD_SIZE']!r} (its --nproc_per_node): under torchrun, leave out "
            "--nproc"
        )
    return True


def _check_output(path: str) -> None:
    """Raise ``ValueError`` unless ``path`` can be written (before a run, not after it)."""
    target = Path(path).expanduser()
    parent = target.parent
    if target.is_dir():
        raise ValueError(f"--json {path!r} is a directory")
    if not parent.is_dir():
        raise ValueError(f"--json {path!r}: the directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ValueError(f"--json {path!r} is not writable")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="d2lkit-local-sgd",
        description="Local SGD on Fashion-MNIST with torch.distributed. Under torchrun, every "
                    "process is one worker; without it, --nproc workers are started here.",
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
    p.add_argument("--nproc", type=int, default=None,
                   help="workers to start without torchrun (default 2); under torchrun, "
                        "torchrun's --nproc_per_node decides")
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
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        torchrun = under_torchrun(args.nproc, os.environ)
        if args.nproc is not None and args.nproc < 1:
            raise ValueError(f"--nproc {args.nproc} (expected an integer >= 1)")
        if args.json:
            _check_output(args.json)
    except (RuntimeError, ValueError) as err:
        parser.error(str(err))
    backend = args.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    task = _cli_task(args)
    if torchrun:
        torch.set_num_threads(args.threads)
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=300))
        try:
            rank = dist.get_rank()
            runs = local_sgd_worker(rank, dist.get_world_size(), task)
        finally:
            dist.destroy_process_group()
    else:
        rank = 0
        runs = launch(local_sgd_worker, args.nproc or 2, task, backend=backend,
                      threads_per_worker=args.threads)[0]
    if rank == 0:
        print(f"{runs[0].world_size} workers, {backend}, {runs[0].num_params} parameters")
        print(_summary(runs))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(_to_json(runs), f, indent=1)
    return 0
