"""Naming the rank that stopped making progress, while the others wait for it.

A collective completes only when every rank of the group has entered it. When one rank hangs
(a deadlock, a blocking read, a lost message) the others wait inside the collective until its
timeout, and the error they raise names *them*, not the rank that never came. Progress is
measured here by the process group's sequence number, which every rank increments when it
*enters* a collective: a rank whose number stays below the others' for ``timeout`` seconds is the
one they wait for. Each worker writes its number to a file (:class:`ProgressReport`); the
launcher's :class:`Watchdog` reads the files, and stops the rank that falls behind, after it has
dumped its stack (``faulthandler``), so that the launch fails at once with that rank's name and
where it stood.

States a worker reports, in order: ``STARTED`` (before joining the process group), ``JOINING``,
then the sequence number (0 after joining, +1 per collective), then ``DONE``: a rank still running
when another has returned counts as behind too.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

__all__ = ["DONE", "JOINING", "STARTED", "ProgressReport", "Watchdog", "read_progress"]

STARTED, JOINING, DONE = -2, -1, 2**62
INTERVAL = 0.25
"""Seconds between two reports of a worker, and between two checks of the watchdog."""


def _progress_file(directory: Path, rank: int) -> Path:
    return directory / f"{rank}.progress"


def _stack_file(directory: Path, rank: int) -> Path:
    return directory / f"{rank}.stack"


def read_progress(directory: Path, world_size: int) -> dict[int, tuple[int, int]]:
    """Return ``{rank: (pid, state)}`` for the ranks that have reported."""
    states = {}
    for rank in range(world_size):
        with contextlib.suppress(OSError, ValueError):
            pid, state = _progress_file(directory, rank).read_text().split()
            states[rank] = (int(pid), int(state))
    return states


class ProgressReport:
    """In a worker: report this rank's progress to ``directory`` every ``INTERVAL`` seconds."""

    def __init__(self, directory: Path, rank: int) -> None:
        self.path = _progress_file(directory, rank)
        self.state = STARTED
        self._lock = threading.Lock()
        # The watchdog sends SIGUSR1 before it stops a rank: the stack goes to the stack file.
        self._stack = open(_stack_file(directory, rank), "w")  # noqa: SIM115 (lives as long as the process)
        faulthandler.register(signal.SIGUSR1, file=self._stack, all_threads=False)
        self._write()
        threading.Thread(target=self._loop, name="d2lkit-progress", daemon=True).start()

    def joining(self) -> None:
        """Say that this rank is joining the process group."""
        self.state = JOINING
        self._write()

    def joined(self) -> None:
        """From now on, report the sequence number of the default process group."""
        self.state = 0

    def done(self) -> None:
        """Say that this rank has returned its result."""
        self.state = DONE
        self._write()

    def _current(self) -> int:
        if self.state == 0:
            with contextlib.suppress(RuntimeError, ValueError):
                group: Any = dist.distributed_c10d._get_default_group()
                return int(group._get_sequence_number_for_group())
        return self.state

    def _write(self) -> None:
        with self._lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(f"{os.getpid()} {self._current()}")
            os.replace(tmp, self.path)

    def _loop(self) -> None:
        last = None
        while True:
            current = self._current()
            if current != last:
                self._write()
                last = current
            time.sleep(INTERVAL)


class Watchdog:
    """In the launcher: stop and name the first rank that stays behind for ``timeout`` seconds."""

    def __init__(self, directory: Path, world_size: int, timeout: float) -> None:
        self.directory, self.world_size, self.timeout = directory, world_size, timeout
        self.report: tuple[int, str] | None = None
        """``(rank, message)`` of the rank this watchdog stopped, if it stopped one."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="d2lkit-watchdog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop watching."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        since: dict[int, tuple[int, float]] = {}
        while not self._stop.wait(INTERVAL):
            states = read_progress(self.directory, self.world_size)
            now = time.monotonic()
            for rank, (_, state) in states.items():
                if since.get(rank, (None,))[0] != state:
                    since[rank] = (state, now)
            lead = max((state for _, state in states.values()), default=STARTED)
            for rank, (pid, state) in sorted(states.items()):
                if state < lead and now - since[rank][1] > self.timeout:
                    ahead = [r for r, (_, s) in sorted(states.items()) if s > state]
                    self.report = (rank, self._describe(rank, state, ahead, pid))
                    return

    def _describe(self, rank: int, state: int, ahead: list[int], pid: int) -> str:
        """Dump the stack of the rank that is behind, stop it, and say where it stood."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)
            time.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
        where = {STARTED: "had not started joining the process group",
                 JOINING: "had not finished joining the process group"}.get(
            state, f"had entered {state} collective calls")
        stack = ""
        with contextlib.suppress(OSError):
            stack = _stack_file(self.directory, rank).read_text().strip()
        return (f"made no progress for {self.timeout:g} sec (progress_timeout): it {where} "
                f"while rank(s) {ahead} had gone further (and waited for it, or returned); "
                "it was stopped."
                + (f"\n\nIts stack when stopped:\n{stack}" if stack else ""))
