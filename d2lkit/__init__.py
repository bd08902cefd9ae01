"""d2lkit: the helper package of the book *Optimization for Deep Learning*."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from d2lkit.device import Timer, by_profile, profile, set_seed, try_gpu
from d2lkit.plot import Animator, plot, plot_trace_1d, plot_trace_2d, use_svg_display

__all__ = [
    "Animator",
    "RunInfo",
    "Timer",
    "by_profile",
    "plot",
    "plot_trace_1d",
    "plot_trace_2d",
    "profile",
    "set_seed",
    "setup_chapter",
    "try_gpu",
]


@dataclass(frozen=True)
class RunInfo:
    """What a chapter runs on: the build profile, the device and the torch version."""

    profile: str
    device: torch.device
    torch_version: str

    def __str__(self) -> str:
        return f"profile: {self.profile} | device: {self.device.type} | torch {self.torch_version}"


def setup_chapter(seed: int = 0) -> RunInfo:
    """Seed everything, set up deterministic SVG figures and print what the chapter runs on."""
    set_seed(seed)
    use_svg_display()
    info = RunInfo(profile(), try_gpu(), torch.__version__.split("+")[0])
    print(info)
    return info
