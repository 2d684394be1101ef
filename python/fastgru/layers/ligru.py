"""The light GRU (Ravanelli et al. 2018; ``EQUATIONS.md`` §5): no reset gate, ReLU candidate,
batch normalisation of the input projections with running statistics; and
:class:`BatchNormalisedLayer`, what it shares with the cells of its structure (the light Bayesian
unit)."""

from __future__ import annotations

import threading
from typing import Mapping, Optional

import numpy as np

from .. import model_file
from .._arguments import one_of, real_number
from .base import RecurrentLayer
from .cells import CELLS, parameter_name

__all__ = ["LiGRU", "BatchNormalisedLayer"]

_ACTIVATIONS = CELLS["LiGRU"]["activations"]
# The core's batch normalisation arrays of each layer and direction, in its order.
_BATCH_NORM = ("bn_weight", "bn_bias", "bn_running_mean", "bn_running_var")


def _listing(choices):
    """'relu', 'tanh' or 'leaky_relu'."""
    quoted = [repr(choice) for choice in choices]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


class BatchNormalisedLayer(RecurrentLayer):
    """What the layers of the LiGRU's structure share (row blocks z and a candidate, batch
    normalisation of the input projections with running statistics, no biases): the
    normalisation's options, its running statistics, and the core rebuilt after the training
    forwards that change them. A subclass sets ``_description`` and ``_OPTION_FIELDS``, and
    calls :meth:`_init_batch_norm` before ``RecurrentLayer.__init__``."""

    _BATCH_NORM_FIELDS = {
        "bn_momentum": model_file.number_field("a number in [0, 1]", lambda v: 0 <= v <= 1),
        "bn_eps": model_file.number_field("a number > 0", lambda v: v > 0),
    }

    def _init_batch_norm(self, bn_momentum, bn_eps):
        self.bn_momentum = real_number(bn_momentum, "bn_momentum", "a number in [0, 1]", lambda v: 0 <= v <= 1)
        self.bn_eps = real_number(bn_eps, "bn_eps", "a finite number > 0", lambda v: v > 0)
        # Training forwards change the running statistics; inference rebuilds the core from them.
        self._core_stale = False
        # Training forwards update the running statistics while inference may rebuild the core
        # from them: one at a time. Reentrant: an optimizer's step (run under it, see
        # _update_parameters) may itself run inference.
        self._statistics_lock = threading.RLock()

    def _candidate_options(self):
        """(activation, negative_slope) for the core: none for a cell without a choice of
        activations (the LiGRU overrides it)."""
        return "", 0.0

    def _batch_norm_per_direction(self, arrays):
        """Per layer and direction: the arrays of _BATCH_NORM that ``arrays`` holds (all four of
        the parameters, or the two gradients)."""
        names = [[parameter_name(base, layer, direction) for base in _BATCH_NORM]
                 for layer in range(self.num_layers) for direction in range(self.num_directions)]
        return [tuple(arrays[name] for name in direction if name in arrays) for direction in names]

    def _cell_core_arguments(self):
        activation, negative_slope = self._candidate_options()
        return {"batch_norm": self._batch_norm_per_direction(self._params), "activation": activation,
                "negative_slope": negative_slope, "bn_eps": self.bn_eps}

    def _on_training_forward(self, core):
        count, statistics = core.batch_statistics(self._cache)
        if not all(np.isfinite(mean).all() and np.isfinite(variance).all() for mean, variance in statistics):
            self._saved = None
            raise ValueError("x: the batch's statistics are not finite (NaN or inf in x?); the running "
                             "statistics are left unchanged")
        with self._statistics_lock:
            self._update_running_statistics(count, statistics)

    def _update_running_statistics(self, count, statistics):
        m = self.bn_momentum
        directions = [(layer, direction) for layer in range(self.num_layers) for direction in range(self.num_directions)]
        for (layer, direction), (mean, variance) in zip(directions, statistics):
            mean_name = parameter_name("bn_running_mean", layer, direction)
            var_name = parameter_name("bn_running_var", layer, direction)
            running_mean = (1 - m) * self._params[mean_name] + m * mean
            running_var = (1 - m) * self._params[var_name] + m * variance * (count / (count - 1))
            for name, value in ((mean_name, running_mean), (var_name, running_var)):
                value = value.astype(self.dtype)
                value.flags.writeable = False
                self._params[name] = value
        self._core_stale = True

    def _inference_core(self):
        """The core with the current running statistics folded in (rebuilt after training)."""
        with self._statistics_lock:
            if self._core_stale:
                self._core = self._make_core()
                self._core_stale = False
            return self._core

    def __getstate__(self):
        state = super().__getstate__()
        del state["_statistics_lock"]
        return state

    def __setstate__(self, state):
        self._statistics_lock = threading.RLock()
        super().__setstate__(state)

    def load_state_dict(self, state: Mapping) -> None:
        # Under the lock: a core that inference rebuilds meanwhile from the previous parameters
        # would otherwise replace the new one.
        with self._statistics_lock:
            super().load_state_dict(state)
            self._core_stale = False

    def _update_parameters(self, update) -> None:
        # Under the lock: inference must not rebuild the core from half-updated arrays.
        with self._statistics_lock:
            super()._update_parameters(update)
            self._core_stale = False

    def _before_forward(self, train, steps, batch, lengths):
        # Training normalises with the batch's statistics, inference with the running ones.
        if not train:
            return
        real_steps = steps * batch if lengths is None else int(lengths.sum())
        if real_steps < 2:
            raise ValueError(f"x: a {type(self).__name__}'s training forward normalises over the batch's real "
                             f"steps and needs at least 2 of them, got {real_steps}")


class LiGRU(BatchNormalisedLayer):
    """A light GRU network (Ravanelli et al. 2018; ``EQUATIONS.md`` §5)::

        a_z = BN(W_iz x),  a_n = BN(W_in x)
        z = σ(a_z + W_hz h)
        n = act(a_n + W_hn h)
        h' = z ⊙ h + (1 − z) ⊙ n

    No reset gate and no biases: batch normalisation's shift replaces them. ``BN`` normalises
    each of the 2H input projections over the batch and the steps (only the real steps when
    ``lengths`` are given), as ``torch.nn.BatchNorm1d`` does: a training forward uses the batch's
    mean and biased variance and then updates the running statistics
    (``running = (1 − bn_momentum) · running + bn_momentum · batch``, the variance unbiased by
    N/(N − 1) over the N real steps); inference and :meth:`step` use the running statistics,
    which the core folds into the input weights (no extra pass). Gradients flow through the
    batch statistics exactly.

    Args:
        input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, dtype, seed,
        recurrent_dropout, zoneout: as for :class:`GRU`.
        activation: the candidate's activation: ``"relu"`` (default), ``"tanh"``,
            ``"leaky_relu"`` (``max(a, 0) + negative_slope · min(a, 0)``) or ``"softplus"``
            (``log(1 + e^a)``: the "geometric mean" approximation of the light Bayesian unit,
            ``EQUATIONS.md`` §8).
        negative_slope: leaky ReLU's slope for negative inputs, a finite number >= 0.
        bn_momentum: weight of the batch statistics in the running ones, in [0, 1].
        bn_eps: added to the variance before its square root, > 0.

    Parameters, for each layer k and with the suffix ``_reverse`` for the reverse direction (row
    blocks z, n; the layer's dtype):
        ``weight_ih_l{k}`` (2H, I) for k = 0 and (2H, D*H) after, ``weight_hh_l{k}`` (2H, H):
        uniform in ±1/√H as the GRU's; ``bn_weight_l{k}`` (2H,) γ, initially 1;
        ``bn_bias_l{k}`` (2H,) β, initially 0. Buffers (in :meth:`state_dict` and the model
        file, not in :attr:`grads`): ``bn_running_mean_l{k}`` (2H,), initially 0, and
        ``bn_running_var_l{k}`` (2H,), initially 1.

    A training forward needs at least 2 real steps in the batch (a variance of one value is
    meaningless), as BatchNorm1d does.
    """

    __module__ = "fastgru"  # the path pickles name: stable however the package is laid out
    _description = CELLS["LiGRU"]
    _OPTION_FIELDS = {
        "activation": model_file.Field(_listing(_ACTIVATIONS), lambda v: v in _ACTIVATIONS),
        "negative_slope": model_file.number_field("a number >= 0", lambda v: v >= 0),
        **BatchNormalisedLayer._BATCH_NORM_FIELDS,
    }
    _SETTINGS = RecurrentLayer._SETTINGS + tuple(_OPTION_FIELDS)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, activation: str = "relu",
                 negative_slope: float = 0.01, dtype="float32", seed: Optional[int] = None,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, bn_momentum: float = 0.1,
                 bn_eps: float = 1e-5, reverse: bool = False, merge_mode="concat",
                 stateful: bool = False):
        self.activation = one_of(activation, "activation", _ACTIVATIONS)
        self.negative_slope = real_number(negative_slope, "negative_slope", "a finite number >= 0", lambda v: v >= 0)
        self._init_batch_norm(bn_momentum, bn_eps)
        # No biases (batch normalisation's shift replaces them) and no reset gate (the core's
        # default convention is passed, and unused).
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=False, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, reset_after=True, dtype=dtype, seed=seed,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout, reverse=reverse,
                         merge_mode=merge_mode, stateful=stateful)

    def _initial_parameters(self, rng):
        """The weights uniform in ±1/√H as the GRU's; γ = 1, β = 0 and the running statistics
        of a standard normal."""
        bound = 1.0 / np.sqrt(self.hidden_size)
        constant = {"bn_weight": 1.0, "bn_bias": 0.0, "bn_running_mean": 0.0, "bn_running_var": 1.0}
        shapes = self._parameter_shapes()
        params = {}
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                for base in self._description["parameters"] + self._description["buffers"]:
                    name = parameter_name(base, layer, direction)
                    params[name] = (np.full(shapes[name], constant[base], self.dtype) if base in constant
                                    else rng.uniform(-bound, bound, size=shapes[name]).astype(self.dtype))
        return params

    def _candidate_options(self):
        return self.activation, self.negative_slope
