"""Sphinx extension: the ``exec-total`` directive, the summed execution time of all pages.

It complements myst-nb's ``nb-exec-table``: a placeholder node is replaced, once every page has
been executed (or taken from the cache), by a sentence with the total run time.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from myst_nb.sphinx_ import NbMetadataCollector
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective


class ExecTotalNode(nodes.General, nodes.Element):
    """Placeholder for the total execution time."""


class ExecTotal(SphinxDirective):
    """Insert the total execution time of the executed pages."""

    def run(self) -> list[nodes.Node]:
        # Mark the page like nb-exec-table does, so it is refreshed when any page re-executes.
        NbMetadataCollector.set_doc_data(self.env, self.env.docname, "has_exec_table", True)
        return [ExecTotalNode()]


class ExecTotalTransform(SphinxPostTransform):
    """Replace the placeholder by the sum of the pages' recorded run times."""

    default_priority = 8

    def run(self, **kwargs: Any) -> None:
        runs = [
            data["exec_data"]
            for data in NbMetadataCollector.get_doc_data(self.env).values()
            if data.get("exec_data")
        ]
        seconds = sum(run.get("runtime") or 0.0 for run in runs)
        cached = sum(1 for run in runs if run.get("method") == "cache")
        text = (
            f"Total execution time of the {len(runs)} executed pages: {seconds:.1f} s "
            f"({cached} of them taken from the execution cache)."
        )
        for node in self.document.findall(ExecTotalNode):
            node.replace_self(nodes.paragraph(text=text))


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive and its post-transform."""
    app.add_node(ExecTotalNode)
    app.add_directive("exec-total", ExecTotal)
    app.add_post_transform(ExecTotalTransform)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
