"""The D2LKIT_* environment variables are parsed strictly, in d2lkit.env only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from d2lkit import device, env
from d2lkit.plot import _live_frontend

PACKAGE = Path(env.__file__).parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in env.VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_unset_or_empty_means_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for value in (None, "", "  "):
        if value is not None:
            for name in env.VARIABLES:
                monkeypatch.setenv(name, value)
        assert env.profile() is None and env.live_plots() is None
        assert env.data_mirror() is None
        assert env.cache() == tmp_path / ".cache" / "d2lkit"
        assert env.download_timeout() == env.DEFAULT_DOWNLOAD_TIMEOUT


def _refused(monkeypatch, name: str, value: str, getter, *accepted: str) -> str:
    monkeypatch.setenv(name, value)
    with pytest.raises(env.EnvError) as info:
        getter()
    message = str(info.value)
    assert message.startswith(f"Invalid {name}={value.strip()!r}: expected ")
    for word in accepted:
        assert word in message
    assert f"unset {name}" in message
    return message


@pytest.mark.parametrize(("value", "expected"), [("quick", "quick"), (" FULL ", "full")])
def test_profile(monkeypatch, value, expected):
    monkeypatch.setenv("D2LKIT_PROFILE", value)
    assert env.profile() == expected and device.profile() == expected


@pytest.mark.parametrize("value", ["fast", "quick,full", "0"])
def test_unknown_profile_is_refused(monkeypatch, value):
    _refused(monkeypatch, "D2LKIT_PROFILE", value, device.profile, "'quick'", "'full'")


def test_profile_error_is_a_value_error(monkeypatch):
    monkeypatch.setenv("D2LKIT_PROFILE", "fast")
    with pytest.raises(ValueError, match="D2LKIT_PROFILE='fast'"):
        device.profile()


def test_live_plots(monkeypatch):
    monkeypatch.setenv("D2LKIT_LIVE_PLOTS", "1")
    assert env.live_plots() is True and _live_frontend()
    monkeypatch.setenv("D2LKIT_LIVE_PLOTS", " 0")
    assert env.live_plots() is False and not _live_frontend()
    monkeypatch.delenv("D2LKIT_LIVE_PLOTS")
    assert env.live_plots() is None
    assert not _live_frontend() and not env.interactive_kernel()  # no kernel: nobody watches


@pytest.mark.parametrize("value", ["yes", "true", "maybe", "on", "2", "False"])
def test_unknown_live_plots_value_is_refused(monkeypatch, value):
    _refused(monkeypatch, "D2LKIT_LIVE_PLOTS", value, _live_frontend, "'1'", "'0'")


def test_data_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LKIT_DATA_MIRROR", str(tmp_path))
    assert env.data_mirror() == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path.parent))
    monkeypatch.setenv("D2LKIT_DATA_MIRROR", f"~/{tmp_path.name}")
    assert env.data_mirror() == tmp_path


def test_bad_data_mirror_is_refused(monkeypatch, tmp_path):
    missing = _refused(monkeypatch, "D2LKIT_DATA_MIRROR", str(tmp_path / "typo"),
                       env.data_mirror, "an existing directory")
    assert f"there is nothing at {tmp_path / 'typo'}" in missing
    (tmp_path / "file").write_text("x")
    a_file = _refused(monkeypatch, "D2LKIT_DATA_MIRROR", str(tmp_path / "file"),
                      env.data_mirror, "an existing directory")
    assert "there is a file at" in a_file
    relative = _refused(monkeypatch, "D2LKIT_DATA_MIRROR", "shared/data", env.data_mirror,
                        "an absolute path")
    assert str(Path.cwd() / "shared/data") in relative


def test_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LKIT_CACHE", str(tmp_path / "not yet"))
    assert env.cache() == tmp_path / "not yet"
    (tmp_path / "file").write_text("x")
    _refused(monkeypatch, "D2LKIT_CACHE", str(tmp_path / "file"), env.cache, "a directory")
    _refused(monkeypatch, "D2LKIT_CACHE", ".cache", env.cache, "an absolute path")


@pytest.mark.parametrize(("value", "seconds"), [("600", 600.0), ("2.5", 2.5), (" 1e-3 ", 1e-3)])
def test_download_timeout(monkeypatch, value, seconds):
    monkeypatch.setenv("D2LKIT_DOWNLOAD_TIMEOUT", value)
    assert env.download_timeout() == seconds


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "1e999", "10s", "ten"])
def test_bad_download_timeout_is_refused(monkeypatch, value):
    _refused(monkeypatch, "D2LKIT_DOWNLOAD_TIMEOUT", value, env.download_timeout,
             "a number of seconds > 0")


def test_data_lookup_reads_the_variables_strictly(monkeypatch, tmp_path):
    from d2lkit import data

    monkeypatch.setenv("D2LKIT_DATA_MIRROR", str(tmp_path / "typo"))
    with pytest.raises(env.EnvError, match="D2LKIT_DATA_MIRROR"):
        data.fetch(data.AIRFOIL)


def test_every_variable_is_read_through_env_only():
    """Each D2LKIT_* name in the package is one of env.VARIABLES, and only env.py reads them."""
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        names = set(re.findall(r"D2LKIT_[A-Z_]+", text))
        assert names <= set(env.VARIABLES), f"{path.name} uses {names - set(env.VARIABLES)}"
        if path.name != "env.py":
            reads = re.findall(r"(?:environ(?:\.get)?\(?\[?|getenv\()\s*[\"']D2LKIT_", text)
            assert not reads, f"{path} reads a D2LKIT_* variable itself: use d2lkit.env"
