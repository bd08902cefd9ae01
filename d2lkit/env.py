"""The ``D2LKIT_*`` environment variables, each parsed strictly, in this one place.

An unset or empty variable means its default. Any other value must be one the variable accepts;
otherwise the function reading it raises :class:`EnvError`, which names the variable, the value
and the accepted values (a typo never silently means the default). Surrounding whitespace is
ignored; the words of ``D2LKIT_PROFILE`` are case-insensitive.

=========================== ==============================================================
variable                    accepted values (default)
=========================== ==============================================================
``D2LKIT_PROFILE``          ``quick`` or ``full`` (by device: ``full`` on CUDA)
``D2LKIT_LIVE_PLOTS``       ``1`` (live plots) or ``0`` (one figure at the end)
                            (live only in an interactive Jupyter front end)
``D2LKIT_DATA_MIRROR``      an absolute path of an existing directory (no mirror)
``D2LKIT_CACHE``            an absolute path, a directory if it exists (``~/.cache/d2lkit``)
``D2LKIT_DOWNLOAD_TIMEOUT`` seconds a whole download may take, a number > 0 (600)
=========================== ==============================================================

A path may start with ``~`` (the home directory). A relative path is refused: chapters run with
the ``book/`` folder as working directory and tests with the repository root, so it would name
two different places.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

PROFILE = "D2LKIT_PROFILE"
LIVE_PLOTS = "D2LKIT_LIVE_PLOTS"
DATA_MIRROR = "D2LKIT_DATA_MIRROR"
CACHE = "D2LKIT_CACHE"
DOWNLOAD_TIMEOUT = "D2LKIT_DOWNLOAD_TIMEOUT"

VARIABLES = (PROFILE, LIVE_PLOTS, DATA_MIRROR, CACHE, DOWNLOAD_TIMEOUT)
"""Every variable d2lkit reads."""

PROFILES = ("quick", "full")
DEFAULT_DOWNLOAD_TIMEOUT = 600.0


class EnvError(ValueError):
    """A ``D2LKIT_*`` environment variable holds a value d2lkit does not accept."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _invalid(name: str, value: str, expected: str) -> EnvError:
    return EnvError(
        f"Invalid {name}={value!r}: expected {expected}. Fix the value, or unset it "
        f"(`unset {name}`) to use the default."
    )


def profile() -> str | None:
    """Return ``$D2LKIT_PROFILE`` (``'quick'`` or ``'full'``), or None when it is not set."""
    value = _raw(PROFILE)
    if value is None:
        return None
    if value.lower() not in PROFILES:
        raise _invalid(PROFILE, value, " or ".join(repr(p) for p in PROFILES))
    return value.lower()


def live_plots() -> bool | None:
    """Return ``$D2LKIT_LIVE_PLOTS`` as a bool (``1``: True, ``0``: False), or None when not set."""
    value = _raw(LIVE_PLOTS)
    if value is None:
        return None
    if value not in ("0", "1"):
        raise _invalid(LIVE_PLOTS, value, "'1' (live plots) or '0' (one figure at the end)")
    return value == "1"


def _absolute(name: str, value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise _invalid(name, value, f"an absolute path (for example {Path.cwd() / value})")
    return path


def data_mirror() -> Path | None:
    """Return ``$D2LKIT_DATA_MIRROR``, an existing directory, or None when it is not set."""
    value = _raw(DATA_MIRROR)
    if value is None:
        return None
    path = _absolute(DATA_MIRROR, value)
    if not path.is_dir():
        what = "a file" if path.exists() else "nothing"
        raise _invalid(DATA_MIRROR, value, f"an existing directory (there is {what} at {path})")
    return path


def cache() -> Path:
    """Return ``$D2LKIT_CACHE``, else ``~/.cache/d2lkit``; it may not exist yet."""
    value = _raw(CACHE)
    if value is None:
        return Path.home() / ".cache" / "d2lkit"
    path = _absolute(CACHE, value)
    if path.exists() and not path.is_dir():
        raise _invalid(CACHE, value, f"a directory (there is a file at {path})")
    return path


def download_timeout() -> float:
    """Return ``$D2LKIT_DOWNLOAD_TIMEOUT``: the seconds a whole download may take (default 600)."""
    value = _raw(DOWNLOAD_TIMEOUT)
    if value is None:
        return DEFAULT_DOWNLOAD_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise _invalid(DOWNLOAD_TIMEOUT, value, "a number of seconds > 0, such as 600 or 2.5")
    return seconds


def interactive_kernel() -> bool:
    """Return whether code runs in a Jupyter kernel that a person watches.

    Batch executors (myst-nb's nbclient, nbval) send execute requests with ``allow_stdin=False``;
    interactive front ends allow stdin.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel: Any = getattr(get_ipython(), "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))
