"""Checks of arguments shared across the package: each refuses a bad value with an exception
naming the argument, what was expected and what came."""

from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy as np

# The dtypes a layer computes in.
LAYER_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def boolean(value, name: str) -> bool:
    """``value`` as a bool, refusing anything but ``bool`` and ``np.bool_`` (as PyTorch does):
    ``bool("False")`` is True, so converting would silently invert a flag given as text."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value}")
    return int(value)


def probability(value, name: str) -> float:
    """A rate in [0, 1) (dropout, zoneout)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {value!r}")
    return float(value)


def real_number(value, name: str, expected: str, accept: Callable[[float], bool]) -> float:
    """A finite real number that ``accept``s; ``expected`` says which, for the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or not accept(value):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def one_of(value, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def layer_dtype(value) -> np.dtype:
    """``"float32"`` or ``"float64"`` (or their NumPy types) as the canonical, native-order dtype
    object the core's checks expect."""
    try:
        dtype = np.dtype(np.dtype(value).name)
    except TypeError:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {value!r}") from None
    if dtype not in LAYER_DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype}")
    return dtype


def as_array(value, name: str, hint: str = "") -> np.ndarray:
    """``value`` (array-like or torch tensor) as an ndarray; ``hint`` follows the message when
    its nested sequences do not form one array."""
    try:
        return np.asarray(value.detach() if hasattr(value, "detach") else value)
    except ValueError as error:  # NumPy's "inhomogeneous shape": nested lists of unequal lengths
        raise ValueError(f"{name}: expected an array, got nested sequences of different lengths "
                         f"({error}){hint}") from None


def as_numeric_array(value, name: str, dtype) -> np.ndarray:
    """Converts ``value`` to a C-contiguous array of ``dtype`` (a copy only where needed)."""
    array = as_array(value, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)
