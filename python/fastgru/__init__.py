"""fastgru: fast GRU forward and backpropagation through time on CPUs.

The layers are :class:`GRU`, :class:`MGU`, :class:`LiGRU` and :class:`LiBRU`; :class:`Model`
trains them end to end (:mod:`fastgru.training`); :mod:`fastgru.reference` is the NumPy
definition of what they compute.
"""

import importlib

from ._version import __version__
from .linking import get_cmake_dir, get_include, get_library_dir
from .layers import GRU, MGU, LiBRU, LiGRU, flip_update_gate
from .runtime import get_num_threads, info, set_num_threads

__all__ = [
    "GRU", "MGU", "LiGRU", "LiBRU", "Model", "load", "flip_update_gate", "reference", "training", "datasets", "info",
    "set_num_threads", "get_num_threads", "get_include", "get_library_dir", "get_cmake_dir", "__version__",
]

# Loaded on first use (PEP 562), so that `import fastgru` stays quick for serving: name ->
# (submodule, attribute or None for the submodule itself).
_LAZY = {
    "Model": ("training", "Model"), "training": ("training", None), "datasets": ("datasets", None),
    "reference": ("reference", None), "load": ("serialisation", "load"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'fastgru' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
