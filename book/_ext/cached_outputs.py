"""Sphinx extension: an executed notebook taken from the cache keeps its outputs.

myst-nb 1.4 writes ``_build/jupyter_execute/<page>.ipynb`` from the notebook it parsed, not from
the one its cache client returned, so a page taken from the execution cache is written with no
outputs and no execution counts (the HTML page is rendered from the right one). nbval compares
against those files, and the ``.ipynb`` download and the Colab and Binder notebooks are copies of
them, so after each page is read this rewrites the file with the cached outputs merged in, as
myst-nb does for rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from jupyter_cache import get_cache
from sphinx.application import Sphinx


def _write_cached_outputs(app: Sphinx, doctree: nodes.document) -> None:
    config = getattr(app.env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        return
    path = Path(config.output_folder, *f"{app.env.docname}.ipynb".split("/"))
    if not path.is_file():
        return
    notebook = nbformat.read(path, as_version=4)
    try:
        _, merged = get_cache(config.execution_cache_path).merge_match_into_notebook(notebook)
    except KeyError:  # not in the cache: executed just now, or failed
        return
    content = nbformat.writes(merged)
    if content != path.read_text(encoding="utf-8"):
        path.write_text(content, encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    """Rewrite each notebook from the cache once myst-nb has read its page."""
    app.connect("doctree-read", _write_cached_outputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
