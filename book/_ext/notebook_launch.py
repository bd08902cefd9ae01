"""Sphinx extension: notebooks that run and read anywhere, and launch buttons that open them.

Every chapter is a MyST Markdown notebook; sphinx-book-theme offers the executed ``.ipynb`` for
download (``_sources/<page>.ipynb``) and launch buttons for Colab and Binder. Colab cannot open a
``.md`` file, so the GitHub Pages workflow publishes those downloadable notebooks on the branch
``d2lkit_notebooks_branch`` of the repository, and this extension, once the build has finished,

- writes each downloadable notebook afresh from the executed one, in plain Jupyter Markdown
  (:mod:`notebook_export`: no MyST role or directive left, references, equation numbers,
  citations and glued values as the site shows them),
- puts a setup cell first in it, which installs exactly the d2lkit that built it (the commit,
  from git or ``GITHUB_SHA``; the version when neither is known) when ``import d2lkit`` fails,
  and writes the same requirement, for Binder, to ``_sources/requirements.txt``, and
- points the Colab and Binder buttons at ``<page>.ipynb`` on that branch.

The setup cell lives here rather than in the chapters, so that no chapter repeats it and the
HTML pages do not show it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

from notebook_export import export
from sphinx.application import Sphinx

import d2lkit

SETUP_TAG = "d2lkit-setup"


def built_commit(root: str | Path) -> str | None:
    """Return the commit the book is built from: git's ``HEAD``, else ``$GITHUB_SHA``."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=30)
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GITHUB_SHA") or None


def d2lkit_requirement(repository_url: str, commit: str | None) -> str:
    """Return the pip requirement of exactly this d2lkit: its commit, or else its version."""
    if commit:
        return f"d2lkit @ git+{repository_url}@{commit}"
    return f"d2lkit=={d2lkit.__version__}"


def setup_cell_source(requirement: str) -> str:
    """Return the code of the setup cell that installs ``requirement`` where d2lkit is missing."""
    return (
        "# Setup for Colab and other fresh environments: install d2lkit, the book's helper\n"
        "# package, as it was when this notebook was built, if it is not installed yet.\n"
        "try:\n"
        "    import d2lkit\n"
        "except ModuleNotFoundError:\n"
        f'    %pip install --quiet "{requirement}"\n'
    )


def binder_requirements(requirement: str) -> str:
    """Return Binder's ``requirements.txt``: CPU torch as built with, and the same d2lkit."""
    import torch

    return ("--extra-index-url https://download.pytorch.org/whl/cpu\n"
            f"torch=={torch.__version__.split('+')[0]}\n{requirement}\n")


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


def _repository(app: Sphinx) -> tuple[str, str]:
    """Return the repository's URL and its ``owner/name``."""
    options = _theme_options(app)
    url = options.get("repository_url", "").rstrip("/")
    return url, url.split("github.com/")[-1]


def _point_launch_buttons(app: Sphinx, pagename: str, templatename: str,
                          context: dict[str, Any], doctree: Any) -> None:
    """Make the Colab and Binder buttons open ``<page>.ipynb`` on the notebooks branch."""
    launch = _theme_options(app).get("launch_buttons", {})
    branch = app.config.d2lkit_notebooks_branch
    _, slug = _repository(app)
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


def _export_notebooks(app: Sphinx, exc: Exception | None) -> None:
    """Write every page's downloadable notebook: plain Markdown, setup cell first."""
    if exc is not None or app.builder.format != "html":
        return
    url, _ = _repository(app)
    requirement = d2lkit_requirement(url, built_commit(app.srcdir))
    executed = Path(app.outdir).parent / "jupyter_execute"  # where myst-nb writes them
    sources = Path(app.outdir, "_sources")
    for docname in sorted(app.env.all_docs):
        path = executed / f"{docname}.ipynb"
        if not path.is_file():
            continue  # not a notebook page
        glue = path.with_suffix(".glue.json")  # what the page's cells glued, beside it
        notebook = export(app, docname, json.loads(path.read_text(encoding="utf-8")),
                          json.loads(glue.read_text(encoding="utf-8")) if glue.is_file() else {})
        add_setup_cell(notebook, setup_cell_source(requirement))
        out = sources / f"{docname}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    sources.mkdir(parents=True, exist_ok=True)
    (sources / "requirements.txt").write_text(binder_requirements(requirement), encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the options, the launch-button fix and the export of the notebooks."""
    app.add_config_value("d2lkit_notebooks_branch", "notebooks", "html")
    app.add_config_value("d2lkit_site_url", "", "html")  # default: the GitHub Pages address
    # After sphinx-book-theme builds the launch buttons (priority 501).
    app.connect("html-page-context", _point_launch_buttons, priority=502)
    app.connect("build-finished", _export_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
