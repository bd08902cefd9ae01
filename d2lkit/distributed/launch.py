"""Start workers on this machine with torch's programmatic torchrun, and report how they fail.

:func:`launch` runs ``fn(rank, world_size, *args)`` in new processes through
``torch.distributed.launcher.api.elastic_launch``, the engine behind ``torchrun``: its agent
starts the workers (``forkserver`` by default), watches them, returns each rank's result and,
when one fails, stops the others. Around it, this module adds what a notebook needs:

* the rendezvous store and the workers' gloo sockets listen on 127.0.0.1 only
  (:mod:`d2lkit.distributed.rendezvous`);
* a failure is reported as one :class:`WorkerError` naming the rank that failed *first*, with its
  error and traceback (torch's ``ChildFailedError`` names the first failure the agent happened to
  observe, often a rank that failed only because its peer had died); a rank killed by a signal
  comes first, since the others fail because of it;
* a rank that stops making progress is stopped and named after ``progress_timeout`` seconds
  (:mod:`d2lkit.distributed.watchdog`), not after the collectives' timeout;
* every worker exits when the launcher's process dies, so that none outlives the kernel;
* a function defined in the notebook itself, which the workers cannot import, is refused at once;
* the signal handlers and the environment variable that the agent installs in the calling
  process are restored afterwards, and its log lines, which repeat the error, are held back.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import json
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from d2lkit.distributed.rendezvous import BACKEND, HOST, loopback_interface
from d2lkit.distributed.watchdog import DONE, ProgressReport, Watchdog, read_progress

__all__ = ["HOST", "WorkerError", "launch"]

_AGENT_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")


class WorkerError(RuntimeError):
    """A worker raised, died or hung; ``rank`` says which, the message carries its error."""

    def __init__(self, rank: int, message: str) -> None:
        super().__init__(f"rank {rank} {message}")
        self.rank = rank


@dataclass(frozen=True)
class _WorkerSpec:
    launcher: int
    directory: Path
    backend: str
    threads: int
    init_timeout: float
    collective_timeout: float


# --------------------------------------------------------------------------------------------
# In the worker


def _set_process_name(name: str) -> None:
    """Name this process, as ``ps`` and ``/proc/<pid>/comm`` show it (Linux only)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_name = 15
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_name, name.encode()[:15])


def _alive(pid: int) -> bool:
    """Return whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _exit_with_launcher(launcher: int) -> None:
    """Exit as soon as the launcher's process (the kernel) dies.

    Not the parent: that is the forkserver, which lives as long as any of its children holds
    its "alive" pipe, and every worker does.
    """

    def watch() -> None:
        while _alive(launcher):
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=watch, name="d2lkit-launcher", daemon=True).start()


def _mark_termination(path: Path) -> None:
    """When the agent terminates this worker, leave ``path`` behind: it did not die on its own.

    SIGTERM is blocked in every thread and received by one thread of its own, so that it is
    handled at once even while the main thread waits inside a collective.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    def wait() -> None:
        signal.sigwait({signal.SIGTERM})
        path.touch()
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=wait, name="d2lkit-sigterm", daemon=True).start()


def _worker(fn: Callable[..., Any], args: tuple[Any, ...], spec: _WorkerSpec) -> Any:
    """Run in a new process started by the agent: join the group, call ``fn``, return its result."""
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    _set_process_name(f"d2lkit-rank{rank}")
    _mark_termination(spec.directory / f"{rank}.terminated")
    _exit_with_launcher(spec.launcher)
    progress = ProgressReport(spec.directory, rank)
    torch.set_num_threads(spec.threads)
    os.environ["GLOO_SOCKET_IFNAME"] = loopback_interface()
    try:
        progress.joining()
        # The agent's store, which torch's env:// would join with the collectives' timeout.
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                              world_size, is_master=False,
                              timeout=datetime.timedelta(seconds=spec.init_timeout))
        dist.init_process_group(spec.backend, store=store, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=spec.collective_timeout))
        progress.joined()
        result = fn(rank, world_size, *args)
        progress.done()
        dist.destroy_process_group()
        return result
    except BaseException as err:
        detail = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        failure = {"time": time.time(),
                   "message": f"failed with {type(err).__name__}: {err}\n\n{detail}"}
        (spec.directory / f"{rank}.failure").write_text(json.dumps(failure))
        # Skip the interpreter's teardown, which takes seconds with torch loaded.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


# --------------------------------------------------------------------------------------------
# In the launcher


def _exit_message(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name} before returning a result"
    if code is None:
        return "died before returning a result (killed by a signal, or it called os._exit)"
    return (f"exited with code {code} before returning a result "
            "(a traceback, if any, went to its standard error)")


def _first_failure(err: ChildFailedError, directory: Path, world_size: int) -> WorkerError:
    """Return the error of the rank that failed first; the others' errors often follow from it.

    A rank that died without a word (killed by a signal: no error of its own, and not terminated
    by the agent) comes first: the others fail because their peer is gone.
    """
    errors: dict[int, tuple[float, str]] = {}
    for rank in range(world_size):
        with contextlib.suppress(OSError, ValueError):
            failure = json.loads((directory / f"{rank}.failure").read_text())
            errors[rank] = (failure["time"], failure["message"])
    codes = {rank: failure.exitcode for rank, failure in err.failures.items()}
    for rank, (_, state) in read_progress(directory, world_size).items():
        if (rank not in errors and state != DONE
                and not (directory / f"{rank}.terminated").exists()):
            errors[rank] = (-math.inf, _exit_message(codes.get(rank)))
    if not errors:
        rank, failure = err.get_first_failure()
        errors[rank] = (-math.inf, _exit_message(failure.exitcode))
    first = min(errors, key=lambda r: (errors[r][0], r))
    others = [f"rank {r} {errors[r][1].splitlines()[0]}" for r in sorted(errors) if r != first]
    return WorkerError(first, errors[first][1].rstrip()
                       + "".join(f"\n  after it: {line}" for line in others))


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


@contextlib.contextmanager
def _agent_in_this_process() -> Iterator[None]:
    """Undo, on exit, what torch's agent changes in the calling process; hold back its logs."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {name: signal.getsignal(getattr(signal, name)) for name in _AGENT_SIGNALS
                    if hasattr(signal, name)}
    env_name = "TORCHELASTIC_SIGNALS_TO_HANDLE"
    env_value = os.environ.get(env_name)
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.startswith(("torch.distributed.elastic", "torch.multiprocessing"))]
    loggers += [logging.getLogger("torch.distributed.elastic"),
                logging.getLogger("torch.multiprocessing")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if env_value is None:
            os.environ.pop(env_name, None)
        else:
            os.environ[env_name] = env_value
        for name, handler in handlers.items():
            if handler is not None:
                signal.signal(getattr(signal, name), handler)


def launch(
    fn: Callable[..., Any],
    world_size: int,
    *args: Any,
    backend: str = "gloo",
    threads_per_worker: int = 1,
    init_timeout: float = 30.0,
    collective_timeout: float = 300.0,
    progress_timeout: float | None = 30.0,
    start_method: str = "forkserver",
) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` new processes; return results by rank.

    The processes are started by torch's ``elastic_launch`` with ``start_method``:
    ``"forkserver"`` (a server process imports torch once per session and forks every worker from
    it, which saves seconds per launch) or ``"spawn"`` (a fresh interpreter per worker). Either way
    ``fn`` and ``args`` must be importable or picklable. Each worker joins one process group on
    127.0.0.1 with ``threads_per_worker`` intra-op threads. If a worker raises or dies, the others
    are stopped and ``WorkerError`` names the rank that failed first, with its error; if a rank
    stays behind the others (in the count of collective calls, or still running when others have
    returned) for ``progress_timeout`` seconds (``None``: never), it is stopped and named. Workers
    that join the process group within ``init_timeout`` seconds wait at most
    ``collective_timeout`` seconds in a collective. No worker outlives the call or this process.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"Invalid world_size: {world_size!r} (expected an integer >= 1)")
    if (isinstance(threads_per_worker, bool) or not isinstance(threads_per_worker, int)
            or threads_per_worker < 1):
        raise ValueError(f"Invalid threads_per_worker: {threads_per_worker!r} "
                         "(expected an integer >= 1)")
    for name, value in [("init_timeout", init_timeout), ("collective_timeout", collective_timeout),
                        ("progress_timeout", progress_timeout)]:
        if value is None and name == "progress_timeout":
            continue
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 < value < math.inf):
            raise ValueError(f"Invalid {name}: {value!r} (expected a finite number of seconds > 0)")
    if start_method not in ("forkserver", "spawn"):
        raise ValueError(
            f"Invalid start_method: {start_method!r} (expected 'forkserver' or 'spawn')")
    _check_importable(fn)
    if start_method == "forkserver":
        # torch.optim imports torch._dynamo on first use: seconds that every worker would repeat.
        multiprocessing.get_context("forkserver").set_forkserver_preload(
            ["d2lkit.distributed", "torch._dynamo"])
    with tempfile.TemporaryDirectory(prefix="d2lkit-launch-") as tmp:
        directory = Path(tmp)
        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=world_size, run_id=uuid.uuid4().hex,
            rdzv_backend=BACKEND, rdzv_endpoint=f"{HOST}:0",
            rdzv_configs={"timeout": init_timeout}, max_restarts=0, monitor_interval=0.05,
            start_method=start_method, logs_specs=DefaultLogsSpecs(log_dir=str(directory / "logs")),
            shutdown_timeout=2,
        )
        spec = _WorkerSpec(os.getpid(), directory, backend, threads_per_worker, init_timeout,
                           collective_timeout)
        watchdog = None if progress_timeout is None else Watchdog(directory, world_size,
                                                                  progress_timeout)
        try:
            with _agent_in_this_process():
                results = elastic_launch(config, _worker)(fn, args, spec)
        except ChildFailedError as err:
            if watchdog is not None:
                watchdog.close()  # it may be writing its report on the rank it stopped
                if watchdog.report is not None:
                    raise WorkerError(*watchdog.report) from err
            raise _first_failure(err, directory, world_size) from err
        except SignalException as err:
            if err.sigval == signal.SIGINT:
                raise KeyboardInterrupt from err
            raise
        finally:
            if watchdog is not None:
                watchdog.close()
    return [results[rank] for rank in range(world_size)]
