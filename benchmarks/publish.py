"""Build the site exactly as it is published: the full profile, then nbval, then the browser test.

The GitHub Pages workflow runs this command and deploys ``_build/html`` only if it succeeds, so
what readers see is what nbval and the browser test checked. Run from the repository root (with
``D2LKIT_DATA_MIRROR`` set as for a build, and Chromium installed for the browser test)::

    python -m benchmarks.publish                    # the published site, in ./_build
    python -m benchmarks.publish --profile quick    # the same three steps on the quick profile

The three steps are the README's: ``jupyter-book build book`` with ``D2LKIT_PROFILE`` set,
nbval over ``_build/jupyter_execute`` (the command of ``benchmarks.build``, with the cell timeout
of ``_config.yml``, since the full profile's longest cell runs for minutes), and
``pytest tests/test_site.py``. A cache built in another profile needs no cleaning: the build's
``exec_deps`` extension re-executes every chapter whose profile changed. The time of each step is
printed and merged into d2lkit's records (key ``publish_<profile>``) beside the other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks import build
from benchmarks.machine import format_load, load_average, machine_info
from benchmarks.run import RESULTS, targets
from d2lkit.report import format_table


def cell_timeout(repo: Path) -> int:
    """Return the build's cell timeout in seconds (``execute.timeout`` of ``_config.yml``)."""
    config = yaml.safe_load((repo / "_config.yml").read_text())
    return int(config["execute"]["timeout"])


def steps(repo: Path) -> list[tuple[str, list[str]]]:
    """Return the publishing steps of ``repo`` in order, each as (name, command)."""
    return [
        ("build", [build.jupyter_book(), "build", "book"]),
        ("nbval", build.nbval_command(cell_timeout(repo))),
        ("browser test", [sys.executable, "-m", "pytest", "-o", "addopts=", "-p",
                          "no:cacheprovider", "-q", "tests/test_site.py"]),
    ]


def publish(repo: Path = build.ROOT, profile: str = "full") -> dict[str, Any]:
    """Run the publishing steps in ``repo``; return the seconds of each, raise if one fails."""
    if profile not in ("quick", "full"):
        raise ValueError(f"Invalid profile: {profile!r} (expected 'quick' or 'full')")
    env = build.build_env(repo, profile)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "profile": profile,
                               "machine": machine_info(device)}
    load_before = load_average()
    results["steps"] = {}
    for name, cmd in steps(repo):
        print(f"::: {name}: {' '.join(cmd)}", flush=True)
        results["steps"][name], _ = build.run_timed(cmd, repo, env, capture=False)
        if name == "build":  # what each page's execution took, as myst-nb measured it
            results["chapters"] = sorted(
                ({"name": doc, "runtime_s": run["runtime"]}
                 for doc, run in build.exec_report(repo).items() if run.get("runtime")),
                key=lambda chapter: -chapter["runtime_s"])
    results["total_s"] = sum(results["steps"].values())
    results["load_average"] = [load_before, load_average()]
    return results


def report(results: dict[str, Any]) -> str:
    """Return the step times as a plain-text table."""
    rows = [[name, f"{seconds:.0f}"] for name, seconds in results["steps"].items()]
    rows.append(["total", f"{results['total_s']:.0f}"])
    machine = results["machine"]
    return "\n".join([
        f"Published build, {results['profile']} profile, {results['date']}, on "
        f"{machine.get('gpu', machine['cpu'])} ({machine['cpu_cores']} cores), load average "
        + format_load(results["load_average"]),
        format_table(rows, ["step", "seconds"]),
        format_table([[c["name"], f"{c['runtime_s']:.1f}"] for c in results.get("chapters", [])],
                     ["page executed by the build", "seconds"]),
    ])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the command line, publish, print the times and merge them into the records."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["quick", "full"], default="full")
    parser.add_argument("--json", type=Path, default=RESULTS, help="records file to update")
    args = parser.parse_args(argv)
    results = publish(build.ROOT, args.profile)
    print(report(results))
    records = json.loads(args.json.read_text()) if args.json.exists() else {}
    records[f"publish_{args.profile}"] = results
    records["targets"] = targets(records)  # a full build on this machine may meet one now
    args.json.write_text(json.dumps(records, indent=1) + "\n")
    print(f"written to {args.json}")
    return results


if __name__ == "__main__":
    main()
