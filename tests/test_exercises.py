"""Exercises and solutions: their format in the chapters, and the generated exercise index.

The chapters end with numbered ``exercise`` directives (sphinx-exercise) and, under a heading
``## Solutions`` after all of them, executed solutions in the gated ``solution-start`` /
``solution-end`` form. ``book/_ext/exercise_index.py`` fills the page ``exercises.md`` with every
exercise of the book; the tests here check the sources, the built index against the sources, and
the extension itself on a small Sphinx project.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
INDEX_HTML = ROOT / "_build" / "html" / "exercises.html"
sys.path.insert(0, str(BOOK / "_ext"))

from exercise_index import reading_order  # noqa: E402 (the extension lives in book/_ext)

EXERCISE = re.compile(r"^```\{exercise\}[^\n]*\n:label: (\S+)\s*$", re.MULTILINE)
SOLUTION_START = re.compile(r"^```\{solution-start\} (\S+)\n(:class: dropdown\n)?", re.MULTILINE)
SOLUTION_END = re.compile(r"^```\{solution-end\}", re.MULTILINE)
ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.DOTALL)
LINK = re.compile(r'href="([\w.-]+)\.html#([^"]+)"')


def toc_chapters() -> list[str]:
    """Return the documents of the table of contents, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [entry["file"] for part in toc.get("parts", []) for entry in part["chapters"]]


def exercises_of(text: str) -> tuple[list[str], list[str]]:
    """Return the labels of the exercises and the targets of the solutions of one page."""
    return EXERCISE.findall(text), [m.group(1) for m in SOLUTION_START.finditer(text)]


def book_exercises() -> dict[str, tuple[list[str], list[str]]]:
    """Return, for every page of the book with exercises, its exercises and solved exercises."""
    found = {}
    for name in toc_chapters():
        exercises, solved = exercises_of((BOOK / f"{name}.md").read_text())
        if exercises:
            found[name] = (exercises, solved)
    return found


def index_rows(html: str) -> list[tuple[str, str, bool]]:
    """Return (page, label, has a solution) for every row of a built exercise index."""
    rows = []
    for row in ROW.findall(html):
        links = LINK.findall(row)
        if links:
            page, label = links[0]
            rows.append((page, label, len(links) > 1 and "Solution</a>" in row))
    return rows


def test_chapters_follow_the_exercise_format():
    pages = book_exercises()
    assert pages, "no page of the book has exercises"
    labels = [label for exercises, _ in pages.values() for label in exercises]
    assert len(labels) == len(set(labels)), "duplicate exercise labels"
    for name, (exercises, solved) in pages.items():
        text = (BOOK / f"{name}.md").read_text()
        assert all(label.startswith("ex-") for label in exercises), name
        assert text.count("\n## Exercises\n") == 1, f"{name}: no single '## Exercises' heading"
        if not solved:
            continue
        solutions_at = text.find("\n## Solutions\n")
        last_exercise = max(m.start() for m in EXERCISE.finditer(text))
        assert solutions_at > last_exercise, f"{name}: '## Solutions' must follow every exercise"
        starts = list(SOLUTION_START.finditer(text))
        assert all(m.start() > solutions_at for m in starts), f"{name}: solution before heading"
        assert all(m.group(2) for m in starts), f"{name}: a solution without ':class: dropdown'"
        assert set(solved) <= set(exercises), f"{name}: a solution to an exercise of another page"
        assert len(set(solved)) == len(solved), f"{name}: two solutions to one exercise"
        assert len(SOLUTION_END.findall(text)) == len(starts), f"{name}: unbalanced solution-end"


def test_every_chapter_solves_at_least_half_of_its_exercises():
    unsolved = {name: f"{len(solved)} of {len(exercises)}"
                for name, (exercises, solved) in book_exercises().items()
                if 2 * len(solved) < len(exercises)}
    assert not unsolved, f"pages with solutions to fewer than half of their exercises: {unsolved}"


def test_built_index_lists_every_exercise_with_its_solution():
    """The index of the built site holds exactly the exercises of the sources, in reading order."""
    assert INDEX_HTML.is_file(), "no site: run `jupyter-book build book` first"
    rows = index_rows(INDEX_HTML.read_text())
    expected = [(name, label, label in solved)
                for name, (exercises, solved) in book_exercises().items() for label in exercises]
    missing = sorted(set(expected) - set(rows))
    assert not missing, f"exercises missing from the index (page, label, solved): {missing}"
    assert rows == expected


def test_reading_order_follows_the_toctree():
    includes = {"intro": ["b", "a"], "a": ["a1"], "b": []}
    order = reading_order("intro", includes, ["a", "a1", "b", "orphan"])
    assert order == ["b", "a", "a1", "orphan"]
    assert reading_order("intro", includes, []) == []


TINY_CONF = """
import sys
sys.path.insert(0, {ext!r})
extensions = ["myst_parser", "sphinx_exercise", "exercise_index"]
myst_enable_extensions = ["dollarmath"]
root_doc = "index"
"""

TINY_PAGES = {
    "index.md": "# Tiny\n\n```{toctree}\nsecond\nfirst\nexercises\n```\n",
    "first.md": "# First\n\n```{exercise} Doubling\n:label: ex-first-double\nDouble it.\n```\n\n"
                "```{exercise}\n:label: ex-first-open\nThink.\n```\n\n"
                "```{solution} ex-first-double\n:class: dropdown\nTwice.\n```\n",
    "second.md": "# Second\n\n```{exercise} Halving\n:label: ex-second-half\nHalve it.\n```\n\n"
                 "```{exercise}\n:label: ex-second-hidden\n:hidden:\nNot shown.\n```\n",
    "exercises.md": "# All exercises\n\n```{exercise-index}\n```\n",
}


def _sphinx(src: Path, out: Path) -> str:
    command = [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return (out / "exercises.html").read_text()


def test_index_extension_collects_exercises_and_follows_new_ones(tmp_path):
    """The index lists a small project's exercises in toctree order and picks up a new one."""
    src, out = tmp_path / "src", tmp_path / "html"
    src.mkdir()
    (src / "conf.py").write_text(TINY_CONF.format(ext=str(BOOK / "_ext")))
    for name, text in TINY_PAGES.items():
        (src / f"{name}").write_text(text)
    html = _sphinx(src, out)
    assert index_rows(html) == [("second", "ex-second-half", False),
                                ("first", "ex-first-double", True),
                                ("first", "ex-first-open", False)]
    assert "Doubling" in html and "none yet" in html
    # an incremental build after a new exercise in one page rewrites the index too
    (src / "second.md").write_text(TINY_PAGES["second.md"]
                                   + "\n```{exercise}\n:label: ex-second-new\nNew.\n```\n")
    rows = index_rows(_sphinx(src, out))
    assert ("second", "ex-second-new", False) in rows and len(rows) == 4
