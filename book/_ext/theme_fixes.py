"""Sphinx extension: every page loads without a JavaScript error.

With Sphinx 7.4, an inline script that an extension adds once the builder exists (sphinx-thebe's
``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector) is listed twice, once with the file
name ``None`` and once with ``""``, so every page declared ``THEBE_JS_URL`` twice and the browser
raised "Identifier 'THEBE_JS_URL' has already been declared". This keeps the first of each.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str,
                            context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", str(script)) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    """Deduplicate each page's scripts after every other extension has added its own."""
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
