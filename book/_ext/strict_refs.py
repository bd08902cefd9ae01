"""Sphinx extension: a broken internal reference fails the build.

Sphinx runs with ``nitpicky`` on, so every cross-reference that does not resolve is reported:
``{ref}``, ``{numref}``, ``{eq}``, ``{doc}``, ``{cite}``, MyST ``[text](#label)`` links and the
``{py:func}``-style roles that point into :mod:`d2lkit`, and the ``{glue}`` roles that paste a
value an executed cell stored with ``myst_nb.glue``. This extension collects those reports
(and duplicate labels, which make a reference ambiguous) and, once the build has finished, turns
them into a build failure that lists each one, while every other warning stays a warning. Objects
of other libraries (``torch.Tensor`` in a signature) cannot be linked on an offline site, so
``nitpick_ignore_regex`` in ``_config.yml`` exempts every Python target outside ``d2lkit``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import SphinxError
from sphinx.util.logging import WarningLogRecordTranslator, is_suppressed_warning

# (type, subtype) of the warnings that mean a reference is broken; None matches any subtype.
BROKEN_REFERENCE_TYPES = {("ref", None), ("bibtex", None), ("myst", "xref_missing"),
                          ("myst", "iref_ambiguous"), ("myst", "xref_ambiguous"),
                          ("mystnb", "glue")}
# Warnings that Sphinx and its extensions emit without a type.
BROKEN_REFERENCE_MESSAGES = re.compile(
    r"duplicate label|undefined label|equation not found|could not find bibtex key"
    r"|reference target not found|Failed to create a cross reference|unknown document"
)


class BrokenReferenceError(SphinxError):
    """The build contains references that do not resolve."""

    category = "Broken internal references"


class _Collector(logging.Handler):
    """Record the warnings that report a broken reference."""

    def __init__(self, app: Sphinx) -> None:
        super().__init__(level=logging.WARNING)
        self.app = app
        # Keyed by identity: Sphinx buffers some warnings and replays the same record later.
        self.records: dict[int, logging.LogRecord] = {}

    def emit(self, record: logging.LogRecord) -> None:
        kind = getattr(record, "type", None)
        subtype = getattr(record, "subtype", None)
        if is_suppressed_warning(kind, subtype, self.app.config.suppress_warnings):
            return
        if ((kind, subtype) in BROKEN_REFERENCE_TYPES or (kind, None) in BROKEN_REFERENCE_TYPES
                or BROKEN_REFERENCE_MESSAGES.search(record.getMessage())):
            self.records[id(record)] = record

    def report(self) -> list[str]:
        """Return one line per broken reference, with its location where known."""
        translate = WarningLogRecordTranslator(self.app)
        for record in self.records.values():
            translate.filter(record)  # what Sphinx's own handler does: "file:line: WARNING: ..."
        return list(dict.fromkeys(record.getMessage() for record in self.records.values()))


def _install(app: Sphinx) -> None:
    collector = _Collector(app)
    logging.getLogger("sphinx").addHandler(collector)
    app.connect("build-finished", lambda app, exc: _fail_on_broken(collector, exc))


def _fail_on_broken(collector: _Collector, exc: Exception | None) -> None:
    logging.getLogger("sphinx").removeHandler(collector)
    broken = collector.report()
    if exc is None and broken:
        lines = "\n".join(f"  {line}" for line in broken)
        raise BrokenReferenceError(f"{len(broken)} broken reference(s):\n{lines}")


def setup(app: Sphinx) -> dict[str, Any]:
    """Collect broken-reference warnings from the start of the build and fail at its end."""
    app.connect("builder-inited", _install)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
