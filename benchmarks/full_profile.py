"""Run one chapter in the full profile and record the values it glues.

The full profile trains at the seeds' scale: minutes on a GPU, ten minutes or more on a 2-core
CPU, too long for every build of the book. A chapter that sets its quick run beside the
full one stores what it reports with ``myst_nb.glue``; this script executes the chapter in a
fresh kernel with ``D2LKIT_PROFILE=full``, collects those values and writes them, with the
machine, the device and the date, to ``d2lkit/records/full_profile/<chapter>.json`` (package
data, so the record ships with d2lkit), which the chapter reads with ``d2lkit.report.recorded``.

Run from the repository root (with ``D2LKIT_DATA_MIRROR`` set as for a build)::

    python -m benchmarks.full_profile schedulers
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from myst_nb.ext.glue import GLUE_PREFIX  # the MIME prefix of glue(..., display=False)
from nbclient import NotebookClient

import d2lkit
from benchmarks.build import ROOT
from benchmarks.machine import machine_info
from d2lkit.report import RECORDS as RECORDS_FOLDER

# Where d2lkit.report.recorded reads them: the package data in the repository's d2lkit/.
RECORDS = ROOT / "d2lkit" / RECORDS_FOLDER / "full_profile"


def execute(page: Path, profile: str = "full", timeout: int | None = None) -> nbformat.NotebookNode:
    """Execute the MyST notebook ``page`` in a fresh kernel with the given build profile."""
    notebook = jupytext.read(page, fmt="md:myst")
    env = {**os.environ, "D2LKIT_PROFILE": profile}
    with tempfile.TemporaryDirectory() as cwd:  # the kernel's working directory, as in a build
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": cwd}}).execute(env=env)
    return notebook


def glued(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """Return the values the notebook's cells stored with ``myst_nb.glue``, by name.

    A value is read back from its ``text/plain`` form, as the ``{glue:text}`` role reads it:
    numbers, strings, lists and dicts of them come back as Python objects.
    """
    values: dict[str, Any] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output["data"]
            text = data.get(GLUE_PREFIX + "text/plain", data.get("text/plain"))
            try:
                values[name] = ast.literal_eval(text)
            except (SyntaxError, ValueError):
                values[name] = text
    return values


def record(page: Path, profile: str = "full") -> dict[str, Any]:
    """Execute ``page`` in ``profile``; return its glued values with what they were measured on."""
    date = time.strftime("%Y-%m-%d %H:%M")
    tik = time.perf_counter()
    values = glued(execute(page, profile))
    return {"chapter": page.stem, "profile": profile, "date": date,
            "machine": machine_info(d2lkit.try_gpu()),
            "elapsed_s": time.perf_counter() - tik, "values": values}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Record the full-profile run of the chapter named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="page name under book/, such as 'schedulers'")
    parser.add_argument("--out", type=Path, default=RECORDS, help="directory of the records")
    args = parser.parse_args(argv)
    page = ROOT / "book" / f"{args.chapter}.md"
    if not page.is_file():
        parser.error(f"no chapter {page}")
    result = record(page)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{args.chapter}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(result['values'])} values from {page.name} ({result['elapsed_s']:.0f} s on "
          f"{result['machine']['device']}) written to {out}")
    return result


if __name__ == "__main__":
    main()
