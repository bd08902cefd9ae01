"""The downloadable notebook of a page, in plain Jupyter Markdown, resolved by Sphinx.

:func:`export` turns the executed MyST notebook of a page (``_build/jupyter_execute/<page>.ipynb``)
into the notebook a reader opens in Jupyter, JupyterLab or Colab: every Markdown cell is rewritten
by :mod:`myst_markdown`, with the numbers, titles, citations and addresses that Sphinx resolved
for the site (:class:`SphinxResolver` asks the same domains that resolve the page's references),
and the glued values of the very run whose outputs the notebook holds; a figure drawn by a code
cell gets its numbered caption (from the cell's ``mystnb: figure`` metadata) in a Markdown cell
after it. Links point at the page and anchor on the hosted site.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urljoin

import nbformat
from docutils import nodes
from myst_markdown import Resolver, convert
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

CAPTION_TAG = "d2lkit-caption"
# Roles that Sphinx resolves as cross-references: name -> (domain, type, lowercase target).
XREF_ROLES = {"ref": ("std", "ref", True), "numref": ("std", "numref", True),
              "doc": ("std", "doc", False), "term": ("std", "term", True),
              "eq": ("math", "eq", False)}
PY_TYPES = {"func", "class", "meth", "mod", "attr", "data", "exc", "obj", "const"}
HTML_ROLES = {"sub": "sub", "sup": "sup", "kbd": "kbd"}


def site_url(app: Sphinx) -> str:
    """Return the address of the hosted site, ending in ``/``.

    ``d2lkit_site_url`` if set, else ``html_baseurl``, else the GitHub Pages address of the
    repository (``https://github.com/<owner>/<name>`` is hosted at
    ``https://<owner>.github.io/<name>/``).
    """
    url = app.config.d2lkit_site_url or app.config.html_baseurl
    if not url:
        repository = app.config.html_theme_options.get("repository_url", "").rstrip("/")
        owner, _, name = repository.split("github.com/")[-1].partition("/")
        url = f"https://{owner}.github.io/{name}/"
    return url if url.endswith("/") else url + "/"


def _markdown(node: nodes.Node, page_url: str) -> str:
    """Return a resolved inline node (a reference, a citation) as Markdown."""
    if isinstance(node, nodes.Text):
        return str(node)
    inner = "".join(_markdown(child, page_url) for child in node.children)
    if isinstance(node, nodes.reference):
        if node.get("refuri"):
            return f"[{inner}]({urljoin(page_url, node['refuri'])})"
        if node.get("refid"):
            return f"[{inner}]({page_url}#{node['refid']})"
        return inner
    if isinstance(node, nodes.literal):
        return f"`{node.astext()}`"
    if isinstance(node, nodes.strong):
        return f"**{inner}**"
    if isinstance(node, nodes.emphasis):
        return f"*{inner}*"
    if isinstance(node, nodes.math):
        return f"${node.astext()}$"
    return inner


class SphinxResolver(Resolver):
    """Resolve one page's roles and numbers from the Sphinx environment of the build."""

    def __init__(self, app: Sphinx, docname: str, glue: dict[str, Any]) -> None:
        self.app, self.env, self.docname, self.glue = app, app.env, docname, glue
        self.page_url = f"{site_url(app)}{docname}.html"

    def _warn(self, message: str, subtype: str = "export") -> None:
        logger.warning(f"{self.docname}.ipynb: {message}", type="d2lkit", subtype=subtype)

    def role(self, name: str, content: str) -> str:
        """Return the Markdown of ``{name}`content``` as the site shows it."""
        if name.startswith("glue"):
            return self._glue(name, content)
        if name == "math":
            return f"${content}$"
        if name in HTML_ROLES:
            return f"<{HTML_ROLES[name]}>{content}</{HTML_ROLES[name]}>"
        if name in {"code", "literal", "samp", "file", "command"}:
            return f"`{content}`"
        if name == "abbr":
            return content.split("(")[0].strip()
        if name in XREF_ROLES:
            return self._xref(*XREF_ROLES[name], content)
        if name == "cite" or name.startswith("cite:"):
            return self._xref("cite", name.partition(":")[2] or "p", False, content)
        domain, _, kind = name.rpartition(":")
        if kind in PY_TYPES and domain in {"", "py"}:
            return self._xref("py", kind, False, content)
        self._warn(f"no plain Markdown for the role {{{name}}}; its text is kept")
        return content

    def _xref(self, domain: str, kind: str, lowercase: bool, content: str) -> str:
        title, target, explicit = content, content, False
        if content.endswith(">") and " <" in content:
            title, _, target = content[:-1].rpartition(" <")
            explicit = True
        link = not target.startswith("!")
        target = target.lstrip("!~")
        if domain == "py" and not explicit:
            title = target.rsplit(".", 1)[-1] if content.lstrip("!").startswith("~") else target
        if lowercase:
            target = target.lower()
        contnode = (nodes.literal if domain == "py" else nodes.inline)(title, title)
        if not link:
            return _markdown(contnode, self.page_url)
        node = addnodes.pending_xref("", contnode, refdomain=domain, reftype=kind,
                                     reftarget=target, refexplicit=explicit, refwarn=True,
                                     refdoc=self.docname)
        resolved = self.env.get_domain(domain).resolve_xref(
            self.env, self.docname, self.app.builder, kind, target, node, contnode)
        if resolved is None:
            self._warn(f"the reference {{{domain}:{kind}}}`{content}` does not resolve")
            return title
        return _markdown(resolved, self.page_url)

    def _glue(self, name: str, content: str) -> str:
        from myst_nb.core.variables import format_plain_text

        key, fmt = content, ""
        if name == "glue:text" and ":" in content:  # key:format_spec, as myst-nb reads it
            key, fmt = content.rsplit(":", 1)
        data = self.glue.get(key)
        if data is None:
            self._warn(f"no glued value {key!r} in the executed notebook", "glue")
            return f"{{{name}}}`{content}`"  # left as it is: the notebooks' test reports it
        if name in {"glue:md", "glue", "glue:any"} and "text/markdown" in data:
            return data["text/markdown"].strip()
        return format_plain_text(data["text/plain"], fmt or ("s" if name == "glue:text" else ""))

    def equation_number(self, label: str) -> str:
        """Return the number of the equation ``label``, computed as Sphinx's math domain does."""
        equations = self.env.get_domain("math").equations
        if label not in equations:
            self._warn(f"no equation {label!r}")
            return "?"
        docname, number = equations[label]
        config = self.env.config
        if not (config.math_numfig and config.numfig):
            return str(number)
        numbers = self.env.toc_fignumbers.get(docname, {}).get("displaymath", {}).get(
            nodes.make_id(f"equation-{label}"), ())
        return config.math_numsep.join(".".join(map(str, numbers)).rsplit(".", 1))

    def number(self, kind: str, label: str) -> str:
        """Return the number of the figure or exercise ``label`` on its page."""
        labels = self.env.get_domain("std").labels
        docname, labelid = labels.get(label.lower(), (self.docname, label, ""))[:2]
        for labelid_ in (labelid, label, nodes.make_id(label)):
            numbers = self.env.toc_fignumbers.get(docname, {}).get(kind, {}).get(labelid_)
            if numbers:
                return ".".join(map(str, numbers))
        self._warn(f"no number for the {kind} {label!r}")
        return "?"

    def image_url(self, path: str) -> str:
        """Return the address on the site of an image that the page shows."""
        relative, _ = self.env.relfn2path(path, self.docname)
        if relative in self.env.images:
            return f"{site_url(self.app)}_images/{self.env.images[relative][1]}"
        return urljoin(self.page_url, path)

    def link_url(self, target: str) -> str:
        """Return the site's address of ``#label`` (any label of the book) or ``page.md#id``."""
        page, _, anchor = target.partition("#")
        if page:
            docname = self.env.path2doc(self.env.relfn2path(page, self.docname)[1]) or ""
            if docname not in self.env.all_docs:
                self._warn(f"the link to {target!r} does not resolve")
            return f"{site_url(self.app)}{docname}.html" + (f"#{anchor}" if anchor else "")
        labels = self.env.get_domain("std").labels
        if anchor.lower() in labels:
            docname, labelid = labels[anchor.lower()][:2]
            return f"{site_url(self.app)}{docname}.html#{labelid}"
        return f"{self.page_url}#{anchor}"

    def elsewhere(self, name: str) -> str:
        """Return a pointer to the site for what only the build can show (a table of runs)."""
        return (f"*What the book's build generates here ({name}) is shown on "
                f"[the page on the site]({self.page_url}).*")


def glued(notebook: dict[str, Any], stored: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the values the notebook's cells glued with ``myst_nb.glue``: key -> MIME bundle.

    myst-nb moves them out of the executed notebook into ``<page>.glue.json`` (``stored``);
    any still in the notebook's outputs count too.
    """
    from myst_nb.ext.glue import extract_glue_data_cell

    values = {key: output["data"] for key, output in stored.items()}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            for key, output in extract_glue_data_cell(nbformat.from_dict(copy.deepcopy(cell))):
                values[key] = output["data"]
    return values


def _glue_record(output: dict[str, Any]) -> bool:
    """Return whether ``output`` only stores a glued value for the build (now in the Markdown)."""
    data = output.get("data", {})
    return bool(data) and all(mime.startswith("application/papermill.record/") for mime in data)


def _markdown_cell(source: str, tag: str | None = None) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {"tags": [tag]} if tag else {}, "source": source}


def export(app: Sphinx, docname: str, notebook: dict[str, Any],
           glue: dict[str, Any]) -> dict[str, Any]:
    """Return the executed MyST ``notebook`` of ``docname`` as a plain Jupyter notebook; ``glue``
    holds the values its run glued (``<page>.glue.json``)."""
    resolver = SphinxResolver(app, docname, glued(notebook, glue))
    cells: list[dict[str, Any]] = []
    for cell in notebook["cells"]:
        cell = copy.deepcopy(cell)
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = convert(source, resolver)
            if not cell["source"].strip():
                continue  # a cell that held only a label line or the end of a solution
        elif cell["cell_type"] == "code":
            cell["outputs"] = [o for o in cell["outputs"] if not _glue_record(o)]
        cells.append(cell)
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if cell["cell_type"] == "code" and figure.get("caption"):
            number = resolver.number("figure", figure["name"]) if figure.get("name") else ""
            caption = convert(str(figure["caption"]), resolver)
            cells.append(_markdown_cell(f"**Figure {number}.** {caption}".replace(" .", "."),
                                        CAPTION_TAG))
    if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) >= (4, 5):
        for index, cell in enumerate(cells):
            cell.setdefault("id", f"{CAPTION_TAG}-{index}")
    return {**notebook, "cells": cells}
