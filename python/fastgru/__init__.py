"""fastgru: fast GRU forward and backpropagation through time on CPUs.

The layer is :class:`GRU`; :mod:`fastgru.reference` is the NumPy definition of what it computes.
"""

from . import reference
from .embedding import get_cmake_dir, get_include, get_library_dir
from .gru import GRU, MGU
from .interop import flip_update_gate, load
from .runtime import get_num_threads, info, set_num_threads

__version__ = "0.1.0"

__all__ = ["GRU", "MGU", "load", "flip_update_gate", "reference", "info", "set_num_threads", "get_num_threads",
           "get_include", "get_library_dir", "get_cmake_dir", "__version__"]
