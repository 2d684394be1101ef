"""What the cells with batch-normalised input projections share (row blocks z and a
candidate, running statistics, no biases), as ``cpp/src/cells/batch_norm/`` does in the core."""

from __future__ import annotations

import threading
from typing import Mapping

import numpy as np

from .. import model_file
from .._arguments import real_number
from .base import RecurrentLayer
from .cells import parameter_name

__all__ = ["BatchNormalisedLayer"]

# The core's batch normalisation arrays of each layer and direction, in its order.
_BATCH_NORM = ("bn_weight", "bn_bias", "bn_running_mean", "bn_running_var")


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
