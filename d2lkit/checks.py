"""Validators for hyperparameters: one place that decides what a bad value is and how to say so.

Every validator takes the parameter's name and its value, returns the value as a plain Python
``float`` or ``int``, and otherwise raises an error whose message starts with
``Invalid <name>: <repr(value)>`` and says what was expected:

- ``TypeError`` for a value of the wrong kind: a string, ``None``, a tensor, a ``bool`` where a
  number is meant, and a ``float`` where an integer is meant (``step_size=5.0`` is refused: a
  count is an ``int``, and silently truncating ``2.5`` would hide a mistake);
- ``ValueError`` for a number of the right kind out of range, ``nan`` and ``±inf`` included
  (no hyperparameter of this package means anything when infinite).

NumPy scalars count as numbers (``np.float32(0.1)``, ``np.int64(5)``); a tensor does not, even a
0-dim one: pass ``float(t)`` or ``int(t)``, so that a schedule never holds on to a graph or device.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


def _invalid(name: str, value: Any, expected: str) -> str:
    return f"Invalid {name}: {value!r} (expected {expected})"


def _kind(value: Any) -> str:
    return type(value).__name__


def real(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(_invalid(name, value, f"a real number, got a {_kind(value)}"))
    if not math.isfinite(value):
        raise ValueError(_invalid(name, value, "a finite number"))
    return float(value)


def in_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` in the interval from ``low`` to ``high``.

    ``low_open``/``high_open`` exclude the bound; ``None`` means unbounded on that side.
    """
    x = real(name, value)
    above = low is None or (x > low if low_open else x >= low)
    below = high is None or (x < high if high_open else x <= high)
    if not (above and below):
        lt, gt = ("<" if high_open else "<="), (">" if low_open else ">=")
        if high is None:
            expected = f"{name} {gt} {low:g}"
        elif low is None:
            expected = f"{name} {lt} {high:g}"
        else:
            expected = f"{low:g} {'<' if low_open else '<='} {name} {lt} {high:g}"
        raise ValueError(_invalid(name, value, expected))
    return x


def nonneg(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float >= 0``."""
    return in_range(name, value, 0.0)


def positive(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float > 0``."""
    return in_range(name, value, 0.0, low_open=True)


def unit(name: str, value: Any) -> float:
    """Return ``value`` as a ``float`` in ``[0, 1)`` (a decay rate such as momentum or beta)."""
    return in_range(name, value, 0.0, 1.0, high_open=True)


def integer(name: str, value: Any, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int >= minimum``; a ``float`` (even ``5.0``) or ``bool`` is not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(_invalid(name, value, f"an int, got a {_kind(value)}"))
    if minimum is not None and value < minimum:
        raise ValueError(_invalid(name, value, f"an integer {name} >= {minimum}"))
    return int(value)


def choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    options = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(_invalid(name, value, f"one of {options}, got a {_kind(value)}"))
    if value not in options:
        raise ValueError(_invalid(name, value, f"one of {options}"))
    return value


def flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool``, else raise a TypeError naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(_invalid(name, value, "True or False"))
    return value
