"""fastgru: fast GRU forward and backpropagation through time on CPUs.

The layers are :class:`GRU`, :class:`MGU` and :class:`LiGRU`; :class:`Model` trains them end to
end (:mod:`fastgru.training`); :mod:`fastgru.reference` is the NumPy definition of what they
compute.
"""

from . import datasets, reference, training
from .embedding import get_cmake_dir, get_include, get_library_dir
from .gru import GRU, MGU, LiGRU
from .interop import flip_update_gate, load
from .training import Model
from .runtime import get_num_threads, info, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "GRU", "MGU", "LiGRU", "Model", "load", "flip_update_gate", "reference", "training", "datasets", "info",
    "set_num_threads", "get_num_threads", "get_include", "get_library_dir", "get_cmake_dir", "__version__",
]
