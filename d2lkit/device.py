"""Devices, seeding, the build profile and a timer."""

from __future__ import annotations

import os
import random
import time
from typing import TypeVar

import numpy as np
import torch

from d2lkit import env

T = TypeVar("T")

PROFILES = env.PROFILES


def try_gpu(i: int = 0) -> torch.device:
    """Return the ``i``-th CUDA device if it exists, else the CPU."""
    if torch.cuda.device_count() > i:
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; on CUDA, ask torch for deterministic kernels.

    torch's CPU kernels already give identical results run after run for a fixed number of
    threads, so the deterministic mode (whose first use imports torch's compiler stack, a second
    or more) is only switched on where CUDA is available.
    """
    if seed < 0:
        raise ValueError(f"Invalid seed: {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic and torch.cuda.is_available():
        # cuBLAS needs this workspace setting to be deterministic (it is ignored on the CPU).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device``, so that the host's clock measures it.

    CUDA kernels run asynchronously: a timer read right after a call would stop before the GPU
    has finished. On the CPU every operator has finished when it returns, and nothing is done.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile() -> str:
    """Return the build profile: ``$D2LKIT_PROFILE``, else ``full`` on CUDA and ``quick`` on CPU."""
    name = env.profile()
    if name is None:
        return "full" if torch.cuda.is_available() else "quick"
    return name


def by_profile(quick: T, full: T) -> T:
    """Return ``quick`` or ``full`` depending on the build profile."""
    return full if profile() == "full" else quick


class Timer:
    """Record wall-clock intervals: ``start()`` ... ``stop()``, repeated."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._tik: float | None = None
        self.start()

    def start(self) -> None:
        """Start (or restart) the current interval."""
        self._tik = time.perf_counter()

    def stop(self) -> float:
        """End the current interval, record it and return its length in seconds."""
        if self._tik is None:
            raise RuntimeError("Timer.stop() called without start()")
        self.times.append(time.perf_counter() - self._tik)
        self._tik = None
        return self.times[-1]

    def avg(self) -> float:
        """Return the mean recorded interval."""
        return sum(self.times) / len(self.times) if self.times else 0.0

    def sum(self) -> float:
        """Return the total recorded time."""
        return sum(self.times)

    def cumsum(self) -> list[float]:
        """Return the running total after each interval."""
        return np.cumsum(self.times).tolist()


def matmul_gflops(n: int = 1024, repeats: int = 5, device: torch.device | None = None) -> float:
    """Return the best throughput of an ``n x n`` float32 matmul in GFLOP/s (``2 n^3`` per product).

    The best of ``repeats`` runs after a warm-up is this machine's practical peak for dense
    float32 work, the yardstick the book compares its own kernels against.
    """
    device = device or try_gpu()
    A = torch.randn(n, n, device=device)
    B = torch.randn(n, n, device=device)
    best = float("inf")
    for i in range(repeats + 1):
        synchronize(device)
        tik = time.perf_counter()
        torch.mm(A, B)
        synchronize(device)
        if i:  # the first run is a warm-up
            best = min(best, time.perf_counter() - tik)
    return 2 * n**3 / best / 1e9
