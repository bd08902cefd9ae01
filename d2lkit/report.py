"""Printing results: timings in the form the nbval sanitizer masks, plain-text tables, and the
measurements that ``benchmarks/`` records for the book to show."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


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


def glue(name: str, value: Any, display: bool = True) -> None:
    """Paste ``value`` into the page's text as ``{glue:text}`name```.

    In the book's build this is ``myst_nb.glue``; in a plain Jupyter or Colab session, where
    myst-nb is not installed, the value is only shown (when ``display`` is true), so a chapter's
    notebook runs anywhere.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def recorded(name: str, command: str, root: Path = BENCHMARKS) -> dict[str, Any]:
    """Return the measurement ``benchmarks/<name>.json`` that ``command`` writes.

    Some measurements take too long to repeat in every build (a full-profile run, a benchmark
    that wants an idle machine); a script records them and the book prints the record.
    """
    path = root / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"No recorded measurement {path}: run `{command}` from the "
                                "repository root (with d2lkit installed from the repository, "
                                "`pip install -e .`)")
    return json.loads(path.read_text())
