"""Run the book's benchmarks, print them against the targets, write ``d2lkit/records/results.json``.

Run from the repository root (about ten minutes on a 2-core CPU; keep the machine idle)::

    python -m benchmarks.run                  # build (quick profile) and LeNet throughput
    python -m benchmarks.run --only train     # one part; the JSON keeps the other parts
    python -m benchmarks.run --only full      # the full profile's build, on any device

On a machine with a GPU it also measures the LeNet comparison with the data on the GPU and a
cold build of the full profile, which is the only build measured against the GPU target. The page
*How fast is this book?* shows the JSON file.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks import build, train_throughput
from benchmarks.machine import machine_info
from d2lkit.report import RECORDS, format_table

# Package data, read by d2lkit.report.recorded("results", ...) in the performance chapter.
RESULTS = build.ROOT / "d2lkit" / RECORDS / "results.json"

# The targets of the book's performance issue (seconds, or a factor).
COLD_BUILD_S = 360.0
NOOP_REBUILD_S = 30.0
NBVAL_FACTOR = 1.1
LENET_SPEEDUP = 2.5
FULL_BUILD_S = 600.0
FULL_BUILD_CPU_S = 1200.0


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each target of the book: what, measured, limit, met.

    A target that ``results`` did not measure has ``measured`` and ``met`` set to None; only the
    GPU target can be in that state, since ``python -m benchmarks.run`` measures all the others.
    """
    rows: list[dict[str, Any]] = []

    def add(
        what: str, measured: float | None, limit: float, unit: str, at_most: bool = True
    ) -> None:
        met = None if measured is None else measured <= limit if at_most else measured >= limit
        rows.append({"what": what, "measured": measured, "limit": limit, "unit": unit,
                     "at_most": at_most, "met": met})

    if "build" in results:
        b = results["build"]
        add("cold build, quick profile", b["cold_s"], COLD_BUILD_S, "s")
        add("rebuild with no change", b["noop_s"], NOOP_REBUILD_S, "s")
        if "nbval" in b:
            add("nbval / build execution time", b["nbval"]["s"] / b["execution_s"],
                NBVAL_FACTOR, "x")
    if "train" in results:
        add("LeNet epoch, d2lkit vs seeds' loop (CPU)", results["train"]["speedup"],
            LENET_SPEEDUP, "x", at_most=False)
    add("cold build, full profile (2-core CPU)", latest_full_build(results, "cpu"),
        FULL_BUILD_CPU_S, "s")
    add("cold build, full profile (GPU)", latest_full_build(results, "cuda"), FULL_BUILD_S, "s")
    return rows


def latest_full_build(results: dict[str, Any], device: str) -> float | None:
    """Return the seconds of the latest cold full-profile build on ``device``, or None.

    Two records hold one: ``build_full`` (``--only full``) and ``publish_full`` (the build step of
    ``python -m benchmarks.publish``, which builds from a clean ``_build`` when run as documented).
    """
    found = []
    if results.get("build_full", {}).get("machine", {}).get("device") == device:
        found.append((results["build_full"]["date"], results["build_full"]["cold_s"]))
    publish = results.get("publish_full", {})
    if publish.get("machine", {}).get("device") == device and "build" in publish.get("steps", {}):
        found.append((publish["date"], publish["steps"]["build"]))
    return max(found)[1] if found else None


def format_targets(rows: Sequence[dict[str, Any]]) -> str:
    """Return the targets as a plain-text table."""
    verdicts = {True: "met", False: "MISSED", None: "not measured"}
    table = [[r["what"], "-" if r["measured"] is None else f"{r['measured']:.2f} {r['unit']}",
              f"{'<=' if r['at_most'] else '>='} {r['limit']:g} {r['unit']}",
              verdicts[r["met"]]] for r in rows]
    return format_table(table, ["target", "measured", "limit", ""])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the chosen benchmarks, merge them into the JSON file, print everything."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=build.ROOT, help="repository root to build")
    parser.add_argument("--json", type=Path, default=RESULTS, help="results file to update")
    parser.add_argument("--only", choices=["build", "train", "full"],
                        help="run one part only ('full': the full profile's build)")
    parser.add_argument("--epochs", type=int, default=3, help="LeNet epochs per loop")
    args = parser.parse_args(argv)

    results: dict[str, Any] = json.loads(args.json.read_text()) if args.json.exists() else {}
    cuda = torch.cuda.is_available()
    cpu = torch.device("cpu")
    if args.only in (None, "train"):
        results["train"] = train_throughput.measure(args.epochs, device=cpu)
        print(train_throughput.report(results["train"]), end="\n\n")
        if cuda:
            results["train_gpu"] = train_throughput.measure(args.epochs,
                                                            device=torch.device("cuda"))
            print(train_throughput.report(results["train_gpu"]), end="\n\n")
    if args.only in (None, "build"):
        results["build"] = build.measure(args.repo, profile="quick")
        results["build"]["machine"] = machine_info(cpu)
        print(build.report(results["build"]), end="\n\n")
    if args.only == "full" or (args.only is None and cuda):
        device = torch.device("cuda") if cuda else cpu
        results["build_full"] = build.measure(args.repo, profile="full", nbval=False)
        results["build_full"]["machine"] = machine_info(device)
        print(build.report(results["build_full"]), end="\n\n")
    results["targets"] = targets(results)
    print(format_targets(results["targets"]))
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written to {args.json}")
    return results


if __name__ == "__main__":
    main()
