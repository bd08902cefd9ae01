"""Sphinx extension: author-year citations in round brackets, "Kingma and Ba (2015)".

sphinxcontrib-bibtex's ``author_year`` style writes "Kingma and Ba [2015]" and "[Kingma and Ba,
2015]"; this registers ``author_year_round`` (``bibtex_reference_style`` in ``_config.yml``), the
same style with parentheses, the usual form of an author-year citation, which the downloadable
notebooks show too (``notebook_export`` renders citations through the same style).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sphinx.application import Sphinx
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle


def round_brackets() -> BracketStyle:
    """Return parentheses as the brackets of a citation."""
    return BracketStyle(left="(", right=")")


@dataclass
class RoundAuthorYearStyle(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's author-year style, with parentheses instead of square brackets."""

    bracket_textual: BracketStyle = field(default_factory=round_brackets)
    bracket_parenthetical: BracketStyle = field(default_factory=round_brackets)
    bracket_author: BracketStyle = field(default_factory=round_brackets)
    bracket_label: BracketStyle = field(default_factory=round_brackets)
    bracket_year: BracketStyle = field(default_factory=round_brackets)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``author_year_round`` referencing style."""
    register_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round",
                    RoundAuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
