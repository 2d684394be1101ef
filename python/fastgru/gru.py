"""The GRU layer: argument checks, parameters and gradients around the compiled core."""

from __future__ import annotations

import numbers
from typing import Mapping, Optional, Tuple

import numpy as np

from . import _core

__all__ = ["GRU"]

_CORE_LAYERS = {np.dtype(np.float32): _core.GruLayerF32, np.dtype(np.float64): _core.GruLayerF64}


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value}")
    return int(value)


def _as_numeric_array(value, name, dtype):
    """Converts ``value`` to a C-contiguous array of ``dtype`` (a copy only where needed)."""
    array = np.asarray(value.detach() if hasattr(value, "detach") else value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


def _private(converted, original):
    """``converted`` if it is a fresh array nobody else holds, else a copy of it."""
    fresh = converted.flags.owndata and converted is not original
    return converted if fresh else converted.copy()


class GRU:
    """A gated recurrent unit layer with PyTorch's parameters and semantics.

    Args:
        input_size: I, features of each input step.
        hidden_size: H, units of the hidden state.
        num_layers: stacked layers (only 1 so far).
        bias: whether the layer has ``bias_ih_l0`` and ``bias_hh_l0``.
        batch_first: inputs as (B, T, I) (not yet supported: must be False).
        dropout: dropout between layers (not yet supported: must be 0).
        bidirectional: (not yet supported: must be False).
        reset_after: True for the reset gate applied after the recurrent product
            (PyTorch, cuDNN, Keras ``reset_after=True``), False for Cho et al.'s form (Keras
            ``reset_after=False``, ONNX ``linear_before_reset=0``).
        dtype: ``"float32"`` or ``"float64"``; inputs of other real dtypes are converted to it.
        seed: seed of the default initialisation, uniform in ±1/√H as in PyTorch.

    Parameters (PyTorch's names, row blocks r, z, n; see :meth:`state_dict`):
        ``weight_ih_l0`` (3H, I), ``weight_hh_l0`` (3H, H), ``bias_ih_l0`` (3H,), ``bias_hh_l0`` (3H,).
    Attribute access (``layer.weight_ih_l0``) returns a read-only view; change parameters with
    :meth:`load_state_dict`, so that the core's packed copy stays in step.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        reset_after: bool = True,
        dtype="float32",
        seed: Optional[int] = None,
    ):
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        self.num_layers = _positive_int(num_layers, "num_layers")
        if self.num_layers != 1:
            raise NotImplementedError(f"num_layers: only 1 is supported so far, got {num_layers}")
        if batch_first:
            raise NotImplementedError("batch_first=True is not supported yet")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        if dropout:
            raise NotImplementedError(f"dropout: only 0 is supported so far, got {dropout}")
        if bidirectional:
            raise NotImplementedError("bidirectional=True is not supported yet")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
        if self.dtype not in _CORE_LAYERS:
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {self.dtype}")
        self.bias = bool(bias)
        self.batch_first = False
        self.dropout = 0.0
        self.bidirectional = False
        self.reset_after = bool(reset_after)

        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        self._params = {
            name: rng.uniform(-bound, bound, size=shape).astype(self.dtype)
            for name, shape in self._parameter_shapes().items()
        }
        for array in self._params.values():
            array.flags.writeable = False
        self.grads = {name: np.zeros(shape, self.dtype) for name, shape in self._parameter_shapes().items()}
        self._core = self._make_core()
        self._saved = None
        self._spare_cache = None

    # ----------------------------------------------------------------------- parameters
    def _parameter_shapes(self):
        G, I, H = 3 * self.hidden_size, self.input_size, self.hidden_size
        shapes = {"weight_ih_l0": (G, I), "weight_hh_l0": (G, H)}
        if self.bias:
            shapes.update({"bias_ih_l0": (G,), "bias_hh_l0": (G,)})
        return shapes

    def _make_core(self):
        p = self._params
        return _CORE_LAYERS[self.dtype](
            self.input_size,
            self.hidden_size,
            self.reset_after,
            p["weight_ih_l0"],
            p["weight_hh_l0"],
            p.get("bias_ih_l0"),
            p.get("bias_hh_l0"),
        )

    def __getattr__(self, name):
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def state_dict(self) -> dict:
        """A dict of copies of the parameters: name -> ndarray of the layer's dtype."""
        return {name: array.copy() for name, array in self._params.items()}

    def load_state_dict(self, state: Mapping) -> None:
        """Loads parameters from any mapping of name -> array-like (NumPy, torch tensors...).

        Every key and shape is checked; nothing changes unless all of them fit.
        """
        expected = self._parameter_shapes()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        loaded = {}
        for name, shape in expected.items():
            array = np.array(_as_numeric_array(state[name], name, self.dtype), copy=True)
            if array.shape != shape:
                raise ValueError(f"load_state_dict: {name} expected shape {shape}, got {array.shape}")
            array.flags.writeable = False
            loaded[name] = array
        self._params = loaded
        self._core = self._make_core()
        self._saved = None

    def zero_grad(self) -> None:
        """Sets every accumulated gradient in :attr:`grads` to zero."""
        for array in self.grads.values():
            array.fill(0)

    # ----------------------------------------------------------------------- compute
    def _check_input(self, x, h0):
        x = np.asarray(x.detach() if hasattr(x, "detach") else x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"x: expected a real numeric array, got dtype {x.dtype}")
        if x.ndim != 3:
            raise ValueError(f"x: expected 3 dimensions (T, B, I), got shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x: expected {self.input_size} input features (last axis), got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=self.dtype)
        batch = x.shape[1]
        state_shape = (self.num_layers, batch, self.hidden_size)
        if h0 is not None:
            h0 = _as_numeric_array(h0, "h0", self.dtype)
            if h0.shape != state_shape:
                raise ValueError(f"h0: expected shape {state_shape} (layers, B, H), got {h0.shape}")
        return x, h0

    def forward(self, x, h0=None, train: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """Runs the layer over a sequence.

        Args:
            x: (T, B, I) array of a real dtype (converted to the layer's dtype; any strides).
            h0: (num_layers, B, H) initial state, or None for zeros.
            train: keep the cache that :meth:`backward` needs.
        Returns:
            ``(y, h_n)``: y (T, B, H), every step's state; h_n (num_layers, B, H), the final state.
            With ``train=True``, y is read-only: :meth:`backward` reads it (copy it to change it).
        """
        caller_x, caller_h0 = x, h0
        x, h0 = self._check_input(x, h0)
        if train:
            # backward reads x, h0 and y: keep private copies the caller cannot change.
            x = _private(x, caller_x)
            h0 = None if h0 is None else _private(h0, caller_h0)
        h0_rows = None if h0 is None else h0[0]
        # A training cache freed by the last backward is reused: fresh pages cost a fault each.
        spare = self._spare_cache if train else None
        if spare is not None and spare.shape != (x.shape[0], x.shape[1], 4 * self.hidden_size):
            spare = None
        self._spare_cache = None
        y, h_n, cache = self._core.forward(x, h0_rows, train, spare)
        if train:
            self._saved = (self._core, x, h0_rows, y, cache)
            y.flags.writeable = False
        else:
            self._saved = None
        return y, h_n[np.newaxis]

    def __call__(self, x, h0=None) -> Tuple[np.ndarray, np.ndarray]:
        """Inference: ``forward(x, h0, train=False)``."""
        return self.forward(x, h0, train=False)

    def step(self, x_t, h=None, reset=None) -> Tuple[np.ndarray, np.ndarray]:
        """Advances the layer by one step (streaming inference).

        Args:
            x_t: (B, I) input of this step.
            h: (num_layers, B, H) state from the previous step, or None for zeros.
            reset: optional (B,) bool mask: those rows start from the zero state (a new
                sequence in one slot of a serving batch).
        Returns:
            ``(y_t, h)``: y_t (B, H) the output of this step and h (num_layers, B, H) the new state.
            Running ``step`` over a sequence equals one call on the whole sequence, to rounding.
        """
        x_t = np.asarray(x_t.detach() if hasattr(x_t, "detach") else x_t)
        if x_t.ndim != 2:
            raise ValueError(f"x_t: expected 2 dimensions (B, I), got shape {x_t.shape}")
        x, h = self._check_input(x_t[np.newaxis], h)
        batch = x.shape[1]
        if reset is not None:
            reset = np.asarray(reset)
            if reset.dtype != np.bool_ or reset.shape != (batch,):
                raise ValueError(f"reset: expected a bool array of shape ({batch},), got {reset.dtype} {reset.shape}")
            if h is not None and reset.any():
                h = h.copy()
                h[:, reset] = 0
        y, h_n, _ = self._core.forward(x, None if h is None else h[0], False)
        return y[0], h_n[np.newaxis]

    def backward(self, dy, dh_n=None) -> Tuple[np.ndarray, np.ndarray]:
        """Backpropagation through time for the last ``forward(..., train=True)``.

        Args:
            dy: (T, B, H), dL/dy for every step.
            dh_n: (num_layers, B, H), dL/dh_n, or None for zeros.
        Returns:
            ``(dx, dh0)``: dx (T, B, I) and dh0 (num_layers, B, H). The parameter gradients are
            added to :attr:`grads` (call :meth:`zero_grad` between steps).
        """
        if self._saved is None:
            raise RuntimeError(
                "backward: no training forward to differentiate; call forward(x, train=True) "
                "first (each forward can be differentiated once)"
            )
        core, x, h0_rows, y, cache = self._saved
        dy = _as_numeric_array(dy, "dy", self.dtype)
        if dy.shape != y.shape:
            raise ValueError(f"dy: expected shape {y.shape} (T, B, H), got {dy.shape}")
        state_shape = (self.num_layers, y.shape[1], self.hidden_size)
        if dh_n is not None:
            dh_n = _as_numeric_array(dh_n, "dh_n", self.dtype)
            if dh_n.shape != state_shape:
                raise ValueError(f"dh_n: expected shape {state_shape} (layers, B, H), got {dh_n.shape}")
            dh_n = dh_n[0]
        g = self.grads
        dx, dh0 = core.backward(
            x, h0_rows, y, cache, dy, dh_n,
            g["weight_ih_l0"], g["weight_hh_l0"], g.get("bias_ih_l0"), g.get("bias_hh_l0"),
        )
        self._saved = None
        self._spare_cache = cache
        return dx, dh0[np.newaxis]

    def __repr__(self):
        return (
            f"GRU(input_size={self.input_size}, hidden_size={self.hidden_size}, bias={self.bias}, "
            f"reset_after={self.reset_after}, dtype='{self.dtype}')"
        )
