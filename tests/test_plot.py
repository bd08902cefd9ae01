import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch

from d2lkit.plot import (
    Animator,
    _live_frontend,
    plot,
    plot_trace_1d,
    plot_trace_2d,
    use_svg_display,
)


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def test_plot_draws_one_line_per_curve():
    x = torch.arange(5.0)
    ax = plot(x, [x, x**2], "x", "y", legend=["a", "b"], yscale="log")
    assert len(ax.get_lines()) == 2
    assert ax.get_xlabel() == "x" and ax.get_yscale() == "log"
    plt.close("all")


def test_plot_values_only_uses_index_axis():
    ax = plot([3.0, 1.0, 2.0])
    assert ax.get_lines()[0].get_xdata().tolist() == [0, 1, 2]
    plt.close("all")


def test_svg_output_is_deterministic():
    use_svg_display()
    svgs = []
    for _ in range(2):
        ax = plot(torch.arange(10.0), torch.arange(10.0) ** 2)
        svgs.append(_svg(ax.figure))
        plt.close("all")
    assert svgs[0] == svgs[1]
    assert "<dc:date>" not in svgs[0]


def test_animator_collects_points_and_skips_none(monkeypatch):
    monkeypatch.setenv("D2LKIT_LIVE_PLOTS", "0")
    animator = Animator(legend=["train", "test"])
    animator.add(1, (0.5, None))
    animator.add(2, (0.4, 0.3))
    assert animator.X == [[1.0, 2.0], [2.0]] and animator.Y == [[0.5, 0.4], [0.3]]
    fig = animator.figure()
    assert len(fig.axes[0].get_lines()) == 2
    assert not plt.get_fignums()  # not attached to pyplot: the inline backend won't show it twice


def test_live_frontend_override(monkeypatch):
    monkeypatch.setenv("D2LKIT_LIVE_PLOTS", "1")
    assert _live_frontend()
    monkeypatch.setenv("D2LKIT_LIVE_PLOTS", "0")
    assert not _live_frontend()
    monkeypatch.delenv("D2LKIT_LIVE_PLOTS")
    assert not _live_frontend()  # no kernel at all: nobody watches


def test_trace_plots():
    ax = plot_trace_1d(lambda x: x**2, [10.0, 6.0, 3.6])
    assert len(ax.get_lines()) == 2
    ax = plot_trace_2d(lambda a, b: a**2 + 2 * b**2, [[-5.0, -2.0], [-3.0, -0.4]])
    assert ax.get_lines()[-1].get_xdata().tolist() == [-5.0, -3.0]
    plt.close("all")
