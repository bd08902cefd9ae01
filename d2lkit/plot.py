"""Figures: one ``plot`` entry point, a live ``Animator`` and optimization traces.

Figures are SVG in the book and reproducible byte for byte: the SVG ids are salted with a fixed
string and the ``Date`` metadata is dropped, so nbval can compare them between runs. Curves cycle
through ``STYLES``, eight pairs of a color-blind-safe color and a dash pattern, so that up to eight
runs stay apart in print, in grey scale and for color-blind readers; a legend goes to the right of
the axes, never over the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler

from d2lkit import env

FIGSIZE = (3.5, 2.5)
# Okabe and Ito's color-blind-safe palette (its yellow, too pale on white, left out), each color
# with its own dash pattern; every one keeps a contrast of at least 2:1 on the white figure.
STYLES: tuple[dict[str, Any], ...] = tuple(
    {"color": color, "linestyle": dashes}
    for color, dashes in [
        ("#0072B2", "-"), ("#D55E00", "--"), ("#009E73", "-."), ("#CC79A7", ":"),
        ("#000000", (0, (5, 1.5, 1, 1.5, 1, 1.5))), ("#E69F00", (0, (8, 2.5))),
        ("#56B4E9", (0, (1, 1))), ("#7F3C00", (0, (3, 1, 3, 1, 1, 1))),
    ]
)
RC_PARAMS = {
    "axes.prop_cycle": cycler(color=[s["color"] for s in STYLES],
                              linestyle=[s["linestyle"] for s in STYLES]),
    "lines.linewidth": 1.6,
    "font.size": 10.0,
    "legend.fontsize": 9.0,
    "legend.frameon": False,
}


def use_svg_display() -> None:
    """Render inline figures as deterministic SVG (fixed id salt, no date) in the book's style."""
    mpl.rcParams["svg.hashsalt"] = "d2lkit"
    mpl.rcParams["svg.fonttype"] = "path"
    mpl.rcParams.update(RC_PARAMS)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing to configure
        return
    if _ipython() is not None:
        set_matplotlib_formats("svg", metadata={"Date": None})


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _as_numpy(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def _has_one_axis(x: Any) -> bool:
    if hasattr(x, "ndim"):
        return x.ndim == 1
    return isinstance(x, list) and not hasattr(x[0], "__len__")


def plot(
    X: Any,
    Y: Any = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: Sequence[str] | None = None,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    xscale: str = "linear",
    yscale: str = "linear",
    fmts: Sequence[str] | None = None,
    figsize: tuple[float, float] = FIGSIZE,
    axes: Any = None,
    title: str | None = None,
) -> Any:
    """Plot one or several curves and return the matplotlib ``Axes``.

    ``X`` and ``Y`` are a sequence, a tensor, or lists of them (one per curve). With ``Y`` omitted,
    ``X`` holds the values and the x axis counts their index. Curve ``i`` is drawn in
    ``STYLES[i]``, or with the matplotlib format string ``fmts[i]`` when ``fmts`` is given.
    """
    if _has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[] for _ in X], X
    elif _has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    if axes is None:
        _, axes = plt.subplots(figsize=figsize)
    for i, (x, y) in enumerate(zip(X, Y)):
        y = _as_numpy(y)
        x = _as_numpy(x) if len(x) else np.arange(len(y))
        _draw_curve(axes, x, y, i, fmts)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend, title)
    return axes


def _draw_curve(axes: Any, x: Any, y: Any, i: int, fmts: Sequence[str] | None) -> None:
    """Draw curve number ``i`` in ``STYLES[i]`` or with the format string ``fmts[i]``."""
    if fmts is None:
        axes.plot(x, y, **STYLES[i % len(STYLES)])
    else:
        axes.plot(x, y, fmts[i % len(fmts)])


def place_legend(axes: Any, labels: Sequence[str]) -> Any:
    """Add a legend that does not cover the data and return it.

    An ``Axes`` with no other axes to its right gets the legend outside, beside its upper right
    corner; in a row of panels, where that space belongs to the next panel, matplotlib picks the
    corner of the axes that covers the fewest points (``loc="best"``).
    """
    right = axes.get_position().x1
    others = [a for a in axes.figure.axes if a is not axes and a.get_position().x0 >= right]
    if others:  # long handles, so that every dash pattern shows in full
        return axes.legend(labels, loc="best", handlelength=3.0)
    return axes.legend(labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                       handlelength=3.0)


def set_axes(
    axes: Any,
    xlabel: str | None = None,
    ylabel: str | None = None,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    xscale: str = "linear",
    yscale: str = "linear",
    legend: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Set labels, limits, scales, legend, title and a light grid on ``axes``."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    if xlim is not None:
        axes.set_xlim(xlim)
    if ylim is not None:
        axes.set_ylim(ylim)
    if legend:
        place_legend(axes, legend)
    if title:
        axes.set_title(title)
    axes.grid(True, alpha=0.3)


def _live_frontend() -> bool:
    """Return whether a person watches the kernel (an interactive Jupyter front end).

    ``D2LKIT_LIVE_PLOTS=0`` or ``1`` overrides the guess of ``d2lkit.env.interactive_kernel``.
    """
    forced = env.live_plots()
    return env.interactive_kernel() if forced is None else forced


class Animator:
    """Accumulate points of several curves and draw them, live in Jupyter, once in a build.

    In an interactive front end the figure is displayed once and then updated in place (at most
    every ``min_interval`` seconds); under a batch executor nothing is drawn until ``show()``.
    Either way the cell is left with exactly one figure, drawn from the final data.
    """

    def __init__(
        self,
        xlabel: str | None = None,
        ylabel: str | None = None,
        legend: Sequence[str] | None = None,
        xlim: Sequence[float] | None = None,
        ylim: Sequence[float] | None = None,
        xscale: str = "linear",
        yscale: str = "linear",
        fmts: Sequence[str] | None = None,
        figsize: tuple[float, float] = FIGSIZE,
        min_interval: float = 0.5,
    ) -> None:
        self.config = dict(
            xlabel=xlabel, ylabel=ylabel, legend=legend, xlim=xlim, ylim=ylim,
            xscale=xscale, yscale=yscale,
        )
        self.fmts = fmts
        self.figsize = figsize
        self.min_interval = min_interval
        self.X: list[list[float]] = []
        self.Y: list[list[float]] = []
        self._live = _live_frontend()
        self._handle: Any = None
        self._last_draw = 0.0

    def add(self, x: float, ys: float | Sequence[float | None]) -> None:
        """Append the point ``(x, y)`` to each curve (``None`` skips a curve)."""
        if not hasattr(ys, "__len__"):
            ys = [ys]
        if not self.X:
            self.X = [[] for _ in ys]
            self.Y = [[] for _ in ys]
        for i, y in enumerate(ys):
            if y is not None:
                self.X[i].append(float(x))
                self.Y[i].append(float(y))
        if self._live and time.monotonic() - self._last_draw >= self.min_interval:
            self._draw()

    def figure(self) -> Any:
        """Return a new matplotlib figure of the current data (not attached to pyplot)."""
        fig, axes = plt.subplots(figsize=self.figsize)
        plt.close(fig)
        for i, (x, y) in enumerate(zip(self.X, self.Y)):
            _draw_curve(axes, x, y, i, self.fmts)
        set_axes(axes, **self.config)
        return fig

    def _draw(self) -> None:
        from IPython.display import display

        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        self._last_draw = time.monotonic()

    def show(self) -> None:
        """Draw the final figure (the only one a batch executor records)."""
        if _ipython() is None:
            return
        self._draw()


def plot_trace_1d(
    f: Callable[[torch.Tensor], torch.Tensor],
    trace: Sequence[float] | torch.Tensor,
    xlabel: str = "x",
    ylabel: str = "f(x)",
    figsize: tuple[float, float] = FIGSIZE,
    axes: Any = None,
) -> Any:
    """Plot ``f`` around the iterates of a 1-D optimization and mark the iterates."""
    pts = torch.as_tensor(trace, dtype=torch.float64).flatten()
    n = max(float(pts.abs().max()), 1.0)
    x = torch.arange(-n, n, 0.01, dtype=torch.float64)
    if axes is None:
        _, axes = plt.subplots(figsize=figsize)
    axes.plot(x.numpy(), f(x).numpy(), color=STYLES[0]["color"])
    axes.plot(pts.numpy(), f(pts).numpy(), "-o", color=STYLES[1]["color"], markersize=4)
    set_axes(axes, xlabel, ylabel)
    return axes


def plot_trace_2d(
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    trace: Sequence[Sequence[float]] | torch.Tensor,
    figsize: tuple[float, float] = FIGSIZE,
    axes: Any = None,
    title: str | None = None,
) -> Any:
    """Draw the contours of ``f(x1, x2)`` and the path of a 2-D optimization over them."""
    pts = torch.as_tensor(trace, dtype=torch.float64)
    if axes is None:
        _, axes = plt.subplots(figsize=figsize)
    lo = torch.minimum(pts.min(0).values - 1, torch.tensor([-5.5, -3.0], dtype=torch.float64))
    hi = torch.maximum(pts.max(0).values + 1, torch.tensor([1.0, 1.0], dtype=torch.float64))
    x1, x2 = torch.meshgrid(
        torch.linspace(float(lo[0]), float(hi[0]), 101, dtype=torch.float64),
        torch.linspace(float(lo[1]), float(hi[1]), 101, dtype=torch.float64),
        indexing="ij",
    )
    axes.contour(x1.numpy(), x2.numpy(), f(x1, x2).numpy(), colors=STYLES[0]["color"],
                 linestyles="solid", linewidths=0.8)
    axes.plot(pts[:, 0].numpy(), pts[:, 1].numpy(), "-o", color=STYLES[1]["color"], markersize=3)
    set_axes(axes, "x1", "x2", title=title)
    return axes
