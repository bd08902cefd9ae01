"""Peak memory of a piece of work, on a GPU or on the CPU.

On CUDA, :func:`peak_memory` uses the caching allocator's own counters:
``torch.cuda.reset_peak_memory_stats`` before the call and ``torch.cuda.max_memory_allocated``
after it, minus the bytes already allocated at the start.

On the CPU, PyTorch keeps no such counters, and the usual Python tools do not help:
``tracemalloc`` sees only allocations made through Python's allocator, not the buffers of tensors,
and the process's maximum resident set size (``resource.getrusage``) is a high-water mark for the
whole process that never goes down and also counts the interpreter, the libraries and freed-but-
cached pages. What does see every tensor buffer is the PyTorch profiler with
``profile_memory=True``: it records one ``[memory]`` event per allocation and per release in
PyTorch's CPU allocator, with the signed number of bytes. Sorting those events by time and taking
the running sum gives the bytes allocated above the starting level at every instant; its maximum is
the peak. Buffers allocated before the call and released during it are not counted (the profiler
does not know their size), so measure a whole step (forward *and* backward), not the backward
alone. Allocations made outside PyTorch (NumPy arrays, Python objects) are not seen either.

The profiler's tracing library (Kineto) writes time-stamped status lines straight to the process's
standard error when it starts and stops; they would land in notebook outputs and differ on every
run, so standard error is pointed at ``os.devnull`` (at the file-descriptor level) while it runs;
this also hides PyTorch's one-time warning about releasing a buffer of unknown size.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.profiler import ProfilerActivity, profile


@contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_peak(fn: Callable[[], object]) -> int:
    activities = [ProfilerActivity.CPU]
    with _stderr_to_devnull(), profile(activities=activities, profile_memory=True) as prof:
        fn()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    level = peak = 0
    for e in events:
        level += e.nbytes()
        peak = max(peak, level)
    return peak


def _cuda_peak(fn: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - start


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Run ``fn()`` and return the peak number of bytes allocated on ``device`` above the start."""
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_peak(fn, device)
    if device.type == "cpu":
        return _cpu_peak(fn)
    raise ValueError(f"Invalid device: {device} (expected 'cpu' or 'cuda')")
