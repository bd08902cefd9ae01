"""d2lkit: the helper package of the book *Optimization for Deep Learning*."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import torch

from d2lkit.device import Timer, by_profile, profile, set_seed, try_gpu
from d2lkit.plot import Animator, plot, plot_trace_1d, plot_trace_2d, use_svg_display

try:
    __version__ = version("d2lkit")  # from the installed package's metadata (pyproject.toml)
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

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


# The site the Pages workflow publishes, in the full profile (python -m benchmarks.publish).
PUBLISHED_URL = "https://d2lkit.github.io/optimization-book/"


@dataclass(frozen=True)
class RunInfo:
    """What a chapter runs on: the build profile, the device and the torch and d2lkit versions."""

    profile: str
    device: torch.device
    torch_version: str
    d2lkit_version: str = __version__

    def __str__(self) -> str:
        line = (f"profile: {self.profile} | device: {self.device.type} | "
                f"torch {self.torch_version} | d2lkit {self.d2lkit_version}")
        if self.profile == "quick":
            line += ("\nquick profile: reduced sizes, stated on this page; the full-scale runs "
                     f"are on the published book, {PUBLISHED_URL} (full profile)")
        return line


def setup_chapter(seed: int = 0) -> RunInfo:
    """Seed everything, set up deterministic SVG figures, print the profile, device and versions."""
    set_seed(seed)
    use_svg_display()
    info = RunInfo(profile(), try_gpu(), torch.__version__.split("+")[0])
    print(info)
    return info
