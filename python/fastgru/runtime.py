"""Runtime settings: the instruction set in use and the thread count."""

from __future__ import annotations

import numbers
import os

from . import _core
from ._version import __version__
from .linking import get_cmake_dir

__all__ = ["info", "set_num_threads", "get_num_threads"]


def set_num_threads(n: int) -> None:
    """The most threads a compute call uses: ``n >= 1``, or 0 (the default) for the CPUs this
    process may use (its affinity mask and its container's CPU quota), capped by OpenMP's setting
    (``OMP_NUM_THREADS``, threadpoolctl's ``user_api="openmp"`` limits).

    Each call uses fewer threads where its work does not pay for more (a small model, one step
    at B = 1), and drops to one thread for step loops while other processes keep the CPUs busy;
    the README's "Threads" section says how. The threads are fastgru's own: waiting, they spin
    briefly and then sleep, so an idle fastgru does not hold cores. Forked processes
    (``os.fork``, ``multiprocessing``'s ``"fork"``) compute on all their threads.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """The most threads compute calls from the calling thread use (see :func:`set_num_threads`)."""
    return _core.num_threads()


# _OPENMP (the specification's yyyymm) to its version number.
_OPENMP_VERSIONS = {201307: "4.0", 201511: "4.5", 201811: "5.0", 202011: "5.1", 202111: "5.2"}


def info() -> dict:
    """Version, the instruction set new float32 layers use, those available, the thread count,
    the OpenMP runtime in use (its library file) and the CMake package's directory.

    ``FASTGRU_ISA=avx2|scalar`` in the environment forces a lower instruction set.
    """
    library, openmp_date = _core.openmp_runtime()
    try:
        cmake_dir = get_cmake_dir()
    except FileNotFoundError:
        cmake_dir = "not installed"
    return {
        "version": __version__,
        "isa": _core.active_isa(),
        "isas_available": list(_core.available_isas()),
        "threads": _core.num_threads(),
        "openmp": f"{os.path.realpath(library)} (OpenMP {_OPENMP_VERSIONS.get(openmp_date, openmp_date)})",
        "cmake_dir": cmake_dir,
    }
