"""Sphinx extension: notebooks that run anywhere, and launch buttons that open them.

Every chapter is a MyST Markdown notebook; sphinx-book-theme offers the executed ``.ipynb`` for
download (``_sources/<page>.ipynb``) and launch buttons for Colab and Binder. Colab cannot open a
``.md`` file, so the GitHub Pages workflow publishes those downloadable notebooks on the branch
``d2lkit_notebooks_branch`` of the repository, and this extension

- puts a setup cell first in each downloadable notebook, which installs d2lkit from the
  repository when ``import d2lkit`` fails (on Colab; on Binder the branch's requirements.txt
  installs it first, and on a reader's machine that ran ``pip install -r requirements.txt`` it
  is already there), and
- points the Colab and Binder buttons at ``<page>.ipynb`` on that branch.

The setup cell lives here rather than in the chapters, so that no chapter repeats it and the
HTML pages do not show it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sphinx.application import Sphinx

SETUP_TAG = "d2lkit-setup"


def setup_cell_source(repository_url: str, branch: str) -> str:
    """Return the code of the setup cell that installs d2lkit from the repository."""
    return (
        "# Setup for Colab and other fresh environments: install d2lkit, the book's helper\n"
        "# package, from the book's repository when it is not installed yet.\n"
        "try:\n"
        "    import d2lkit\n"
        "except ModuleNotFoundError:\n"
        f'    %pip install --quiet "d2lkit @ git+{repository_url}@{branch}"\n'
    )


def add_setup_cell(notebook: dict[str, Any], source: str) -> bool:
    """Insert the setup cell first in ``notebook`` unless it is there; return whether it was."""
    cells = notebook["cells"]
    if cells and SETUP_TAG in cells[0].get("metadata", {}).get("tags", []):
        return False
    cell: dict[str, Any] = {"cell_type": "code", "execution_count": None,
                            "metadata": {"tags": [SETUP_TAG]}, "outputs": [], "source": source}
    if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) >= (4, 5):
        cell["id"] = SETUP_TAG
    cells.insert(0, cell)
    return True


def _theme_options(app: Sphinx) -> dict[str, Any]:
    return app.config.html_theme_options


def _repository(app: Sphinx) -> tuple[str, str, str]:
    """Return the repository's URL, its ``owner/name`` and the branch the book is built from."""
    options = _theme_options(app)
    url = options.get("repository_url", "").rstrip("/")
    return url, url.split("github.com/")[-1], options.get("repository_branch") or "main"


def _point_launch_buttons(app: Sphinx, pagename: str, templatename: str,
                          context: dict[str, Any], doctree: Any) -> None:
    """Make the Colab and Binder buttons open ``<page>.ipynb`` on the notebooks branch."""
    launch = _theme_options(app).get("launch_buttons", {})
    branch = app.config.d2lkit_notebooks_branch
    _, slug, _ = _repository(app)
    notebook = f"{pagename}.ipynb"
    ui = "lab/tree" if launch.get("notebook_interface") == "jupyterlab" else "tree"
    colab, binder = (launch.get(key, "").rstrip("/") for key in ("colab_url", "binderhub_url"))
    urls = {
        "Colab": f"{colab}/github/{slug}/blob/{branch}/{notebook}",
        "Binder": f"{binder}/v2/gh/{slug}/{branch}?urlpath={quote(f'{ui}/{notebook}')}",
    }
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                if button.get("text") in urls:
                    button["url"] = urls[button["text"]]


def _add_setup_cells(app: Sphinx, exc: Exception | None) -> None:
    """Put the setup cell first in every downloadable notebook of the HTML build."""
    if exc is not None or app.builder.format != "html":
        return
    url, _, branch = _repository(app)
    source = setup_cell_source(url, branch)
    for path in sorted(Path(app.outdir, "_sources").glob("**/*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if add_setup_cell(notebook, source):
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the branch option, the launch-button fix and the setup-cell step."""
    app.add_config_value("d2lkit_notebooks_branch", "notebooks", "html")
    # After sphinx-book-theme builds the launch buttons (priority 501).
    app.connect("html-page-context", _point_launch_buttons, priority=502)
    app.connect("build-finished", _add_setup_cells)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
