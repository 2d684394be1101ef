"""The recurrent layers: :mod:`.base` holds what they share, one module per cell the rest
(:mod:`.gru` with its converters, :mod:`.mgu`, :mod:`.ligru`, :mod:`.libru`), :mod:`.cells`
the facts that tell the cells apart."""

from .base import RecurrentLayer
from .gru import GRU, flip_update_gate
from .libru import LiBRU
from .ligru import LiGRU
from .mgu import MGU

__all__ = ["RecurrentLayer", "GRU", "MGU", "LiGRU", "LiBRU", "flip_update_gate", "LAYER_CLASSES", "CELL_CLASSES"]

# class name -> class, and cell id ("gru", ...) -> class.
LAYER_CLASSES = {cls._description["class_name"]: cls for cls in (GRU, MGU, LiGRU, LiBRU)}
CELL_CLASSES = {cls._description["cell"]: cls for cls in LAYER_CLASSES.values()}
