"""Optimisers, gradient clipping and learning-rate schedules.

An optimiser updates a dict of parameter arrays in place from a dict of gradients with the
same keys: ``optimizer.step(params, grads)``. Its state (moments) is keyed by parameter name,
so it follows the parameters across calls. ``learning_rate`` may be changed between steps
(schedules and callbacks do).

Row-sparse gradients (an embedding table's: only the rows a batch used) step lazily, as
``torch.optim.SparseAdam`` and TensorFlow's LazyAdam do: ``step(params, grads, rows={name:
row indices})`` with ``grads[name]`` holding just those rows; only they move, and only their
moments (and, for decoupled weight decay, only their decay) advance. A dense optimiser would
also move every untouched row by its stale momentum and decay rare tokens' vectors towards zero
at every step, at the cost of a pass over the whole table.
"""

from __future__ import annotations

import math
import numbers
from typing import Dict, Optional

import numpy as np

from .. import _core
from .._arguments import boolean

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "get", "clip_grad_norm", "global_norm",
    "step_decay", "exponential_decay", "cosine_decay",
]


def _non_negative(value, name, upper=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    if upper is not None and value >= upper:
        raise ValueError(f"{name}: expected a number in [0, {upper}), got {value!r}")
    return float(value)


class Optimizer:
    """Base class: keeps the learning rate and per-parameter state."""

    def __init__(self, learning_rate: float):
        self.learning_rate = _non_negative(learning_rate, "learning_rate")
        if self.learning_rate == 0:
            raise ValueError("learning_rate: expected a number > 0, got 0")
        self.state: Dict[str, dict] = {}
        self.iterations = 0

    def step(self, params: Dict[str, np.ndarray], grads: Dict[str, np.ndarray],
             rows: Optional[Dict[str, np.ndarray]] = None) -> None:
        """Updates every array of ``params`` in place from the gradient of the same name.
        ``rows``: for a row-sparse gradient, name -> the (R,) distinct row indices that
        ``grads[name]`` (R, ...) holds; only those rows step (see the module's docstring)."""
        self.iterations += 1
        self._begin_step()
        rows = rows or {}
        for name, param in params.items():
            if name in rows:
                self._update(name, param, grads[name], rows[name])
            else:
                self._update(name, param, grads[name])

    def _begin_step(self):
        """What every parameter's update of this step shares (after ``iterations`` advanced)."""

    def _new_state(self, param) -> Dict[str, np.ndarray]:
        """The per-parameter state: arrays shaped like ``param``, zero at the start."""
        return {}

    def _apply(self, param, grad, state) -> None:
        """One step of ``param`` in place from ``grad`` and its ``state`` (arrays like param)."""
        raise NotImplementedError

    def _update(self, name, param, grad, rows=None):
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = self._new_state(param)
        if rows is None:
            self._apply(param, grad, state)
            return
        # Gathered rows are contiguous copies: step them, then put them back.
        part = param[rows]
        part_state = {key: value[rows] for key, value in state.items()}
        self._apply(part, np.asarray(grad, dtype=param.dtype), part_state)
        param[rows] = part
        for key, value in part_state.items():
            state[key][rows] = value

    def reset(self) -> None:
        """Forgets the moments and the step count (a fresh start)."""
        self.state.clear()
        self.iterations = 0


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay,
    PyTorch's ``torch.optim.SGD`` update::

        g = grad + weight_decay * p;  v = momentum * v + g  (v = g at the first step)
        p -= lr * (g + momentum * v if nesterov else v)
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(learning_rate)
        self.momentum = _non_negative(momentum, "momentum", upper=1.0)
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.nesterov = boolean(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: needs momentum > 0")

    def _new_state(self, param):
        return {"velocity": np.zeros_like(param)} if self.momentum else {}

    def _apply(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            velocity = state["velocity"]  # zero at first, so that it starts as the gradient
            velocity *= self.momentum
            velocity += grad
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        param -= self.learning_rate * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, PyTorch's ``torch.optim.Adam`` update;
    ``weight_decay`` adds an L2 term to the gradient (use :class:`AdamW` for decoupled decay)."""

    _decoupled = False

    def __init__(self, learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(learning_rate)
        self.beta1 = _non_negative(beta1, "beta1", upper=1.0)
        self.beta2 = _non_negative(beta2, "beta2", upper=1.0)
        self.epsilon = _non_negative(epsilon, "epsilon")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def _begin_step(self):
        t = self.iterations
        self._step_size = self.learning_rate / (1.0 - self.beta1**t)
        self._root_correction = math.sqrt(1.0 - self.beta2**t)

    def _new_state(self, param):
        return {"m": np.zeros_like(param), "v": np.zeros_like(param)}

    def _apply(self, param, grad, state):
        decay = self.weight_decay if self._decoupled else 0.0
        # One fused pass in the core (fastgru/optimizers.h) instead of a chain of NumPy temporaries.
        _core.adam_update(param, np.ascontiguousarray(grad, dtype=param.dtype), state["m"], state["v"],
                          self._step_size, self.beta1, self.beta2, self.epsilon, self._root_correction,
                          1.0 - self.learning_rate * decay, 0.0 if self._decoupled else self.weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's ``torch.optim.AdamW``:
    ``p *= 1 - lr * weight_decay`` before the Adam step."""

    _decoupled = True

    def __init__(self, learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(learning_rate, beta1, beta2, epsilon, weight_decay)


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get(optimizer, learning_rate=None) -> Optimizer:
    """An :class:`Optimizer` from an instance or a name (``sgd``, ``adam``, ``adamw``)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        cls = _BY_NAME[optimizer.lower()]
        return cls() if learning_rate is None else cls(learning_rate=learning_rate)
    raise ValueError(f"optimizer: expected a fastgru Optimizer or one of {sorted(_BY_NAME)}, got {optimizer!r}")


def global_norm(grads: Dict[str, np.ndarray]) -> float:
    """The L2 norm of all the gradients together (float64)."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads: Dict[str, np.ndarray], max_norm: float) -> float:
    """Scales every gradient in place so that their global L2 norm is at most ``max_norm``
    (PyTorch's ``clip_grad_norm_``). Returns the norm before clipping."""
    if _non_negative(max_norm, "max_norm") == 0:
        raise ValueError("max_norm: expected a number > 0, got 0")
    norm = global_norm(grads)
    scale_to_norm(grads, norm, max_norm)
    return norm


def scale_to_norm(grads: Dict[str, np.ndarray], norm: float, max_norm: float) -> None:
    """The scaling step of :func:`clip_grad_norm`, for a caller that has the norm already."""
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale


def _decay_factor(gamma):
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0 < gamma <= 1:
        raise ValueError(f"gamma: expected a factor in (0, 1], got {gamma!r}")
    return float(gamma)


def step_decay(step_size: int, gamma: float = 0.1):
    """Schedule: the learning rate times ``gamma`` every ``step_size`` epochs."""
    gamma = _decay_factor(gamma)
    if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
        raise ValueError(f"step_size: expected an int >= 1, got {step_size!r}")
    return lambda epoch, initial: initial * gamma ** (epoch // step_size)


def exponential_decay(gamma: float):
    """Schedule: the learning rate times ``gamma`` every epoch."""
    gamma = _decay_factor(gamma)
    return lambda epoch, initial: initial * gamma**epoch


def cosine_decay(epochs: int, minimum: float = 0.0):
    """Schedule: half a cosine from the initial rate to ``minimum`` over ``epochs`` epochs."""
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs: expected an int >= 1, got {epochs!r}")
    minimum = _non_negative(minimum, "minimum")
    return lambda epoch, initial: minimum + 0.5 * (initial - minimum) * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))
