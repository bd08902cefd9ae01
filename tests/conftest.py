"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """Point the data lookup at empty temporary directories (no mirror, no system dirs)."""
    monkeypatch.setenv("D2LKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LKIT_DATA_MIRROR", str(tmp_path / "mirror"))
    (tmp_path / "mirror").mkdir()
    return tmp_path
