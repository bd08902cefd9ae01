"""How many bytes an optimizer's state takes."""

from __future__ import annotations

from typing import Any

from torch import Tensor


def state_bytes(state: Any) -> int:
    """Return the bytes held by the tensors in ``state`` (nested tuples and lists walked).

    Numbers in the state (a step count, a running weight) count as nothing: they are per
    optimizer, not per parameter.
    """
    if isinstance(state, Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, (tuple, list)):
        return sum(state_bytes(s) for s in state)
    return 0
