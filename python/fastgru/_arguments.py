"""Checks of arguments shared across the package."""

from __future__ import annotations

import numpy as np


def boolean(value, name: str) -> bool:
    """``value`` as a bool, refusing anything but ``bool`` and ``np.bool_`` (as PyTorch does):
    ``bool("False")`` is True, so converting would silently invert a flag given as text."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)
