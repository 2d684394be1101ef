"""The GRU layer: argument checks, parameters and gradients around the compiled core."""

from __future__ import annotations

import numbers
import threading
import warnings
from typing import Mapping, Optional, Tuple

import numpy as np

from . import _core
from ._arguments import boolean

__all__ = ["GRU", "MGU", "LiGRU"]

_CORE = {
    np.dtype(np.float32): (_core.GruF32, _core.TrainingCacheF32),
    np.dtype(np.float64): (_core.GruF64, _core.TrainingCacheF64),
}


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value}")
    return int(value)


def _as_array(value, name, hint=""):
    """``value`` (array-like or torch tensor) as an ndarray; ``hint`` follows the message when
    its nested sequences do not form one array."""
    try:
        return np.asarray(value.detach() if hasattr(value, "detach") else value)
    except ValueError as error:  # NumPy's "inhomogeneous shape": nested lists of unequal lengths
        raise ValueError(f"{name}: expected an array, got nested sequences of different lengths "
                         f"({error}){hint}") from None


def _as_numeric_array(value, name, dtype):
    """Converts ``value`` to a C-contiguous array of ``dtype`` (a copy only where needed)."""
    array = _as_array(value, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


class GRU:
    """A gated recurrent unit network with PyTorch's parameters and semantics.

    Args:
        input_size: I, features of each input step.
        hidden_size: H, units of each state.
        num_layers: L, stacked layers; layer k > 0 takes the D*H outputs of layer k - 1.
        bias: whether each layer has ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
        batch_first: inputs and outputs as (B, T, ·) instead of (T, B, ·) (no transpose copy
            is asked of the caller).
        dropout: in training, dropout on each layer's outputs but the last's (PyTorch's meaning;
            with ``num_layers=1`` it has nothing to act on, and a UserWarning says so).
        bidirectional: a reverse direction per layer (D = 2); outputs side by side.
        reset_after: True for the reset gate applied after the recurrent product
            (PyTorch, cuDNN, Keras ``reset_after=True``), False for Cho et al.'s form (Keras
            ``reset_after=False``, ONNX ``linear_before_reset=0``).
        dtype: ``"float32"`` or ``"float64"``; inputs of other real dtypes are converted to it.
        seed: seed of the default initialisation (uniform in ±1/√H as in PyTorch) and of the
            training masks (each training forward draws new ones).
        recurrent_dropout: in training, dropout on the state fed to the recurrent products, one
            mask per sequence (the variational kind); the gate update still mixes the whole state.
        zoneout: in training, each unit keeps its previous state with this probability at each
            step; at inference the state is the expectation p * h_prev + (1 - p) * h_new.
        Masked units are scaled by 1/(1 - p) for both dropouts; :meth:`backward` honours the
        masks of the forward it differentiates exactly.
        The flags (bias, batch_first, bidirectional, reset_after) must be ``bool`` or ``np.bool_``:
        ``bool("False")`` is True, so anything else is refused (TypeError), as in PyTorch.

    The constructor's arguments but ``seed`` are attributes fixed for the layer's life: reading
    ``layer.dropout`` works, assigning it is refused (AttributeError), since the compiled core,
    :meth:`config` and the model file are all built from them. For another value, build a new
    layer and load this one's weights::

        new = type(layer)(**{**layer.config(), "dropout": 0.2})
        new.load_state_dict(layer.state_dict())

    Parameters (PyTorch's names, row blocks r, z, n; see :meth:`state_dict`), for each layer k
    and with the suffix ``_reverse`` for the reverse direction:
        ``weight_ih_l{k}`` (3H, I) for k = 0 and (3H, D*H) after, ``weight_hh_l{k}`` (3H, H),
        ``bias_ih_l{k}`` (3H,), ``bias_hh_l{k}`` (3H,).
    Attribute access (``layer.weight_ih_l0``) returns a read-only view; change parameters with
    :meth:`load_state_dict`, so that the core's packed copy stays in step. Assigning a parameter
    (or any name the layer does not have, such as a misspelt one) is refused with an
    AttributeError rather than kept where nothing reads it.
    """

    _gates = 3  # row blocks per weight: r, z, n
    _cell = "gru"
    # The constructor's arguments the layer keeps: set once by __init__, then fixed (the core,
    # config() and the model file are built from them; a later change would reach only some).
    _SETTINGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                 "bidirectional", "reset_after", "dtype", "recurrent_dropout", "zoneout")

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
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ):
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        self.num_layers = _positive_int(num_layers, "num_layers")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
            if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= rate < 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1), got {rate!r}")
        try:
            # by name: the canonical, native-order dtype object the core's checks expect
            self.dtype = np.dtype(np.dtype(dtype).name)
        except TypeError:
            raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
        if self.dtype not in _CORE:
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {self.dtype}")
        self.bias = boolean(bias, "bias")
        self.batch_first = boolean(batch_first, "batch_first")
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.zoneout = float(zoneout)
        self.bidirectional = boolean(bidirectional, "bidirectional")
        self.reset_after = boolean(reset_after, "reset_after")
        if self.dropout and self.num_layers == 1:
            warnings.warn(f"dropout={self.dropout} does nothing with num_layers=1: it acts on each layer's "
                          "outputs but the last's (between stacked layers), as in PyTorch", UserWarning,
                          stacklevel=2)
        self._cache = _CORE[self.dtype][1]()
        # Training calls share the cache: one at a time (the core refuses overlapping ones).
        self._training_lock = threading.Lock()

        rng = np.random.default_rng(seed)
        # Training masks: each training forward takes the next seed of this generator.
        self._mask_seeds = np.random.default_rng(None if seed is None else [seed, 1])
        self._params = self._initial_parameters(rng)
        for array in self._params.values():
            array.flags.writeable = False
        self.grads = {name: np.zeros(shape, self.dtype) for name, shape in self._parameter_shapes().items()
                      if self._trainable(name)}
        self._core = self._make_core()
        self._saved = None

    # ----------------------------------------------------------------------- parameters
    @property
    def num_directions(self) -> int:
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    def _initial_parameters(self, rng):
        """name -> array: uniform in ±1/√H, as PyTorch initialises its GRU."""
        bound = 1.0 / np.sqrt(self.hidden_size)
        return {name: rng.uniform(-bound, bound, size=shape).astype(self.dtype)
                for name, shape in self._parameter_shapes().items()}

    def _trainable(self, name):
        """Whether ``name`` has a gradient (buffers such as running statistics have none)."""
        return True

    def _batch_norm_per_direction(self, arrays):
        """The core's batch normalisation arrays per layer and direction (a LiGRU's only)."""
        return []

    def _on_training_forward(self, core):
        """Runs after each training forward by ``core``, before the lock is released."""

    def _inference_core(self):
        """The core that inference calls run."""
        return self._core

    @classmethod
    def _parameter_names(cls, layer, direction, bias):
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
        return names + ([f"bias_ih{suffix}", f"bias_hh{suffix}"] if bias else [])

    def _parameter_shapes(self):
        return self._parameter_shapes_of(self.config())

    @classmethod
    def _parameter_shapes_of(cls, config) -> dict:
        """name -> shape of the parameters of a layer built with ``config`` (:meth:`config`'s
        fields), without building it: a model file's tensors are checked against these first."""
        G, H = cls._gates * config["hidden_size"], config["hidden_size"]
        D = 2 if config["bidirectional"] else 1
        shapes = {}
        for layer in range(config["num_layers"]):
            inputs = config["input_size"] if layer == 0 else D * H
            for direction in range(D):
                names = cls._parameter_names(layer, direction, config.get("bias", False))
                shapes.update(zip(names, [(G, inputs), (G, H)] + [(G,)] * 4))
        return shapes

    def _per_direction(self, arrays):
        """Per layer and direction: (weight_ih, weight_hh, bias_ih or None, bias_hh or None)."""
        out = []
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                names = self._parameter_names(layer, direction, self.bias) + [None, None]
                out.append(tuple(arrays[n] if n else None for n in names[:4]))
        return out

    def _make_core(self):
        return _CORE[self.dtype][0](
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
            self.reset_after,
            self.bias,
            self._per_direction(self._params),
            self.dropout,
            self.recurrent_dropout,
            self.zoneout,
            self._cell,
        )

    def __getattr__(self, name):
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        # Private names are the layer's own state; the settings and ``grads`` are set once, by
        # __init__. Anything else would be kept where nothing reads it.
        # A subclass's own properties with setters are its business.
        owned_property = hasattr(getattr(type(self), name, None), "__set__")
        if name.startswith("_") or owned_property or (name in (*self._SETTINGS, "grads") and name not in self.__dict__):
            object.__setattr__(self, name, value)
        else:
            raise AttributeError(self._why_not_assignable(name))

    def __delattr__(self, name):
        if not name.startswith("_"):
            raise AttributeError(self._why_not_assignable(name))
        object.__delattr__(self, name)

    def _why_not_assignable(self, name):
        cls = type(self).__name__
        if name in self._SETTINGS:
            if name not in self.config():
                return f"{name}: fixed by the class: a {cls} always has {name}={getattr(self, name)!r}"
            return (f"{name}: fixed at construction (the compiled core, config() and the model file are built "
                    f"from it); for a layer with another {name}, build one and load these weights: "
                    f"new = {cls}(**{{**layer.config(), {name!r}: value}}); new.load_state_dict(layer.state_dict())")
        if name == "grads":
            return "grads: the gradient arrays backward adds to are the layer's; change them in place (zero_grad)"
        params = self.__dict__.get("_params", {})
        if name in params:
            return (f"{name}: parameters change through load_state_dict, which keeps the compiled core's packed "
                    f"copy in step: layer.load_state_dict({{**layer.state_dict(), {name!r}: value}})")
        return (f"{cls!r} object has no attribute {name!r} to set: its settings are fixed at construction and "
                "its parameters (the names in state_dict()) change through load_state_dict")

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
        previous, self._params = self._params, loaded
        try:
            self._core = self._make_core()
        except Exception:
            # The core refused the values (a LiGRU's negative running variance): keep the old ones.
            self._params = previous
            raise
        self._saved = None

    def _update_parameters(self, update) -> None:
        """For this package's training loops (:class:`fastgru.Model`): ``update(params)`` changes
        the trainable arrays (name -> array) in place, then the core repacks them once. Cheaper
        than :meth:`load_state_dict`, which checks and copies every array."""
        trainable = {name: self._params[name] for name in self.grads}
        for array in trainable.values():
            array.flags.writeable = True
        try:
            update(trainable)
        finally:
            for array in trainable.values():
                array.flags.writeable = False
        self._core = self._make_core()
        self._saved = None

    def config(self) -> dict:
        """The constructor arguments that rebuild this layer (without its weights or seed)."""
        return {
            "input_size": self.input_size, "hidden_size": self.hidden_size,
            "num_layers": self.num_layers, "bias": self.bias, "batch_first": self.batch_first,
            "dropout": self.dropout, "bidirectional": self.bidirectional,
            "reset_after": self.reset_after, "dtype": str(self.dtype),
            "recurrent_dropout": self.recurrent_dropout, "zoneout": self.zoneout,
        }

    def save(self, path) -> None:
        """Writes the weights and configuration to a ``.safetensors`` file; ``fastgru.load(path)``
        reads it back (see :mod:`fastgru.model_file`)."""
        from . import interop

        interop.save(self, path)

    @classmethod
    def from_torch(cls, module, seed=None) -> "GRU":
        """A GRU with the configuration and weights of a ``torch.nn.GRU`` (any layers,
        directions, batch_first)."""
        if cls is not GRU:
            raise TypeError(f"{cls.__name__}.from_torch: only GRU layers have a counterpart there")
        from . import interop

        return interop.from_torch(module, seed=seed)

    def to_torch(self):
        """A ``torch.nn.GRU`` with this layer's configuration and weights (reset-after only)."""
        from . import interop

        return interop.to_torch(self)

    def to_onnx(self, path, initial_state: bool = False, lengths: bool = False) -> None:
        """Writes the layer as an ONNX model of standard GRU nodes whose output ``y`` has this
        layer's shape and layout (a drop-in for ``layer(x)``); ``initial_state`` and ``lengths``
        add the inputs ``h0`` and ``lengths``. Needs the ``onnx`` package."""
        from . import interop

        interop.to_onnx(self, path, initial_state=initial_state, lengths=lengths)

    @classmethod
    def from_onnx(cls, path) -> "GRU":
        """Reads a model written by :meth:`to_onnx` (or a plain stack of ONNX GRU nodes), refusing
        what it cannot compute (``clip``, other activations...: see :func:`fastgru.interop.from_onnx`)."""
        if cls is not GRU:
            raise TypeError(f"{cls.__name__}.from_onnx: only GRU layers have a counterpart there")
        from . import interop

        return interop.from_onnx(path)

    @classmethod
    def from_keras(cls, keras_layer, seed=None) -> "GRU":
        """A GRU (batch_first) from ``keras.layers.GRU`` or ``Bidirectional(GRU)``, either
        ``reset_after``. Settings that change the outputs and cannot be carried (other
        activations, ``stateful``...) are refused; training-only ones (``dropout``, regularizers,
        constraints) are warned about: see :func:`fastgru.interop.from_keras`."""
        if cls is not GRU:
            raise TypeError(f"{cls.__name__}.from_keras: only GRU layers have a counterpart there")
        from . import interop

        return interop.from_keras(keras_layer, seed=seed)

    def to_keras(self):
        """A built ``keras.layers.GRU`` (``Bidirectional`` when bidirectional) with
        ``return_sequences`` and ``return_state`` and this layer's weights."""
        from . import interop

        return interop.to_keras(self)

    def zero_grad(self) -> None:
        """Sets every accumulated gradient in :attr:`grads` to zero."""
        for array in self.grads.values():
            array.fill(0)

    # ----------------------------------------------------------------------- pickling
    def __getstate__(self):
        """Configuration, parameters, gradients and the mask generator; the core and the
        training cache are rebuilt on unpickling (a pending backward is not carried over)."""
        state = self.__dict__.copy()
        for transient in ("_core", "_cache", "_training_lock", "_saved"):
            del state[transient]
        return state

    def __setstate__(self, state):
        # Unpickled arrays may be memory maps or carry a foreign dtype object: own copies.
        dtype = np.dtype(state["dtype"].name)

        def own_copy(array):
            out = np.empty(array.shape, dtype)  # np.array(a, dtype) may keep a's dtype object
            out[...] = array
            return out

        params = {k: own_copy(v) for k, v in state["_params"].items()}
        for array in params.values():
            array.flags.writeable = False
        # Straight into __dict__: the settings are fixed once set.
        self.__dict__.update(state, dtype=dtype, _params=params,
                             grads={k: own_copy(v) for k, v in state["grads"].items()})
        self._cache = _CORE[self.dtype][1]()
        self._training_lock = threading.Lock()
        self._core = self._make_core()
        self._saved = None

    # ----------------------------------------------------------------------- compute
    def _check_input(self, x, h0, lengths, x_name="x", h0_name="h0"):
        """The checked inputs in the core's batched form: ``(x, h0, lengths, steps, batch,
        unbatched)``; an unbatched x (T, I) and h0 (L*D, H) get a batch axis of 1."""
        x = _as_array(x, x_name, "; pad them to the longest and give each one's real steps as lengths")
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{x_name}: expected a real numeric array, got dtype {x.dtype}")
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if x.ndim not in (2, 3):
            raise ValueError(f"{x_name}: expected {layout}, or (T, I) for one unbatched sequence, got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{x_name}: expected {self.input_size} input features (last axis), got shape {x.shape}")
        given_shape, unbatched = x.shape, x.ndim == 2
        if unbatched:
            x = np.expand_dims(x, self._batch_axis)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        steps, batch = (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        states = self.num_layers * self.num_directions
        if h0 is not None:
            h0 = _as_numeric_array(h0, h0_name, self.dtype)
            expected = (states, self.hidden_size) if unbatched else (states, batch, self.hidden_size)
            if h0.shape != expected:
                axes = "H" if unbatched else "B, H"
                raise ValueError(f"{h0_name}: expected shape {expected} (layers x directions, {axes}), got {h0.shape}")
            if unbatched:
                h0 = h0[:, np.newaxis]
        if lengths is not None:
            if unbatched:
                raise ValueError(f"lengths: {x_name} of shape {given_shape} is one unbatched sequence, all of whose "
                                 "steps are real; pass lengths=None (and only its real steps)")
            lengths = _as_array(lengths, "lengths")
            if lengths.dtype.kind not in "iu" or lengths.shape != (batch,):
                raise ValueError(f"lengths: expected {batch} integers (one per row), got {lengths.dtype} {lengths.shape}")
            bad = (lengths < 1) | (lengths > steps)
            if bad.any():
                row = int(np.argmax(bad))
                raise ValueError(f"lengths: expected values in 1..{steps} (T), got {lengths[row]} at row {row}")
            lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        return x, h0, lengths, steps, batch, unbatched

    @property
    def _batch_axis(self):
        return 0 if self.batch_first else 1

    def _unbatch(self, sequence, states):
        """A batch of one sequence back to the unbatched form: (T, ·) and (L*D, ·)."""
        return (sequence[0] if self.batch_first else sequence[:, 0]), states[:, 0]

    def _before_forward(self, train, steps, batch, lengths):
        """Runs before each forward reaches the core (a LiGRU's checks and statistics)."""

    def forward(self, x, h0=None, train: bool = True, lengths=None) -> Tuple[np.ndarray, np.ndarray]:
        """Runs the network over a batch of sequences, or over one unbatched sequence.

        Args:
            x: (T, B, I), or (B, T, I) with ``batch_first``, of a real dtype (converted to the
                layer's dtype; any strides). A 2-D x (T, I) is one unbatched sequence, as in
                PyTorch.
            h0: (num_layers * D, B, H) initial states, or None for zeros (D = 2 if bidirectional);
                (num_layers * D, H) for an unbatched x.
            train: keep what :meth:`backward` needs (a bool).
            lengths: optional (B,) integers, the real steps of each row, in 1..T, any order.
                Steps past a row's length cost nothing and give zero outputs; its final state is
                the state after its last real step, and the reverse direction starts there. Not
                for an unbatched x.
        Returns:
            ``(y, h_n)`` in the layer's dtype: y (T, B, D*H) or (B, T, D*H), the last layer's
            outputs with the directions side by side; h_n (num_layers * D, B, H), every layer's
            final states. For an unbatched x: y (T, D*H) and h_n (num_layers * D, H).
        """
        train = boolean(train, "train")
        if not train and lengths is None:
            # Fast path: arrays already in the core's form (see step) go straight to it.
            out = self._inference_core().try_forward(x, h0, self.batch_first)
            if out is not None:
                return out
        x, h0, lengths, steps, batch, unbatched = self._check_input(x, h0, lengths)
        self._before_forward(train, steps, batch, lengths)
        if not train:
            y, h_n = self._inference_core().forward(x, h0, lengths, self.batch_first, None, 0)
        else:
            with self._training_lock:
                seed = int(self._mask_seeds.integers(2**63))
                # Read once: inference on other threads may replace self._core meanwhile.
                core = self._core
                y, h_n = core.forward(x, h0, lengths, self.batch_first, self._cache, seed)
                self._saved = (core, steps, batch, unbatched)
                self._on_training_forward(core)
        return self._unbatch(y, h_n) if unbatched else (y, h_n)

    def __call__(self, x, h0=None, lengths=None) -> Tuple[np.ndarray, np.ndarray]:
        """Inference: ``forward(x, h0, train=False, lengths=lengths)``."""
        return self.forward(x, h0, train=False, lengths=lengths)

    def step(self, x_t, h=None, reset=None) -> Tuple[np.ndarray, np.ndarray]:
        """Advances every layer by one step (streaming inference; not for bidirectional layers).

        Args:
            x_t: (B, I) input of this step, of a real dtype; (I,) for one unbatched sequence.
            h: (num_layers, B, H) states from the previous step, or None for zeros;
                (num_layers, H) for an unbatched x_t.
            reset: optional (B,) bool mask (a bool for an unbatched x_t): those rows start from
                the zero state (a new sequence in one slot of a serving batch).
        Returns:
            ``(y_t, h)`` in the layer's dtype: y_t (B, H) the last layer's output and h
            (num_layers, B, H) the new states; (H,) and (num_layers, H) for an unbatched x_t.
            Running ``step`` over a sequence equals one call on the whole sequence, to rounding.
        """
        if reset is None:
            # Fast path: arrays already in the core's form (ndarrays of the layer's dtype,
            # C-contiguous, of the right shapes) go straight to it; anything else (None back)
            # takes the general path below, which converts or names what is wrong.
            out = self._inference_core().try_step(x_t, h)
            if out is not None:
                return out
        if self.bidirectional:
            raise ValueError("step: a bidirectional GRU needs the whole sequence; call it on x instead")
        x_t = _as_array(x_t, "x_t")
        if x_t.ndim not in (1, 2):
            raise ValueError(f"x_t: expected (B, I), or (I,) for one unbatched sequence, got shape {x_t.shape}")
        # One step: (1, I) is an unbatched sequence of T = 1; (B, I) gets its step axis.
        x = x_t[np.newaxis] if x_t.ndim == 1 else np.expand_dims(x_t, 1 - self._batch_axis)
        x, h, _, _, batch, unbatched = self._check_input(x, h, None, x_name="x_t", h0_name="h")
        if reset is not None:
            reset = np.asarray(reset)
            expected = () if unbatched else (batch,)
            if reset.dtype != np.bool_ or reset.shape != expected:
                raise ValueError(f"reset: expected a bool array of shape {expected}, got {reset.dtype} {reset.shape}")
            if h is not None and reset.any():
                h = h.copy()
                h[:, reset.reshape(batch)] = 0
        y, h_n = self._inference_core().forward(x, h, None, self.batch_first, None, 0)
        if unbatched:
            return y.reshape(self.hidden_size), h_n[:, 0]
        return y.reshape(batch, self.hidden_size), h_n

    def backward(self, dy, dh_n=None) -> Tuple[np.ndarray, np.ndarray]:
        """Backpropagation through time for the last ``forward(..., train=True)``.

        Args:
            dy: like y, dL/dy for every step (ignored past each row's length).
            dh_n: like h_n ((num_layers * D, B, H), or (num_layers * D, H) after an unbatched
                forward), dL/dh_n, or None for zeros.
        Returns:
            ``(dx, dh0)`` in the layer's dtype: dx like x (zero past each row's length) and dh0
            like h_n. The parameter gradients are added to :attr:`grads` (call
            :meth:`zero_grad` between steps).
        """
        with self._training_lock:
            return self._backward(dy, dh_n)

    def _backward(self, dy, dh_n):
        if self._saved is None:
            raise RuntimeError(
                "backward: no training forward to differentiate; call forward(x, train=True) "
                "first (each forward can be differentiated once)"
            )
        core, steps, batch, unbatched = self._saved
        D, H = self.num_directions, self.hidden_size
        y_shape = (batch, steps, D * H) if self.batch_first else (steps, batch, D * H)
        state_shape = (self.num_layers * D, batch, H)
        if unbatched:
            y_shape, state_shape = (steps, D * H), (self.num_layers * D, H)
        dy = _as_numeric_array(dy, "dy", self.dtype)
        if dy.shape != y_shape:
            raise ValueError(f"dy: expected shape {y_shape} (like y), got {dy.shape}")
        if dh_n is not None:
            dh_n = _as_numeric_array(dh_n, "dh_n", self.dtype)
            if dh_n.shape != state_shape:
                raise ValueError(f"dh_n: expected shape {state_shape} (like h_n: layers x directions, "
                                 f"{'H' if unbatched else 'B, H'}), got {dh_n.shape}")
        if unbatched:
            dy = np.expand_dims(dy, self._batch_axis)
            dh_n = None if dh_n is None else dh_n[:, np.newaxis]
        dx, dh0 = core.backward(self._cache, dy, dh_n, self._per_direction(self.grads),
                                self._batch_norm_per_direction(self.grads))
        self._saved = None
        return self._unbatch(dx, dh0) if unbatched else (dx, dh0)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({arguments})"


class MGU(GRU):
    """A minimal gated unit network (Zhou et al. 2016; ``EQUATIONS.md`` §4)::

        f = σ(W_if x + b_if + W_hf h + b_hf)
        n = tanh(W_in x + b_in + W_hn (f ⊙ h) + b_hn)
        h' = (1 − f) ⊙ h + f ⊙ n

    One gate plays reset and update. Everything else is the :class:`GRU`'s: constructor
    arguments (without ``reset_after``), layers, directions, lengths, regularisation, ``step``,
    ``forward``/``backward`` and the model file. Parameters follow the GRU's names with the row
    blocks f, n: ``weight_ih_l{k}`` (2H, I or D*H), ``weight_hh_l{k}`` (2H, H), ``bias_ih_l{k}``
    and ``bias_hh_l{k}`` (2H,), ``_reverse`` for the reverse direction.

    The core runs it as the reset-before GRU with r = f and z = 1 − f (the weights of z are those
    of f negated), exactly, in the same kernels, folding the gradients back onto f.
    """

    _gates = 2  # row blocks per weight: f, n
    _cell = "mgu"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype="float32", seed: Optional[int] = None, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         reset_after=False, dtype=dtype, seed=seed,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout)

    def config(self) -> dict:
        config = super().config()
        del config["reset_after"]
        return config


_LIGRU_ACTIVATIONS = ("relu", "tanh", "leaky_relu")


def _real_number(value, name, expected, accept):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or not accept(value):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


class LiGRU(GRU):
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
        activation: the candidate's activation: ``"relu"`` (default), ``"tanh"`` or
            ``"leaky_relu"`` (``max(a, 0) + negative_slope · min(a, 0)``).
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

    _gates = 2  # row blocks per weight: z, n
    _cell = "ligru"
    _SETTINGS = GRU._SETTINGS + ("activation", "negative_slope", "bn_momentum", "bn_eps")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, activation: str = "relu",
                 negative_slope: float = 0.01, dtype="float32", seed: Optional[int] = None,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, bn_momentum: float = 0.1,
                 bn_eps: float = 1e-5):
        if not isinstance(activation, str) or activation not in _LIGRU_ACTIVATIONS:
            raise ValueError(f"activation: expected one of {', '.join(map(repr, _LIGRU_ACTIVATIONS))}, got {activation!r}")
        self.activation = activation
        self.negative_slope = _real_number(negative_slope, "negative_slope", "a finite number >= 0", lambda v: v >= 0)
        self.bn_momentum = _real_number(bn_momentum, "bn_momentum", "a number in [0, 1]", lambda v: 0 <= v <= 1)
        self.bn_eps = _real_number(bn_eps, "bn_eps", "a finite number > 0", lambda v: v > 0)
        # Training forwards change the running statistics; inference rebuilds the core from them.
        self._core_stale = False
        # Training forwards update the running statistics while inference may rebuild the core
        # from them: one at a time. Reentrant: an optimizer's step (run under it, see
        # _update_parameters) may itself run inference.
        self._statistics_lock = threading.RLock()
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=False,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         dtype=dtype, seed=seed, recurrent_dropout=recurrent_dropout, zoneout=zoneout)

    @classmethod
    def _parameter_names(cls, layer, direction, bias):
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return [f"{name}{suffix}" for name in
                ("weight_ih", "weight_hh", "bn_weight", "bn_bias", "bn_running_mean", "bn_running_var")]

    def _initial_parameters(self, rng):
        bound = 1.0 / np.sqrt(self.hidden_size)
        initial = {"bn_weight": 1.0, "bn_bias": 0.0, "bn_running_mean": 0.0, "bn_running_var": 1.0}
        params = {}
        for name, shape in self._parameter_shapes().items():
            kind = name.split("_l")[0]
            params[name] = (rng.uniform(-bound, bound, size=shape).astype(self.dtype) if kind.startswith("weight")
                            else np.full(shape, initial[kind], self.dtype))
        return params

    def _trainable(self, name):
        return not name.startswith("bn_running_")

    def _per_direction(self, arrays):
        return [(arrays[names[0]], arrays[names[1]], None, None)
                for names in self._direction_names()]

    def _batch_norm_per_direction(self, arrays):
        return [tuple(arrays[name] for name in names[2:] if name in arrays) for names in self._direction_names()]

    def _direction_names(self):
        return [self._parameter_names(layer, direction, False)
                for layer in range(self.num_layers) for direction in range(self.num_directions)]

    def _make_core(self):
        return _CORE[self.dtype][0](
            self.input_size, self.hidden_size, self.num_layers, self.bidirectional, True, False,
            self._per_direction(self._params), self.dropout, self.recurrent_dropout, self.zoneout,
            self._cell, self._batch_norm_per_direction(self._params), self.activation,
            self.negative_slope, self.bn_eps,
        )

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
        for names, (mean, variance) in zip(self._direction_names(), statistics):
            mean_name, var_name = names[4], names[5]
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
            raise ValueError("x: a LiGRU's training forward normalises over the batch's real steps and "
                             f"needs at least 2 of them, got {real_steps}")

    def config(self) -> dict:
        config = super().config()
        del config["bias"], config["reset_after"]
        config.update(activation=self.activation, negative_slope=self.negative_slope,
                      bn_momentum=self.bn_momentum, bn_eps=self.bn_eps)
        return config
