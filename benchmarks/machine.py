"""What a measurement ran on, and how busy the machine was while it ran."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any

import torch


def machine_info(device: torch.device) -> dict[str, Any]:
    """Return what the measurement ran on: CPU model and cores, GPU, torch, threads, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
        "device": device.type,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_average() -> float | None:
    """Return the 1-minute load average, or ``None`` where the OS does not report it."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def format_load(loads: Sequence[float | None]) -> str:
    """Return load averages taken before and after a measurement as ``'0.12 -> 1.05'``."""
    return " -> ".join("n/a" if x is None else f"{x:.2f}" for x in loads)
