"""The publishing command: its steps, its profile guard, and the line every page starts with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks are scripts of the repository, not installed

from benchmarks import build, publish  # noqa: E402
from d2lkit import PUBLISHED_URL, RunInfo  # noqa: E402


def test_steps_build_then_nbval_with_the_build_timeout_then_browser_test():
    names, commands = zip(*publish.steps(ROOT))
    assert names == ("build", "nbval", "browser test")
    assert commands[0][1:] == ["build", "book"]
    timeout = publish.cell_timeout(ROOT)
    assert timeout >= 1800  # the full profile's longest cell runs for minutes
    assert commands[1] == build.nbval_command(timeout)
    assert commands[1][-1] == "_build/jupyter_execute" and "--nbval" in commands[1]
    assert commands[2][-1] == "tests/test_site.py"


def test_bad_profile_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="'fast'"):
        publish.publish(tmp_path, "fast")


def test_readme_documents_the_publishing_command():
    readme = (ROOT / "README.md").read_text()
    assert "python -m benchmarks.publish" in readme


def test_quick_pages_say_where_the_full_scale_runs_are():
    cpu = torch.device("cpu")
    quick, full = str(RunInfo("quick", cpu, "2.13.0")), str(RunInfo("full", cpu, "2.13.0"))
    assert quick.startswith("profile: quick | device: cpu | torch 2.13.0")
    assert PUBLISHED_URL in quick and "full profile" in quick
    assert full.startswith("profile: full") and PUBLISHED_URL not in full
