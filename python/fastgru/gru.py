"""Where layers pickled before :mod:`fastgru.layers` existed name their classes
(``fastgru.gru.GRU``, ...): those pickles still load. The layers live in :mod:`fastgru.layers`;
pickles now name ``fastgru.GRU``, ..."""

from . import layers


def __getattr__(name):
    return getattr(layers, name)
