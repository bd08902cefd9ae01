"""Sphinx extension: the execution cache also sees what a page imports.

myst-nb's cache keys a notebook on its code cells only, so after a change to ``d2lkit`` (or to a
record the package ships, or a switch of ``D2LKIT_PROFILE``) a rebuild would serve stale outputs.
Before Sphinx decides which pages to read, this extension computes for every notebook page a key
from

* the source of every module of the tracked packages (``d2lkit``) that the page imports, directly
  or through other modules (found statically from the ``import`` statements),
* the data files inside those packages (the records that pages print) — a data file belongs to
  the modules whose source names one of the folders it lies in,
* the build profile (``d2lkit.device.profile()``) and the torch version,

and compares it with the key stored by the last successful build. A page whose key changed loses
its cache record and is read again, so myst-nb executes it; a page whose key did not change is
left alone. The keys live inside the execution cache folder, so cleaning the cache removes them.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jupyter_cache import get_cache
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

KEYS_FILE = "d2lkit_exec_deps.json"
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def package_modules(package: str) -> dict[str, Path]:
    """Return ``{module name: source file}`` for every module of an importable package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"d2lkit_exec_deps_packages: {package!r} is not an importable package")
    root = Path(next(iter(spec.submodule_search_locations)))
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(source: str) -> set[str]:
    """Return the dotted names that ``source`` imports (``from a import b`` gives ``a`` and
    ``a.b``); code that does not parse (IPython magics) is scanned line by line."""
    try:
        trees = [ast.parse(source)]
    except SyntaxError:
        trees = []
        for line in source.splitlines():
            try:
                trees.append(ast.parse(line.strip()))
            except SyntaxError:
                continue
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def closure(names: Iterable[str], modules: dict[str, Path]) -> set[str]:
    """Return the tracked modules that importing ``names`` loads: each one found, its parent
    packages, and, transitively, what their sources import."""
    todo = [name for name in names if name in modules]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(n for n in imported_names(modules[name].read_text()) if n in modules)
    return seen


def data_files(modules: dict[str, Path], used: set[str]) -> list[Path]:
    """Return the non-Python files of the packages that the modules in ``used`` read: a file
    belongs to a module whose source names a folder the file lies in."""
    roots = {modules[name].parent for name in modules if "." not in name}
    files = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix in {".py", ".pyc"}:
                continue
            folders = path.relative_to(root).parent.parts
            if any(f in modules[name].read_text() for f in folders for name in used):
                files.append(path)
    return files


def page_key(source: str, modules: dict[str, Path], environment: str) -> str:
    """Return the dependency key of a MyST notebook page."""
    names: set[str] = set()
    for cell in CODE_CELL.findall(source):
        names |= imported_names("\n".join(ln for ln in cell.splitlines() if not ln.startswith(":")))
    used = closure(names, modules)
    digest = hashlib.sha256(environment.encode())
    for name in sorted(used):
        digest.update(name.encode() + b"\0" + modules[name].read_bytes())
    for path in data_files(modules, used):
        digest.update(str(path.name).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_environment() -> str:
    """Return what every page's outputs depend on besides its imports: profile and torch."""
    import torch

    from d2lkit.device import profile

    return f"profile={profile()} torch={torch.__version__}"


def _keys_path(app: Sphinx) -> Path:
    return Path(app.env.mystnb_config.execution_cache_path) / KEYS_FILE


def _page_keys(app: Sphinx, env: BuildEnvironment) -> dict[str, str]:
    modules: dict[str, Path] = {}
    for package in app.config.d2lkit_exec_deps_packages:
        modules.update(package_modules(package))
    environment = build_environment()
    keys = {}
    for docname in sorted(env.found_docs):
        path = Path(env.doc2path(docname))
        if path.suffix == ".md" and "```{code-cell}" in (text := path.read_text()):
            keys[docname] = page_key(text, modules, environment)
    return keys


def _outdated(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    if env.mystnb_config.execution_mode != "cache":
        return []
    keys = _page_keys(app, env)
    path = _keys_path(app)
    stored = json.loads(path.read_text()) if path.is_file() else {}
    stale = sorted(d for d, key in keys.items() if stored.get(d) != key and d not in added)
    if stale:
        cache = get_cache(env.mystnb_config.execution_cache_path)
        sources = {str(Path(env.doc2path(d))) for d in stale}
        for record in cache.list_cache_records():
            if record.uri in sources:
                cache.remove_cache(record.pk)
        logger.info(f"[exec_deps] dependencies changed, re-executing: {', '.join(stale)}")
    app.env.d2lkit_exec_deps_keys = keys
    return [d for d in stale if d not in changed]


def _store(app: Sphinx, exception: Exception | None) -> None:
    keys = getattr(app.env, "d2lkit_exec_deps_keys", None)
    if exception is not None or keys is None:
        return
    path = _keys_path(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys, indent=1, sort_keys=True))


def setup(app: Sphinx) -> dict[str, Any]:
    """Invalidate the execution cache of pages whose imports, profile or torch changed."""
    app.add_config_value("d2lkit_exec_deps_packages", ["d2lkit"], "env")
    app.connect("env-get-outdated", _outdated)
    app.connect("build-finished", _store)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
