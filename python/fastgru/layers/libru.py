"""The light Bayesian recurrent unit (Bittar & Garner 2021; ``EQUATIONS.md`` §8): the LiGRU's
structure with its state held as log-probabilities and updated in log space."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .cells import CELLS, parameter_name
from .ligru import BatchNormalisedLayer

__all__ = ["LiBRU"]


def _orthogonal(rng, size, dtype):
    """A (size, size) orthogonal matrix, Haar-distributed: Q of a Gaussian matrix's QR, its
    columns' signs fixed by R's diagonal (as ``torch.nn.init.orthogonal_``)."""
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return (q * np.where(np.diag(r) < 0, -1.0, 1.0)).astype(dtype)


class LiBRU(BatchNormalisedLayer):
    """A light Bayesian recurrent unit network (Bittar & Garner, ICASSP 2021; ``EQUATIONS.md``
    §8). The state ĥ holds log-probabilities (ĥ_0 = 0 unless given)::

        a_z = BN(W_iz x) + W_hz ĥ,  a_c = BN(W_ic x) + W_hc ĥ
        z = σ(a_z),  c = softplus(a_c) = log(1 + e^a_c)
        ĥ' = log(z ⊙ e^ĥ + (1 − z) ⊙ e^c) = logaddexp(ĥ − softplus(−a_z), c − softplus(a_z))

    computed in the second form, which never overflows. The LiGRU's update z ⊙ h + (1 − z) ⊙ n
    read as a mixture of probabilities, mixed in probability space and kept in log space; the
    LiGRU with ``activation="softplus"`` is its "geometric mean" approximation (a lower bound).
    No reset gate and no biases: batch normalisation of the 2H input projections, with running
    statistics, as :class:`LiGRU`'s.

    Args:
        input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, dtype, seed,
        recurrent_dropout, zoneout: as for :class:`GRU` (zoneout mixes log-probabilities).
        bn_momentum: weight of the batch statistics in the running ones, in [0, 1].
        bn_eps: added to the variance before its square root, > 0.

    Parameters, for each layer k and with the suffix ``_reverse`` for the reverse direction (row
    blocks z, c; the layer's dtype), initialised as the authors' code:
        ``weight_ih_l{k}`` (2H, I) for k = 0 and (2H, D*H) after: Xavier-uniform
        (±√(6 / (I_k + 2H))); ``weight_hh_l{k}`` (2H, H): each block (z, c) orthogonal;
        ``bn_weight_l{k}`` (2H,) γ, initially 1; ``bn_bias_l{k}`` (2H,) β, initially 0.
        Buffers (in :meth:`state_dict` and the model file, not in :attr:`grads`):
        ``bn_running_mean_l{k}`` (2H,), initially 0, and ``bn_running_var_l{k}`` (2H,),
        initially 1.

    A training forward needs at least 2 real steps in the batch, as :class:`LiGRU`'s.
    """

    __module__ = "fastgru"  # the path pickles name: stable however the package is laid out
    _description = CELLS["LiBRU"]
    _OPTION_FIELDS = dict(BatchNormalisedLayer._BATCH_NORM_FIELDS)
    _SETTINGS = BatchNormalisedLayer._SETTINGS + tuple(_OPTION_FIELDS)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype="float32", seed: Optional[int] = None,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, bn_momentum: float = 0.1,
                 bn_eps: float = 1e-5, reverse: bool = False, merge_mode="concat",
                 stateful: bool = False):
        self._init_batch_norm(bn_momentum, bn_eps)
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=False, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, reset_after=True, dtype=dtype, seed=seed,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout, reverse=reverse,
                         merge_mode=merge_mode, stateful=stateful)

    def _initial_parameters(self, rng):
        """Xavier-uniform input weights, orthogonal recurrent blocks; γ = 1, β = 0 and the
        running statistics of a standard normal."""
        H = self.hidden_size
        constant = {"bn_weight": 1.0, "bn_bias": 0.0, "bn_running_mean": 0.0, "bn_running_var": 1.0}
        shapes = self._parameter_shapes()
        params = {}
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                for base in self._description["parameters"] + self._description["buffers"]:
                    name = parameter_name(base, layer, direction)
                    shape = shapes[name]
                    if base in constant:
                        params[name] = np.full(shape, constant[base], self.dtype)
                    elif base == "weight_ih":
                        bound = np.sqrt(6.0 / (shape[0] + shape[1]))
                        params[name] = rng.uniform(-bound, bound, size=shape).astype(self.dtype)
                    else:
                        params[name] = np.concatenate([_orthogonal(rng, H, self.dtype) for _ in range(2)])
        return params
