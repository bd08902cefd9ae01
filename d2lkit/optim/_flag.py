"""The validator of on/off hyperparameters shared by the optimizers of today."""

from __future__ import annotations


def flag(name: str, value: object) -> bool:
    """Return ``value`` if it is a ``bool``, else raise a TypeError naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"Invalid {name}: {value!r} (expected True or False)")
    return value
