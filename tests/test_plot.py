import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch

from d2lkit.plot import (
    STYLES,
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
        x = torch.arange(10.0)
        ax = plot(x, [x**2, x, 2 * x], legend=["a", "b", "c"])
        buf = io.StringIO()  # as the inline backend saves it: cropped to the legend outside
        ax.figure.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
        svgs.append(buf.getvalue())
        plt.close("all")
    assert svgs[0] == svgs[1]
    assert "<dc:date>" not in svgs[0]
    matplotlib.rcdefaults()


def _contrast_on_white(color: str) -> float:
    """Return the WCAG contrast ratio of ``color`` against white."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
              for c in matplotlib.colors.to_rgb(color)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def test_seven_curves_get_distinct_colors_and_dashes_visible_on_white():
    x = torch.arange(5.0)
    ax = plot(x, [x + i for i in range(7)])
    lines = ax.get_lines()
    colors = {matplotlib.colors.to_hex(line.get_color()) for line in lines}
    dashes = {str(line.get_linestyle()) + str(line._dash_pattern) for line in lines}
    assert len(colors) == 7 and len(dashes) == 7
    assert all(_contrast_on_white(style["color"]) >= 2 for style in STYLES)
    assert ax.get_lines()[0].get_color() == STYLES[0]["color"]
    ax = plot(x, [x, x], fmts=["k.", "r--"])  # format strings still override the cycle
    assert [line.get_color() for line in ax.get_lines()] == ["k", "r"]
    plt.close("all")


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_legend_sits_beside_the_axes_not_over_the_data():
    x = torch.linspace(0, 1, 50)
    ax = plot(x, [x, 1 - x, x * 0 + 0.5], legend=["up", "down", "flat"])
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1
    # in a row of panels the space to the right belongs to the next panel: stay inside, away
    # from the data (matplotlib's "best" corner) and off the neighbour
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 2.5))
    plot(x, [x, x**2], legend=["x", "x^2"], axes=left)
    plot(x, x, axes=right)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = left.get_legend().get_window_extent(renderer)
    assert not _overlap(legend, right.get_window_extent(renderer))
    for line in left.get_lines():
        points = left.transData.transform(line.get_xydata())
        inside = ((points[:, 0] > legend.x0) & (points[:, 0] < legend.x1)
                  & (points[:, 1] > legend.y0) & (points[:, 1] < legend.y1))
        assert not inside.any()
    plt.close("all")


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
