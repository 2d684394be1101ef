"""Runtime settings: the instruction set in use and the thread count."""

from __future__ import annotations

import numbers

from . import _core

__all__ = ["info", "set_num_threads", "get_num_threads"]


def set_num_threads(n: int) -> None:
    """Threads used by compute calls: n >= 1, or 0 to follow OpenMP (OMP_NUM_THREADS, threadpoolctl)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """The thread count compute calls use at most."""
    return _core.num_threads()


def info() -> dict:
    """Version, the instruction set new float32 layers use, those available, and the thread count.

    ``FASTGRU_ISA=avx2|scalar`` in the environment forces a lower instruction set.
    """
    from . import __version__

    return {
        "version": __version__,
        "isa": _core.active_isa(),
        "isas_available": list(_core.available_isas()),
        "threads": _core.num_threads(),
    }
