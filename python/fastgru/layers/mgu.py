"""The minimal gated unit (Zhou et al. 2016; ``EQUATIONS.md`` §4)."""

from __future__ import annotations

from typing import Optional

from .base import RecurrentLayer
from .cells import CELLS

__all__ = ["MGU"]


class MGU(RecurrentLayer):
    """A minimal gated unit network (Zhou et al. 2016; ``EQUATIONS.md`` §4)::

        f = σ(W_if x + b_if + W_hf h + b_hf)
        n = tanh(W_in x + b_in + W_hn (f ⊙ h) + b_hn)
        h' = (1 − f) ⊙ h + f ⊙ n

    One gate plays reset and update. Everything else is the :class:`fastgru.GRU`'s: constructor
    arguments (without ``reset_after``), layers, directions, lengths, regularisation, ``step``,
    ``forward``/``backward`` and the model file. Parameters follow the GRU's names with the row
    blocks f, n: ``weight_ih_l{k}`` (2H, I or D*H), ``weight_hh_l{k}`` (2H, H), ``bias_ih_l{k}``
    and ``bias_hh_l{k}`` (2H,), ``_reverse`` for the reverse direction. No other framework has
    it: it has no converters.

    The core runs it in kernels of its own: an input product of 2H columns, then each step f from
    W_hf h and the candidate from W_hn (f ⊙ h), each fused with its gate arithmetic.
    """

    __module__ = "fastgru"  # the path pickles name: stable however the package is laid out
    _description = CELLS["MGU"]

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype="float32", seed: Optional[int] = None, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0, reverse: bool = False, merge_mode="concat",
                 stateful: bool = False):
        # reset_after: unused by this cell (its gate acts before the product, as §2's reset).
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, reset_after=False, dtype=dtype, seed=seed,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout, reverse=reverse,
                         merge_mode=merge_mode, stateful=stateful)
