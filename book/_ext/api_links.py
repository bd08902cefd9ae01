"""Sphinx extension: d2lkit's docstrings on the API reference page, and links to them.

- Docstrings write inline math as ``$...$``, like the chapters; it becomes ``:math:`...``` so
  MathJax renders it (text inside ````literal```` spans, such as ``$D2LKIT_CACHE``, is left alone).
- The generated "Alias for field number N" docstrings of ``NamedTuple`` fields are skipped.
- A chapter may link a helper by the name it calls it with, such as ``d2lkit.Timer`` or
  ``d2lkit.plot`` (the function re-exported by the package, not the module of the same name): a
  reference that names a re-export points to the entry of the object where it is defined,
  ``d2lkit.device.Timer`` or ``d2lkit.plot.plot``.
- A type variable in a signature (``T`` in ``by_profile(quick: T, full: T) -> T``) has no entry
  to link to and stays plain text.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, TypeVar

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms.post_transforms import SphinxPostTransform

_LITERAL = re.compile(r"(``.+?``)", re.DOTALL)
_INLINE_MATH = re.compile(r"(?<![\\$`])\$(?=\S)([^$]+?)(?<=\S)\$(?!\$)")


def dollar_math_to_role(text: str) -> str:
    """Return ``text`` with each ``$...$`` outside double-backtick literals as a :math: role."""
    parts = _LITERAL.split(text)
    for i in range(0, len(parts), 2):  # even indices lie outside literals
        parts[i] = _INLINE_MATH.sub(lambda m: f":math:`{m[1]}`", parts[i])
    return "".join(parts)


def _process_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                       lines: list[str]) -> None:
    if lines:
        lines[:] = dollar_math_to_role("\n".join(lines)).split("\n")


def _skip_field_alias(app: Sphinx, what: str, name: str, obj: Any, skip: bool,
                      options: Any) -> bool | None:
    doc = getattr(obj, "__doc__", None) or ""
    return True if doc.startswith("Alias for field number") else None


def _lookup(target: str) -> Any:
    """Return the object named by the dotted name ``target`` under d2lkit, or None."""
    if not target.startswith("d2lkit."):
        return None
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def defined_name(target: str) -> str | None:
    """Return where the object ``target`` (a dotted name under d2lkit) is defined, if elsewhere."""
    obj = _lookup(target)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str) and module.startswith("d2lkit")):
        return None
    defined = f"{module}.{qualname}"
    return defined if defined != target else None


class ReexportTargets(SphinxPostTransform):
    """Point references to re-exported names at the objects' own entries."""

    default_priority = 5  # before Sphinx's ReferencesResolver (10)

    def run(self, **kwargs: Any) -> None:
        for node in self.document.findall(pending_xref):
            if node.get("refdomain") == "py" and node.get("reftype") != "mod":
                defined = defined_name(node["reftarget"])
                if defined is not None:
                    node["reftarget"] = defined


def _type_variable_as_text(app: Sphinx, env: BuildEnvironment, node: pending_xref,
                           contnode: nodes.TextElement) -> nodes.Element | None:
    if node.get("refdomain") == "py" and isinstance(_lookup(node["reftarget"]), TypeVar):
        return contnode
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Connect the docstring filters and the handling of re-exported names and type variables."""
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("autodoc-skip-member", _skip_field_alias)
    app.add_post_transform(ReexportTargets)
    app.connect("missing-reference", _type_variable_as_text)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
