"""Build times of the book: cold build, rebuild with no change, rebuild after one edit, nbval.

Everything happens in a temporary copy of the repository (never in its own ``_build``): the
copy is built from scratch with ``jupyter-book build book``, rebuilt unchanged, rebuilt after one
chapter's last code cell gains a comment line (so myst-nb's cache re-executes that chapter
only), and finally checked with nbval as ``pytest`` does. The execution time of every chapter
comes from myst-nb's execution report (the same data as the page *About this build*).

Run from the repository root::

    python -m benchmarks.build                      # quick profile, the current repository
    python -m benchmarks.build --profile full       # the full profile (meant for a GPU)
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.machine import format_load, load_average
from d2lkit.report import format_table

ROOT = Path(__file__).resolve().parents[1]
IGNORED = ("_build", ".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache")
EDIT_MARK = "# edited by benchmarks/build.py"


def copy_repo(src: Path, dst: Path) -> Path:
    """Copy the repository ``src`` to ``dst`` without build outputs, caches or git data."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
    return dst


def build_env(repo: Path, profile: str) -> dict[str, str]:
    """Return the environment of a build of ``repo``: its own d2lkit first, the given profile."""
    env = os.environ.copy()
    env["D2LKIT_PROFILE"] = profile
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    return env


def jupyter_book() -> str:
    """Return the ``jupyter-book`` executable of this Python environment."""
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else (shutil.which("jupyter-book") or "jupyter-book")


def run_timed(
    cmd: Sequence[str], cwd: Path, env: dict[str, str], capture: bool = True
) -> tuple[float, str]:
    """Run ``cmd``; return its wall-clock seconds and the end of its output, raise if it fails.

    With ``capture=False`` the output goes to this process's terminal as it comes (and the
    returned output is empty).
    """
    tik = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=capture, text=True)
    seconds = time.perf_counter() - tik
    output = ((proc.stdout or "") + (proc.stderr or ""))[-4000:]
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
    return seconds, output


def nbval_command(cell_timeout: int = 600) -> list[str]:
    """Return the command that re-executes the build's notebooks with nbval, as ``pytest`` does.

    It compares every output with the build's through ``.ci/nbval_sanitize.cfg``; a cell may run
    for ``cell_timeout`` seconds.
    """
    return [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q",
            "--nbval", "--nbval-sanitize-with", ".ci/nbval_sanitize.cfg",
            "--nbval-cell-timeout", str(cell_timeout), "_build/jupyter_execute"]


def exec_report(repo: Path) -> dict[str, dict[str, Any]]:
    """Return myst-nb's execution data per page (runtime, method, mtime) of ``repo``'s build."""
    env_file = repo / "_build" / ".doctrees" / "environment.pickle"
    env = pickle.loads(env_file.read_bytes())
    return {doc: dict(meta["exec_data"]) for doc, meta in env.nb_metadata.items()
            if meta.get("exec_data")}


def executed_between(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> list[str]:
    """Return the pages that ran between two execution reports (a new execution time stamp)."""
    return sorted(doc for doc, run in after.items()
                  if doc not in before or run.get("mtime") != before[doc].get("mtime"))


def edit_last_code_cell(chapter: Path, mark: str = EDIT_MARK) -> None:
    """Append the comment ``mark`` to the last code cell of a MyST notebook ``chapter``."""
    lines = chapter.read_text().splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("```{code-cell}")]
    if not starts:
        raise ValueError(f"No code cell in {chapter}")
    end = next(i for i in range(starts[-1] + 1, len(lines)) if re.match(r"^```\s*$", lines[i]))
    lines.insert(end, mark + "\n")
    chapter.write_text("".join(lines))


def median_chapter(report: dict[str, dict[str, Any]]) -> str:
    """Return the page whose execution time is the median of ``report`` (a typical edit)."""
    ranked = sorted(report, key=lambda doc: report[doc]["runtime"] or 0.0)
    return ranked[len(ranked) // 2]


def measure(
    repo: Path = ROOT,
    workdir: Path | None = None,
    profile: str = "quick",
    edit: str | None = None,
    nbval: bool = True,
) -> dict[str, Any]:
    """Time a cold build, a no-change rebuild, a one-edit rebuild and nbval of a copy of repo."""
    owned = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="d2lkit-bench-")) if owned else Path(workdir)
    copy = copy_repo(Path(repo), workdir / "repo")
    env = build_env(copy, profile)
    build = [jupyter_book(), "build", "book"]
    load_before = load_average()
    date = time.strftime("%Y-%m-%d %H:%M")
    try:
        cold_s, _ = run_timed(build, copy, env)
        cold = exec_report(copy)
        noop_s, _ = run_timed(build, copy, env)
        noop = exec_report(copy)
        edit = edit or median_chapter(cold)
        edit_last_code_cell(copy / "book" / f"{edit}.md")
        edit_s, _ = run_timed(build, copy, env)
        results: dict[str, Any] = {
            "date": date,
            "profile": profile,
            "cold_s": cold_s,
            "noop_s": noop_s,
            "noop_executed": executed_between(cold, noop),
            "edit": {"chapter": edit, "s": edit_s,
                     "executed": executed_between(noop, exec_report(copy))},
            "execution_s": sum(run["runtime"] or 0.0 for run in cold.values()),
            "cold_executed": executed_between({}, cold),
            "chapters": sorted(({"name": doc, "runtime_s": run["runtime"]}
                                for doc, run in cold.items()), key=lambda c: -c["runtime_s"]),
        }
        if nbval:
            nbval_s, output = run_timed(nbval_command(), copy, env)
            summary = output.strip().splitlines()[-1] if output.strip() else ""
            results["nbval"] = {"s": nbval_s, "summary": summary.strip("= ")}
        results["load_average"] = [load_before, load_average()]
        return results
    finally:
        if owned:
            shutil.rmtree(workdir, ignore_errors=True)


def report(results: dict[str, Any]) -> str:
    """Return the build results as plain-text tables."""
    rows = [
        ["cold build", f"{results['cold_s']:.1f}", ", ".join(results["cold_executed"])],
        ["rebuild, no change", f"{results['noop_s']:.1f}",
         ", ".join(results["noop_executed"]) or "none"],
        [f"rebuild, {results['edit']['chapter']} edited", f"{results['edit']['s']:.1f}",
         ", ".join(results["edit"]["executed"]) or "none"],
        ["execution (sum over pages)", f"{results['execution_s']:.1f}", ""],
    ]
    if "nbval" in results:
        rows.append(["nbval", f"{results['nbval']['s']:.1f}", results["nbval"]["summary"]])
    chapters = [[c["name"], f"{c['runtime_s']:.1f}"] for c in results["chapters"]]
    return "\n".join([
        f"Build of the book, {results['profile']} profile, {results['date']}, load average "
        + format_load(results["load_average"]),
        format_table(rows, ["step", "seconds", "pages executed"]),
        "execution time per page (cold build):",
        format_table(chapters, ["page", "seconds"]),
    ])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the command line, run the build benchmark, print the tables, return the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="repository root to copy")
    parser.add_argument("--workdir", type=Path, help="build here (kept) instead of a temp dir")
    parser.add_argument("--profile", choices=["quick", "full"], default="quick")
    parser.add_argument("--edit", help="chapter to edit (default: the median by run time)")
    parser.add_argument("--no-nbval", action="store_true")
    args = parser.parse_args(argv)
    results = measure(args.repo, args.workdir, args.profile, args.edit, not args.no_nbval)
    print(report(results))
    return results


if __name__ == "__main__":
    main()
