"""Printing results: timings in the form the nbval sanitizer masks, plain-text tables, and the
measurements that the scripts of ``benchmarks/`` record for the book to show.

The records ship with the package (``d2lkit/records/*.json``, package data), so a chapter that
prints one runs wherever d2lkit is installed, with no checkout of the repository."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

RECORDS = "records"  # the folder of the package that holds the records


def fmt_sec(seconds: float) -> str:
    """Return a duration as ``'0.0123 sec'``, the form the book's nbval sanitizer masks."""
    return f"{seconds:.3g} sec"


def _cell(value: Any, precision: int) -> str:
    if isinstance(value, float):
        return f"{value:.{precision}f}"
    return str(value)


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], precision: int = 3) -> str:
    """Return ``rows`` as an aligned plain-text table; floats get ``precision`` decimals."""
    cells = [[str(h) for h in headers]] + [[_cell(v, precision) for v in row] for row in rows]
    if any(len(row) != len(headers) for row in cells):
        raise ValueError("Every row needs one value per header")
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], precision: int = 3) -> None:
    """Print ``rows`` as an aligned plain-text table (see ``format_table``)."""
    print(format_table(rows, headers, precision))


def show_source(obj: Any) -> Any:
    """Return the source code of a d2lkit function or class as a highlighted notebook display."""
    import inspect

    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


GLUE_DIGITS = 12
"""Significant digits a glued float keeps (see :func:`glue`)."""


def _rounded(value: Any) -> Any:
    """Return ``value`` with every float, also inside lists, tuples and dicts, rounded."""
    if isinstance(value, float):
        return float(f"{value:.{GLUE_DIGITS}g}")
    if isinstance(value, (list, tuple)):
        return type(value)(_rounded(v) for v in value)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def glue(name: str, value: Any, display: bool = True) -> None:
    """Paste ``value`` into the page's text as ``{glue:text}`name```.

    Floats are glued with ``GLUE_DIGITS`` significant digits, far more than any page shows:
    the last bits of a float can differ between two runs of the same cell (a library may pick
    another kernel for another memory alignment), and nbval compares the glued value's text.
    In the book's build this is ``myst_nb.glue``; in a plain Jupyter or Colab session, where
    myst-nb is not installed, the value is only shown (when ``display`` is true), so a chapter's
    notebook runs anywhere.
    """
    value = _rounded(value)
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def recorded(name: str, command: str, root: Traversable | Path | None = None) -> dict[str, Any]:
    """Return the measurement ``<name>.json`` that ``command`` writes into d2lkit's records.

    Some measurements take too long to repeat in every build (a full-profile run, a benchmark
    that wants an idle machine); a script records them into the package's data, read here
    through :mod:`importlib.resources`, and the book prints the record. ``root`` replaces the
    package's records folder (for tests).
    """
    folder = files("d2lkit") / RECORDS if root is None else root
    path = folder
    for part in f"{name}.json".split("/"):
        path = path.joinpath(part)
    if not path.is_file():
        raise FileNotFoundError(f"No recorded measurement {name}.json in {folder}: run "
                                f"`{command}` from the repository root (with d2lkit installed "
                                "from the repository, `pip install -e .`)")
    return json.loads(path.read_text(encoding="utf-8"))
