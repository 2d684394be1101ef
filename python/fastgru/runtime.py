"""Runtime settings: the instruction set in use and the thread count."""

from __future__ import annotations

import numbers
import os

from . import _core

__all__ = ["info", "set_num_threads", "get_num_threads"]


def set_num_threads(n: int) -> None:
    """Threads used by compute calls: n >= 1, or 0 to follow OpenMP (OMP_NUM_THREADS, threadpoolctl).

    Forked processes (``os.fork``, ``multiprocessing`` with the ``"fork"`` start method) work:
    the OpenMP runtime (libgomp) cannot restart in a child the thread pool that the forking thread
    may have started (by fastgru or any library sharing the runtime, such as PyTorch), so that
    thread's compute calls in the child run on one thread whatever ``n`` says (and
    :func:`get_num_threads` there returns 1). Threads the child starts use ``n``. For several
    threads per process, compute on a thread the child starts, or use the ``"spawn"`` or
    ``"forkserver"`` start method.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """The thread count compute calls from the calling thread use at most."""
    return _core.num_threads()


# _OPENMP (the specification's yyyymm) to its version number.
_OPENMP_VERSIONS = {201307: "4.0", 201511: "4.5", 201811: "5.0", 202011: "5.1", 202111: "5.2"}


def info() -> dict:
    """Version, the instruction set new float32 layers use, those available, the thread count,
    the OpenMP runtime in use (its library file) and the CMake package's directory.

    ``FASTGRU_ISA=avx2|scalar`` in the environment forces a lower instruction set.
    """
    from . import __version__
    from .embedding import get_cmake_dir

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
