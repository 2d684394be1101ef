"""What tells the recurrent cells apart, in one table, and the one rule that names parameters.

Every other module (the layers, the model file, the converters, the estimators, ``Model``) takes
class names, cell ids, gate counts and parameter names from here. The table is the compiled
core's own, one entry per layer class:

    cell                  the core's id of the cell
    class_name            the Python class (the key)
    gate_blocks           the row blocks of each weight and bias, in order (G = len · H rows)
    parameters            base names of each layer and direction's parameters
    buffers               base names of its buffers: in state_dict and the model file, not trained
    has_bias_option       whether ``bias=False`` removes the ``bias_*`` parameters
    has_reset_conventions whether the reset gate goes after the recurrent product or before
                          (``reset_after``)
    activations           the candidate's activations to choose from (none: tanh, fixed)
    gates                 len(gate_blocks)
    normalises_inputs     whether the input projections are batch-normalised (``bn_*`` arrays)
    options               the cell's own settings (keywords and model-file fields)
    parameter_blocks      form of the gates -> array base name -> row blocks of H ("full" alone
                          but for the GRU, whose ``gates`` option changes its arrays' shapes)
"""

from __future__ import annotations

from typing import Dict, Tuple

from .. import _core

__all__ = ["CELLS", "parameter_name", "gate_count", "parameter_names", "parameter_rows"]

# The core's table (cpp/src/cells/cell_table.h), the single source of these facts.
CELLS: Dict[str, dict] = _core.cell_descriptions()

# The parameters that a layer built with bias=False lacks (where the cell has the option).
_BIAS_PREFIX = "bias_"


def parameter_name(base: str, layer: int, direction: int) -> str:
    """The name of parameter ``base`` of ``layer`` (0-based) and ``direction`` (1: reverse), as
    PyTorch names them: ``weight_ih_l0``, ``bias_hh_l1_reverse``."""
    return f"{base}_l{layer}" + ("_reverse" if direction else "")


def gate_count(class_name: str) -> int:
    """Row blocks per weight of a ``class_name`` layer (3 for the GRU's r, z, n)."""
    return len(CELLS[class_name]["gate_blocks"])


def parameter_rows(class_name: str, base: str, hidden_size: int, gates: str = "full") -> int:
    """Rows of array ``base`` (``weight_ih``, ``bias_hh``, ...) of a ``class_name`` layer whose
    gates have the form ``gates`` (EQUATIONS.md §7)."""
    return CELLS[class_name]["parameter_blocks"][gates][base] * hidden_size


def parameter_names(class_name: str, layer: int, direction: int, bias: bool) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(parameters, buffers): the names of one layer and direction's arrays, in the table's order;
    without the biases when ``bias`` is False."""
    description = CELLS[class_name]
    parameters = tuple(parameter_name(base, layer, direction) for base in description["parameters"]
                       if bias or not base.startswith(_BIAS_PREFIX))
    buffers = tuple(parameter_name(base, layer, direction) for base in description["buffers"])
    return parameters, buffers
