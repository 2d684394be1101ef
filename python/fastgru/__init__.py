"""fastgru: fast GRU forward and backpropagation through time on CPUs.

The layer is :class:`GRU`; :mod:`fastgru.reference` is the NumPy definition of what it computes.
"""

from . import reference
from .gru import GRU

__version__ = "0.1.0"

__all__ = ["GRU", "reference", "__version__"]
