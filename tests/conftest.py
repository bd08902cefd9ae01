"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def myst_notebook(title: str, code: str) -> str:
    """Return a one-cell MyST Markdown notebook page, as the build executes them."""
    return (
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n"
        f"# {title}\n\n```{{code-cell}} ipython3\n{code}\n```\n"
    )


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """Point the data lookup at empty temporary directories (no mirror, no system dirs)."""
    monkeypatch.setenv("D2LKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LKIT_DATA_MIRROR", str(tmp_path / "mirror"))
    (tmp_path / "mirror").mkdir()
    return tmp_path
