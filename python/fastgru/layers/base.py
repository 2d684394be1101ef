"""What every recurrent layer shares: argument checks, parameters and buffers, the compiled core,
forward, backward and step, gradients, pickling, the model file, config and repr.

A cell's own module (``gru.py``, ...) subclasses :class:`RecurrentLayer` with its public
constructor, its entry of :data:`fastgru.layers.cells.CELLS` and what differs (its options,
initialisation, converters); the names, shapes and gate counts come from that entry.
"""

from __future__ import annotations

import threading
import warnings
from typing import Mapping, Optional, Tuple

import numpy as np

from .. import _core
from .. import model_file
from .._arguments import as_array, as_numeric_array, boolean, layer_dtype, positive_int, probability
from .cells import parameter_name, parameter_names, parameter_rows

__all__ = ["RecurrentLayer"]

_CORE = {
    np.dtype(np.float32): (_core.GruF32, _core.TrainingCacheF32),
    np.dtype(np.float64): (_core.GruF64, _core.TrainingCacheF64),
}

# The core's weight slots of each layer and direction; a cell without biases leaves the last two
# out (None).
_CORE_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

# How a bidirectional layer gives its two directions (Keras Bidirectional's merge_mode): side by
# side, their sum, product or mean, or None: apart, on an axis of their own.
_MERGE_MODES = ("concat", "sum", "mul", "ave", None)
# The products' arithmetic: the layer's dtype, then the modes of quantize (fastgru::Precision's order).
_PRECISIONS = ("full", "bf16", "int8")

# How a model file's configuration fields of every layer are checked (a cell adds its options).
_COMMON_FILE_FIELDS = {
    "input_size": model_file.SIZE, "hidden_size": model_file.SIZE, "num_layers": model_file.SIZE,
    "bias": model_file.BOOLEAN, "batch_first": model_file.BOOLEAN, "dropout": model_file.RATE,
    "bidirectional": model_file.BOOLEAN, "reset_after": model_file.BOOLEAN, "dtype": model_file.DTYPE,
    "recurrent_dropout": model_file.RATE, "zoneout": model_file.RATE,
    # Files written before reverse layers existed hold forward ones.
    "reverse": model_file.Field(model_file.BOOLEAN.expected, model_file.BOOLEAN.valid, absent_means=False),
    # ... and before merge modes existed, concatenating ones (null: Keras's None, the halves apart).
    "merge_mode": model_file.Field("'concat', 'sum', 'mul', 'ave' or null", lambda v: v in _MERGE_MODES,
                                   absent_means="concat"),
    # ... and before stateful layers existed, layers that start each call from h0.
    "stateful": model_file.Field(model_file.BOOLEAN.expected, model_file.BOOLEAN.valid, absent_means=False),
}


class RecurrentLayer:
    """The shared part of every layer of :data:`fastgru.layers.LAYER_CLASSES`; see
    :class:`fastgru.GRU` for the arguments, attributes and methods they all have."""

    # The cell's entry of cells.CELLS: set by each cell class.
    _description: Mapping = {}
    # The constructor's arguments the layer keeps: set once by __init__, then fixed (the core,
    # config() and the model file are built from them; a later change would reach only some).
    _SETTINGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                 "bidirectional", "reset_after", "dtype", "recurrent_dropout", "zoneout", "reverse", "merge_mode",
                 "stateful")
    # A cell's own settings, after the common ones: name -> how a model file's value is checked.
    _OPTION_FIELDS: Mapping[str, model_file.Field] = {}

    def __init__(self, input_size: int, hidden_size: int, *, num_layers: int, bias: bool, batch_first: bool,
                 dropout: float, bidirectional: bool, reset_after: bool, dtype, seed: Optional[int],
                 recurrent_dropout: float, zoneout: float, reverse: bool = False, merge_mode="concat",
                 stateful: bool = False):
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.num_layers = positive_int(num_layers, "num_layers")
        self.dropout = probability(dropout, "dropout")
        self.recurrent_dropout = probability(recurrent_dropout, "recurrent_dropout")
        self.zoneout = probability(zoneout, "zoneout")
        self.dtype = layer_dtype(dtype)
        self.bias = boolean(bias, "bias")
        self.batch_first = boolean(batch_first, "batch_first")
        self.bidirectional = boolean(bidirectional, "bidirectional")
        self.reset_after = boolean(reset_after, "reset_after")
        self.reverse = boolean(reverse, "reverse")
        if self.reverse and self.bidirectional:
            raise ValueError("reverse: a bidirectional layer runs both directions already; expected reverse=False "
                             "with bidirectional=True")
        if not (merge_mode is None or isinstance(merge_mode, str) and merge_mode in _MERGE_MODES):
            raise ValueError(f"merge_mode: expected one of {_MERGE_MODES}, got {merge_mode!r}")
        if merge_mode != "concat" and not self.bidirectional:
            raise ValueError(f"merge_mode: only a bidirectional layer has two directions to merge; expected "
                             f"'concat' with bidirectional=False, got {merge_mode!r}")
        self.merge_mode = merge_mode
        self.stateful = boolean(stateful, "stateful")
        # A stateful layer's states after its last call (None: zeros), under their own lock.
        self._states = None
        self._states_lock = threading.Lock()
        if self.dropout and self.num_layers == 1:
            warnings.warn(f"dropout={self.dropout} does nothing with num_layers=1: it acts on each layer's "
                          "outputs but the last's (between stacked layers), as in PyTorch", UserWarning,
                          stacklevel=3)
        self._cache = _CORE[self.dtype][1]()
        # Training calls share the cache: one at a time (the core refuses overlapping ones).
        self._training_lock = threading.Lock()

        rng = np.random.default_rng(seed)
        # Training masks: each training forward takes the next seed of this generator.
        self._mask_seeds = np.random.default_rng(None if seed is None else [seed, 1])
        self._params = self._initial_parameters(rng)
        for array in self._params.values():
            array.flags.writeable = False
        buffers = self._buffer_names()
        self.grads = {name: np.zeros(shape, self.dtype) for name, shape in self._parameter_shapes().items()
                      if name not in buffers}
        self._precision = "full"
        self._core = self._make_core()
        self._saved = None

    # ----------------------------------------------------------------------- parameters
    @property
    def num_directions(self) -> int:
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features of each output step: D*H, or H when merge_mode sums, multiplies or averages
        the directions (with merge_mode None, y holds them apart: (..., 2, H))."""
        return self.hidden_size if self.merge_mode in ("sum", "mul", "ave") else self.num_directions * self.hidden_size

    def _initial_parameters(self, rng):
        """name -> array: uniform in ±1/√H, as PyTorch initialises its GRU."""
        bound = 1.0 / np.sqrt(self.hidden_size)
        return {name: rng.uniform(-bound, bound, size=shape).astype(self.dtype)
                for name, shape in self._parameter_shapes().items()}

    def _direction_names(self):
        """Per layer and direction (the core's order): (parameter names, buffer names)."""
        return [parameter_names(self._description["class_name"], layer, direction, self.bias)
                for layer in range(self.num_layers) for direction in range(self.num_directions)]

    def _buffer_names(self):
        return {name for _, buffers in self._direction_names() for name in buffers}

    def _parameter_shapes(self):
        return self._parameter_shapes_of(self.config())

    @classmethod
    def _parameter_shapes_of(cls, config) -> dict:
        """name -> shape of the parameters and buffers of a layer built with ``config``
        (:meth:`config`'s fields), without building it: a model file's tensors are checked
        against these first."""
        H = config["hidden_size"]
        D = 2 if config["bidirectional"] else 1
        class_name, gates = cls._description["class_name"], config.get("gates", "full")
        shapes = {}
        for layer in range(config["num_layers"]):
            inputs = config["input_size"] if layer == 0 else D * H
            for direction in range(D):
                for base in cls._description["parameters"] + cls._description["buffers"]:
                    if base.startswith("bias_") and not config.get("bias", False):
                        continue
                    rows = parameter_rows(class_name, base, H, gates)
                    shapes[parameter_name(base, layer, direction)] = (
                        (rows, inputs) if base == "weight_ih" else (rows, H) if base == "weight_hh" else (rows,))
        return shapes

    def parameter_count(self) -> int:
        """How many values training adjusts: the sizes of every parameter (not the buffers)."""
        return sum(array.size for array in self.grads.values())

    def _per_direction(self, arrays):
        """Per layer and direction: (weight_ih, weight_hh, bias_ih or None, bias_hh or None)."""
        return [tuple(arrays.get(parameter_name(base, layer, direction)) for base in _CORE_WEIGHTS)
                for layer in range(self.num_layers) for direction in range(self.num_directions)]

    def _batch_norm_per_direction(self, arrays):
        """The core's batch normalisation arrays per layer and direction (cells that have it)."""
        return []

    def _cell_core_arguments(self) -> dict:
        """The core constructor's keyword arguments for the cell's own options."""
        return {}

    def _make_core(self):
        return _CORE[self.dtype][0](
            self.input_size, self.hidden_size, self.num_layers, self.bidirectional, self.reset_after, self.bias,
            self._per_direction(self._params), self.dropout, self.recurrent_dropout, self.zoneout,
            self._description["cell"], reverse=self.reverse, merge=self.merge_mode or "concat",
            precision=self._precision, **self._cell_core_arguments(),
        )

    # ----------------------------------------------------------------------- reduced precision
    @property
    def precision(self) -> str:
        """The products' arithmetic: ``"full"`` (the layer's dtype), or ``"bf16"`` / ``"int8"`` for
        a layer made by :meth:`quantize`."""
        return self._precision

    def quantize(self, mode: str):
        """An inference-only copy of this layer whose products run in reduced precision
        (EQUATIONS.md §9); this layer is left as it is.

        Args:
            mode: ``"bf16"``: weights and each product's input rows (x, h, and r ⊙ h for
                reset-before) rounded to bfloat16, sums in float32. ``"int8"``: weights in int8
                with one scale per row, each product's input rows quantized to int8 with one
                scale per row at every step, sums in int32. Gates and states stay in float32.
        Returns:
            A layer of the same class and settings with :attr:`precision` ``mode``, taking the
            same inference calls (``q(x, h0, lengths=..., mask=...)``, ``q.step``), pickling,
            saving (its model file holds the weights quantized: README.md, "The model file");
            ``forward(train=True)`` refuses. Every cell (a batch-normalised one folds its
            running statistics into W_ih before quantizing it); float32 layers only.
        """
        if mode not in _PRECISIONS[1:]:
            raise ValueError(f"mode: expected one of {_PRECISIONS[1:]}, got {mode!r}")
        cls = type(self).__name__
        if self._precision != "full":
            raise ValueError(f"quantize: this {cls} is {self._precision} already; quantize the float32 layer it "
                             "was made from")
        if self.dtype != np.float32:
            raise ValueError(f"quantize: bf16 and int8 layers compute in float32; got a {self.dtype} {cls}: "
                             f"build a float32 one first: {cls}(**{{**layer.config(), 'dtype': 'float32'}}) "
                             "and load_state_dict(layer.state_dict())")
        # A copy as pickling makes it (own parameter arrays, fresh locks, cache and states),
        # whose one core is built in the new precision.
        state = self.__getstate__()
        state.update(_precision=mode, grads={name: np.zeros_like(array) for name, array in self.grads.items()})
        quantized = type(self).__new__(type(self))
        quantized.__setstate__(state)
        return quantized

    def _on_training_forward(self, core):
        """Runs after each training forward by ``core``, before the lock is released."""

    def _inference_core(self):
        """The core that inference calls run."""
        return self._core

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
        """A dict of copies of the parameters and buffers: name -> ndarray of the layer's dtype."""
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
            array = np.array(as_numeric_array(state[name], name, self.dtype), copy=True)
            if array.shape != shape:
                raise ValueError(f"load_state_dict: {name} expected shape {shape}, got {array.shape}")
            array.flags.writeable = False
            loaded[name] = array
        previous, self._params = self._params, loaded
        try:
            self._core = self._make_core()
        except Exception:
            # The core refused the values (a negative running variance, say): keep the old ones.
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

    @classmethod
    def _config_names(cls):
        """The settings :meth:`config` returns: the common ones the cell has, then its options."""
        description = cls._description
        return tuple(name for name in cls._SETTINGS
                     if (name != "bias" or description["has_bias_option"])
                     and (name != "reset_after" or description["has_reset_conventions"]))

    @classmethod
    def _file_fields(cls):
        """field -> :class:`fastgru.model_file.Field`: how a model file's configuration of this
        class is checked: :meth:`config`'s fields and ``precision``)."""
        fields = {name: _COMMON_FILE_FIELDS.get(name) or cls._OPTION_FIELDS[name] for name in cls._config_names()}
        # Not a constructor argument: a bf16 or int8 layer is the float32 one, quantized on load.
        return {**fields, "precision": model_file.PRECISION}

    def config(self) -> dict:
        """The constructor arguments that rebuild this layer (without its weights or seed)."""
        return {name: str(self.dtype) if name == "dtype" else getattr(self, name) for name in self._config_names()}

    def save(self, path) -> None:
        """Writes the weights and configuration to a ``.safetensors`` file; ``fastgru.load(path)``
        reads it back (see :mod:`fastgru.model_file`). A bf16 or int8 layer (:meth:`quantize`)
        writes its weights quantized, as it computes with them."""
        model_file.save_layer(self, path)

    def zero_grad(self) -> None:
        """Sets every accumulated gradient in :attr:`grads` to zero."""
        for array in self.grads.values():
            array.fill(0)

    # ----------------------------------------------------------------------- pickling
    def __getstate__(self):
        """Configuration, parameters, gradients and the mask generator; the core and the
        training cache are rebuilt on unpickling (a pending backward is not carried over)."""
        state = self.__dict__.copy()
        for transient in ("_core", "_cache", "_training_lock", "_saved", "_states", "_states_lock"):
            state.pop(transient, None)
        return state

    def __setstate__(self, state):
        # Layers pickled before reverse layers existed run forward in time.
        state = {"reverse": False, "merge_mode": "concat", "stateful": False, "_precision": "full", **state}
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
        self._states, self._states_lock = None, threading.Lock()

    # ----------------------------------------------------------------------- stateful use
    def reset_states(self, states=None) -> None:
        """A stateful layer's next call starts from ``states`` ((num_layers * D, B, H), or
        (num_layers * D, H) for unbatched calls), or from zeros when None (Keras's
        ``reset_states``)."""
        if not self.stateful:
            raise ValueError(f"reset_states: this {type(self).__name__} has stateful=False: each call starts from its h0")
        if states is not None:
            states = as_numeric_array(states, "states", self.dtype).copy()
            expected = self.num_layers * self.num_directions
            if states.ndim not in (2, 3) or states.shape[0] != expected or states.shape[-1] != self.hidden_size:
                raise ValueError(f"states: expected shape ({expected}, B, {self.hidden_size}) or ({expected}, "
                                 f"{self.hidden_size}), got {states.shape}")
        with self._states_lock:
            self._states = states

    def _carried(self, h0, batch, unbatched, h0_name):
        """The initial states of a stateful layer's call: h0 when given, else the states its
        last call left (checked against this call's batch), or None for zeros."""
        if h0 is not None or self._states is None:
            return h0
        rows = None if self._states.ndim == 2 else self._states.shape[1]
        if (rows is None) != unbatched or (rows is not None and rows != batch):
            carried = "one unbatched sequence" if rows is None else f"{rows} rows"
            given = "one unbatched sequence" if unbatched else f"{batch} rows"
            raise ValueError(f"{h0_name}: this stateful {type(self).__name__} carries the states of {carried} from its "
                             f"last call, and this call has {given}: call reset_states() to start again")
        return self._states

    @staticmethod
    def _batch_of(x, batch_first):
        """(batch, unbatched) of a sequence input as given (before any check: those come
        later, and name what is wrong)."""
        try:
            shape = np.shape(x)
        except ValueError:  # a ragged list: refused by the checks that follow
            return 0, False
        if len(shape) == 2:
            return 1, True
        return (shape[0] if batch_first else shape[1]) if len(shape) == 3 else 0, False

    # ----------------------------------------------------------------------- compute
    def _check_input(self, x, h0, lengths, x_name="x", h0_name="h0"):
        """The checked inputs in the core's batched form: ``(x, h0, lengths, steps, batch,
        unbatched)``; an unbatched x (T, I) and h0 (L*D, H) get a batch axis of 1."""
        x = as_array(x, x_name, "; pad them to the longest and give each one's real steps as lengths")
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
            h0 = as_numeric_array(h0, h0_name, self.dtype)
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
            lengths = as_array(lengths, "lengths")
            if lengths.dtype.kind not in "iu" or lengths.shape != (batch,):
                raise ValueError(f"lengths: expected {batch} integers (one per row), got {lengths.dtype} {lengths.shape}")
            bad = (lengths < 0) | (lengths > steps)
            if bad.any():
                row = int(np.argmax(bad))
                raise ValueError(f"lengths: expected values in 0..{steps} (T), got {lengths[row]} at row {row}")
            lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        return x, h0, lengths, steps, batch, unbatched

    @property
    def _batch_axis(self):
        return 0 if self.batch_first else 1

    def _unbatch(self, sequence, states):
        """A batch of one sequence back to the unbatched form: (T, ·) and (L*D, ·)."""
        return (sequence[0] if self.batch_first else sequence[:, 0]), states[:, 0]

    def _before_forward(self, train, steps, batch, lengths):
        """Runs before each forward reaches the core (a cell's own checks)."""

    def forward(self, x, h0=None, train: bool = True, lengths=None, mask=None) -> Tuple[np.ndarray, np.ndarray]:
        """Runs the network over a batch of sequences, or over one unbatched sequence.

        Args:
            x: (T, B, I), or (B, T, I) with ``batch_first``, of a real dtype (converted to the
                layer's dtype; any strides). A 2-D x (T, I) is one unbatched sequence, as in
                PyTorch.
            h0: (num_layers * D, B, H) initial states, or None for zeros (D = 2 if bidirectional);
                (num_layers * D, H) for an unbatched x.
            train: keep what :meth:`backward` needs (a bool).
            lengths: optional (B,) integers, the real steps of each row, in 0..T, any order (a
                row of no steps, as ONNX allows, outputs zeros and keeps its h0).
                Steps past a row's length cost nothing and give zero outputs; its final state is
                the state after its last real step, and the reverse direction starts there. Not
                for an unbatched x.
            mask: optional (T, B) booleans, (B, T) with ``batch_first``, (T,) for an unbatched x:
                False where a step is masked (Keras's masking): its row keeps its state and
                outputs it, in every layer, and backward carries the gradient through. Not with
                ``lengths``, nor in a batch-normalised cell's training forward.
        Returns:
            ``(y, h_n)`` in the layer's dtype: y (T, B, W) or (B, T, W), the last layer's
            outputs, W = :attr:`output_size` (D*H, the directions side by side, unless
            ``merge_mode`` merges them; with merge_mode None, (T, B, 2, H): forward, backward);
            h_n (num_layers * D, B, H), every layer's final states. For an unbatched x: y
            without its B axis and h_n (num_layers * D, H).
        """
        train = boolean(train, "train")
        if self.stateful:
            with self._states_lock:
                batch, unbatched = self._batch_of(x, self.batch_first)
                y, h_n = self._forward(x, self._carried(h0, batch, unbatched, "h0"), train, lengths, mask)
                self._states = h_n.copy()
            return y, h_n
        return self._forward(x, h0, train, lengths, mask)

    def _check_mask(self, mask, lengths, steps, batch, unbatched, train):
        """The mask as the core reads it: uint8, C-contiguous, laid out as x's first axes."""
        if lengths is not None:
            raise ValueError("mask: expected lengths or a mask, not both (a mask that is True then False is what "
                             "lengths say)")
        if train and self._description["normalises_inputs"]:
            raise ValueError(f"mask: a {type(self).__name__}'s training forward normalises over the batch's real "
                             "steps, which a mask does not say; give lengths instead")
        mask = np.asarray(mask)
        expected = (steps,) if unbatched else ((batch, steps) if self.batch_first else (steps, batch))
        if mask.dtype != np.bool_ or mask.shape != expected:
            raise ValueError(f"mask: expected a bool array of shape {expected}, got {mask.dtype} {mask.shape}")
        if unbatched:
            mask = np.expand_dims(mask, self._batch_axis)
        return np.ascontiguousarray(mask, dtype=np.uint8)

    def _forward(self, x, h0, train, lengths, mask=None):
        if not train and lengths is None and mask is None:
            # Fast path: arrays already in the core's form (see step) go straight to it.
            out = self._inference_core().try_forward(x, h0, self.batch_first)
            if out is not None:
                return self._apart(out[0]), out[1]
        x, h0, lengths, steps, batch, unbatched = self._check_input(x, h0, lengths)
        if mask is not None:
            mask = self._check_mask(mask, lengths, steps, batch, unbatched, train)
        self._before_forward(train, steps, batch, lengths)
        if train and self._precision != "full":
            raise ValueError(f"train: this {type(self).__name__}'s products run in {self._precision}, for inference "
                             "only (call it, or forward(..., train=False)); train the float32 layer, then quantize it")
        if not train:
            y, h_n = self._inference_core().forward(x, h0, lengths, self.batch_first, None, 0, mask)
        else:
            with self._training_lock:
                seed = int(self._mask_seeds.integers(2**63))
                # Read once: inference on other threads may replace self._core meanwhile.
                core = self._core
                y, h_n = core.forward(x, h0, lengths, self.batch_first, self._cache, seed, mask)
                self._saved = (core, steps, batch, unbatched)
                self._on_training_forward(core)
        y, h_n = self._unbatch(y, h_n) if unbatched else (y, h_n)
        return self._apart(y), h_n

    def _apart(self, y):
        """y with merge_mode None: the directions on an axis of their own, (..., 2, H)."""
        if self.merge_mode is None:
            return y.reshape(y.shape[:-1] + (2, self.hidden_size))
        return y

    def __call__(self, x, h0=None, lengths=None, mask=None) -> Tuple[np.ndarray, np.ndarray]:
        """Inference: ``forward(x, h0, train=False, lengths=lengths, mask=mask)``."""
        return self.forward(x, h0, train=False, lengths=lengths, mask=mask)

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
            A stateful layer given no h continues from the states its last call left.
        """
        if self.stateful:
            with self._states_lock:
                shape = np.shape(x_t)
                unbatched = len(shape) == 1
                carried = self._carried(h, 1 if unbatched else (shape[0] if shape else 0), unbatched, "h")
                if reset is not None and carried is not None and h is None:
                    carried = carried.copy()  # the reset rows are zeroed in a copy, not in place
                y_t, h_n = self._step(x_t, carried, reset)
                self._states = h_n.copy()
            return y_t, h_n
        return self._step(x_t, h, reset)

    def _step(self, x_t, h, reset):
        if reset is None:
            # Fast path: arrays already in the core's form (ndarrays of the layer's dtype,
            # C-contiguous, of the right shapes) go straight to it; anything else (None back)
            # takes the general path below, which converts or names what is wrong.
            out = self._inference_core().try_step(x_t, h)
            if out is not None:
                return out
        if self.bidirectional or self.reverse:
            kind = "bidirectional" if self.bidirectional else "reverse"
            raise ValueError(f"step: a {kind} {type(self).__name__} needs the whole sequence; call it on x instead")
        x_t = as_array(x_t, "x_t")
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
        D, H, W = self.num_directions, self.hidden_size, self.output_size
        y_shape = (batch, steps, W) if self.batch_first else (steps, batch, W)
        state_shape = (self.num_layers * D, batch, H)
        if unbatched:
            y_shape, state_shape = (steps, W), (self.num_layers * D, H)
        dy = as_numeric_array(dy, "dy", self.dtype)
        like_y = y_shape[:-1] + ((2, H) if self.merge_mode is None else (W,))
        if dy.shape != like_y:
            raise ValueError(f"dy: expected shape {like_y} (like y), got {dy.shape}")
        dy = dy.reshape(y_shape)
        if dh_n is not None:
            dh_n = as_numeric_array(dh_n, "dh_n", self.dtype)
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
