"""The execution cache re-executes exactly the pages whose imports, profile or torch changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, myst_notebook

sys.path.insert(0, str(ROOT / "book" / "_ext"))
from exec_deps import closure, imported_names, package_modules

CONFIG = f"""\
title: deps
only_build_toc_files: true
execute:
  execute_notebooks: cache
  raise_on_error: true
sphinx:
  local_extensions:
    exec_deps: {ROOT / "book" / "_ext"}
  config:
    d2lkit_exec_deps_packages: [fakekit]
"""


def _page(name: str, module: str) -> str:
    code = (f"import os\nimport fakekit.{module}\n"
            f"with open(os.environ['EXEC_LOG'], 'a') as log:\n    log.write('{name}\\n')")
    return myst_notebook(name, code)


@pytest.fixture
def book(tmp_path):
    package = tmp_path / "pkgs" / "fakekit"
    (package / "records" / "full").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("A = 1\n")
    (package / "b.py").write_text("from fakekit import c\nRECORDS = 'records'\n")
    (package / "c.py").write_text("C = 3\n")
    (package / "records" / "full" / "run.json").write_text("{}")
    pages = tmp_path / "book"
    pages.mkdir()
    (pages / "_config.yml").write_text(CONFIG)
    (pages / "_toc.yml").write_text("format: jb-book\nroot: one\nchapters:\n  - file: two\n")
    (pages / "one.md").write_text(_page("one", "a"))
    (pages / "two.md").write_text(_page("two", "b"))
    return tmp_path


def _build(root: Path, **env: str) -> list[str]:
    """Build the book and return the pages that executed."""
    log = root / "executed.log"
    log.write_text("")
    environ = {**os.environ, "PYTHONPATH": str(root / "pkgs"), "EXEC_LOG": str(log),
               "D2LKIT_PROFILE": "quick", **env}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(root / "book")],
        env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return sorted(log.read_text().split())


def test_static_imports_and_their_closure(book, monkeypatch):
    monkeypatch.syspath_prepend(str(book / "pkgs"))
    modules = package_modules("fakekit")
    assert imported_names("from fakekit import b\n%matplotlib inline") == {"fakekit", "fakekit.b"}
    assert closure({"fakekit.b"}, modules) == {"fakekit", "fakekit.b", "fakekit.c"}
    assert closure({"fakekit.a", "os"}, modules) == {"fakekit", "fakekit.a"}
    with pytest.raises(ValueError, match="'nokit' is not an importable package"):
        package_modules("nokit")


def test_rebuild_executes_exactly_the_stale_pages(book):
    assert _build(book) == ["one", "two"]
    assert _build(book) == []                                   # nothing changed
    (book / "pkgs" / "fakekit" / "c.py").write_text("C = 4\n")  # imported by b only
    assert _build(book) == ["two"]
    (book / "pkgs" / "fakekit" / "records" / "full" / "run.json").write_text('{"new": 1}')
    assert _build(book) == ["two"]                              # b names the records folder
    assert _build(book, D2LKIT_PROFILE="full") == ["one", "two"]
    assert _build(book, D2LKIT_PROFILE="full") == []
