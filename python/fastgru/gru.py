"""Where layers pickled by fastgru 0.1.0 name their classes (``fastgru.gru.GRU``, ...): those
pickles still load. The layers live in :mod:`fastgru.layers`; pickles now name ``fastgru.GRU``."""

from . import layers


def __getattr__(name):
    return getattr(layers, name)
