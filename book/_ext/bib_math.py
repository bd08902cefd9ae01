"""Sphinx extension: TeX math in bibliography entries is rendered, not shown as ``$...$``.

A title such as Nesterov's "convergence rate {$O(1/k^2)$}" reaches the references page as plain
text with dollar signs, which MathJax leaves alone (Sphinx's MathJax typesets only math nodes).
Each ``$...$`` inside a citation becomes a math node, and the page is marked as having equations
so that Sphinx loads MathJax on it.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

_INLINE_MATH = re.compile(r"\$([^$]+)\$")


def _math_in_citations(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    found = False
    for citation in doctree.findall(nodes.citation):
        for text in list(citation.findall(nodes.Text)):
            pieces = _INLINE_MATH.split(text.astext())
            if len(pieces) == 1:
                continue
            found = True
            replacement = [nodes.math(piece, piece) if i % 2 else nodes.Text(piece)
                           for i, piece in enumerate(pieces) if piece]
            text.parent.replace(text, replacement)
    if found:
        app.env.get_domain("math").data["has_equations"][docname] = True


def setup(app: Sphinx) -> dict[str, Any]:
    """Convert math in citations once sphinxcontrib-bibtex has formatted them."""
    app.connect("doctree-resolved", _math_in_citations)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
