"""Sphinx extension: the ``exercise-index`` directive lists every exercise of the book.

sphinx-exercise records each ``exercise`` and ``solution`` (and their gated ``-start`` forms) in
``env.sphinx_exercise_registry`` while it reads the pages. The directive leaves a placeholder; when
the page is written, every page has been read and numbered, so a post-transform replaces the
placeholder with one table per chapter, in the order of the table of contents: the exercise's
number (a link to it), its title (the directive's optional argument) and a link to its solution,
or "none yet". The index is generated, never maintained by hand: a new chapter's exercises appear
in it at the next build, and the page is rewritten at every build so it never lags behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

EXERCISE_TYPES = ("exercise", "exercise-start")
SOLUTION_TYPES = ("solution", "solution-start")


class exercise_index_node(nodes.General, nodes.Element):
    """Placeholder for the index, filled once every page has been read."""


@dataclass(frozen=True)
class Entry:
    """One exercise as the index shows it."""

    docname: str
    label: str
    number: str  # "3", or "" for an exercise without a number
    title: str  # the directive's argument, or ""
    solution: tuple[str, str] | None  # (docname, label) of its solution


def reading_order(root: str, includes: dict[str, list[str]], docnames: Iterable[str]) -> list[str]:
    """Return ``docnames`` in the order of the table of contents rooted at ``root``.

    Documents the table of contents does not reach come last, sorted by name.
    """
    order: list[str] = []
    stack = [root]
    while stack:
        doc = stack.pop()
        if doc in order:
            continue
        order.append(doc)
        stack.extend(reversed(includes.get(doc, [])))
    wanted = set(docnames)
    return [doc for doc in order if doc in wanted] + sorted(wanted - set(order))


def collect(env: BuildEnvironment) -> dict[str, list[Entry]]:
    """Return the exercises by page: pages in reading order, exercises in page order.

    Exercises marked ``:hidden:`` are left out: their page does not show them.
    """
    registry: dict[str, dict[str, Any]] = getattr(env, "sphinx_exercise_registry", {})
    solutions = {info["node"]["target_label"]: (info["docname"], label)
                 for label, info in registry.items() if info["type"] in SOLUTION_TYPES}
    exercises = sorted(((info["docname"], info["node"]["serial_number"], label, info["node"])
                        for label, info in registry.items()
                        if info["type"] in EXERCISE_TYPES and not info["node"].get("hidden")),
                       key=lambda item: item[:2])
    grouped: dict[str, list[Entry]] = {}
    for docname, _, label, node in exercises:
        number = env.toc_fignumbers.get(docname, {}).get("exercise", {}).get(label, ())
        subtitle = node.next_node(lambda n: n.tagname == "exercise_subtitle")
        grouped.setdefault(docname, []).append(Entry(
            docname, label, ".".join(map(str, number)),
            subtitle.astext() if subtitle is not None else "", solutions.get(label)))
    order = reading_order(env.config.root_doc, env.toctree_includes, grouped)
    return {docname: grouped[docname] for docname in order}


class ExerciseIndexDirective(SphinxDirective):
    """``exercise-index``: the list of every exercise of the book, by chapter."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.exercise_index_docs = getattr(self.env, "exercise_index_docs", set())
        self.env.exercise_index_docs.add(self.env.docname)
        return [exercise_index_node()]


def _link(text: str, refuri: str) -> nodes.paragraph:
    return nodes.paragraph("", "", nodes.reference("", text, internal=True, refuri=refuri))


def _table(rows: list[list[nodes.Node]], header: list[str]) -> nodes.table:
    group = nodes.tgroup(cols=len(header))
    group += [nodes.colspec(colwidth=width) for width in (1, 4, 1)]
    head, body = nodes.thead(), nodes.tbody()
    head += nodes.row("", *(nodes.entry("", nodes.paragraph(text=text)) for text in header))
    body += [nodes.row("", *(nodes.entry("", cell) for cell in row)) for row in rows]
    group += [head, body]
    return nodes.table("", group, classes=["exercise-index"])


class FillExerciseIndex(SphinxPostTransform):
    """Replace each ``exercise-index`` placeholder by the tables of exercises."""

    default_priority = 5

    def run(self, **kwargs: Any) -> None:
        placeholders = list(self.document.findall(exercise_index_node))
        if not placeholders:
            return
        here = self.env.docname
        uri = self.app.builder.get_relative_uri
        content: list[nodes.Node] = []
        for docname, entries in collect(self.env).items():
            title = self.env.titles[docname].astext()
            content.append(nodes.rubric("", "", nodes.reference(
                "", title, internal=True, refuri=uri(here, docname))))
            rows = []
            for entry in entries:
                name = f"Exercise {entry.number}".strip()
                solution: nodes.Node = nodes.paragraph(text="none yet")
                if entry.solution is not None:
                    target_doc, target = entry.solution
                    solution = _link("Solution", f"{uri(here, target_doc)}#{target}")
                rows.append([_link(name, f"{uri(here, entry.docname)}#{entry.label}"),
                             nodes.paragraph(text=entry.title), solution])
            content.append(_table(rows, ["Exercise", "Topic", "Solution"]))
        if not content:
            content = [nodes.paragraph(text="The book has no exercises yet.")]
        for placeholder in placeholders:
            placeholder.replace_self([node.deepcopy() for node in content])


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "exercise_index_docs", set()).discard(docname)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    env.exercise_index_docs = (getattr(env, "exercise_index_docs", set())
                               | getattr(other, "exercise_index_docs", set()))


def _always_rewrite(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Rewrite the index pages at every build: any page's exercises may have changed."""
    return sorted(getattr(env, "exercise_index_docs", set()))


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive, its placeholder node and the post-transform that fills it."""
    app.setup_extension("sphinx_exercise")
    app.add_node(exercise_index_node)
    app.add_directive("exercise-index", ExerciseIndexDirective)
    app.add_post_transform(FillExerciseIndex)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-get-updated", _always_rewrite)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
