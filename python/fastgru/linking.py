"""Where the wheel keeps what C, C++ and Cython programs build against: the headers, the static
library and the CMake package (``find_package(fastgru CONFIG REQUIRED)``)."""

from __future__ import annotations

import os

__all__ = ["get_include", "get_library_dir", "get_cmake_dir"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _installed_dir(name: str) -> str:
    path = os.path.join(_PACKAGE_DIR, name)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"fastgru: expected the directory {path} (installed by `pip install fastgru`), "
                                "got none: this copy of the package was not installed by its build")
    return path


def get_include() -> str:
    """The directory holding ``fastgru/fastgru.h`` (the C API) and the C++ headers."""
    return _installed_dir("include")


def get_library_dir() -> str:
    """The directory holding the static library ``libfastgru.a`` (link it with the C++ runtime and OpenMP)."""
    return _installed_dir("lib")


def get_cmake_dir() -> str:
    """The directory to hand to CMake as ``-Dfastgru_DIR=...`` (or to put on ``CMAKE_PREFIX_PATH``)."""
    return _installed_dir("cmake")
