"""The gated recurrent unit, with both reset conventions (``EQUATIONS.md`` §1-§2), and its
counterparts in PyTorch, ONNX and Keras.

Gate orders and bias layouts differ between frameworks (``EQUATIONS.md`` §3); the converters
here translate them, so that no user writes one by hand. Other frameworks are imported only when
their converter is called: none is a dependency.
"""

from __future__ import annotations

import json
import numbers
import warnings
from typing import Optional

import numpy as np

from .. import model_file
from .._arguments import boolean, layer_dtype, one_of, real_number
from .._version import __version__
from .base import RecurrentLayer
from .cells import CELLS, gate_count, parameter_name

__all__ = ["GRU", "flip_update_gate"]

# Row blocks of the GRU's weights here and in PyTorch (r, z, n), and in ONNX and Keras (z, r, h).
_GATE_BLOCKS = CELLS["GRU"]["gate_blocks"]
# The forms of the gates (EQUATIONS.md §7), "full" first: the core's choices.
GATE_FORMS = tuple(CELLS["GRU"]["parameter_blocks"])
_ONNX_GATE_BLOCKS = ("z", "r", "n")
_ONNX_OPSET = 14  # of the models to_onnx writes


class GRU(RecurrentLayer):
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
        reverse: run the (single) direction backward in time, from each row's last real step
            to its first (ONNX ``direction="reverse"``, Keras ``go_backwards``); y[t] stays
            aligned with x[t] (Keras's go_backwards returns the outputs in reversed order: flip
            them along time to compare). Not with ``bidirectional``; no ``step``.
        merge_mode: what a bidirectional layer outputs (Keras Bidirectional's): ``"concat"``
            (the directions side by side, D*H features), ``"sum"``, ``"mul"``, ``"ave"`` (H
            features), or None (y (T, B, 2, H): forward, backward apart). Only the last layer's
            outputs are merged; stacked layers read both directions side by side.
        stateful: each call (and ``step`` without h) continues from the states the last call left
            (Keras's meaning), until :meth:`reset_states`; an explicit h0 starts from it. Gradients
            do not flow between calls. The C and C++ readers run the layer stateless (their
            stream carries the state).
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
        gates: the terms the gates r and z see (EQUATIONS.md §7, Dey & Salem 2017): ``"full"``
            (x, h and biases: the GRU), ``"hidden_bias"`` (h and biases, type 1), ``"hidden"``
            (h alone, type 2) or ``"bias"`` (biases alone, type 3: gates constant over time).
            Every form but ``"full"`` projects x onto the candidate alone (an input product of
            H columns instead of 3H), so it runs faster; its arrays have the shapes below.
        clip: None, or a number > 0: ONNX's ``clip`` (EQUATIONS.md §1.1), the pre-activations
            of r, z and n clipped to [-clip, clip] before the sigmoid and tanh; a clipped one
            passes no gradient. In a float32 layer the bound is clip rounded to float32, as in
            ONNX (whose attribute is a float32). PyTorch and Keras have no counterpart:
            ``to_torch`` and ``to_keras`` refuse such layers.
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
    The other forms of the gates keep the blocks of the terms they have, in the same order:
    ``weight_ih`` (H, ·) and ``bias_ih`` (H,) are the candidate's (W_in, b_in); ``weight_hh`` is
    (3H, H), or (H, H) = W_hn for ``"bias"``; ``bias_hh`` is (3H,), or (H,) = b_hn for
    ``"hidden"``. :meth:`parameter_count` counts them.
    Attribute access (``layer.weight_ih_l0``) returns a read-only view; change parameters with
    :meth:`load_state_dict`, so that the core's packed copy stays in step. Assigning a parameter
    (or any name the layer does not have, such as a misspelt one) is refused with an
    AttributeError rather than kept where nothing reads it.
    """

    __module__ = "fastgru"  # the path pickles name: stable however the package is laid out
    _description = CELLS["GRU"]
    # Files written before the forms existed hold full GRUs.
    _OPTION_FIELDS = {"gates": model_file.Field(", ".join(map(repr, GATE_FORMS)), lambda v: v in GATE_FORMS,
                                                absent_means="full"),
                      # ... and before clip existed, GRUs that clip nothing.
                      "clip": model_file.Field("a number > 0 or null",
                                               lambda v: v is None or _finite_positive(model_file.as_number(v)),
                                               number=True, absent_means=None)}
    _SETTINGS = RecurrentLayer._SETTINGS + tuple(_OPTION_FIELDS)

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
        gates: str = "full",
        reverse: bool = False,
        merge_mode="concat",
        stateful: bool = False,
        clip: Optional[float] = None,
    ):
        self.gates = one_of(gates, "gates", GATE_FORMS)
        self.clip = None if clip is None else real_number(clip, "clip", "a finite number > 0 or None", lambda v: v > 0)
        if self.clip is not None and layer_dtype(dtype) == np.float32:
            with np.errstate(over="ignore"):
                bound = np.float32(self.clip)
            if not (0 < bound < np.inf):
                raise ValueError(f"clip: a float32 layer clips at clip as a float32; expected a number that stays > 0 "
                                 f"and finite as one, got {clip!r}")
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, reset_after=reset_after, dtype=dtype,
                         seed=seed, recurrent_dropout=recurrent_dropout, zoneout=zoneout, reverse=reverse,
                         merge_mode=merge_mode, stateful=stateful)

    def _cell_core_arguments(self):
        return {"gates": self.gates, "clip": np.inf if self.clip is None else self.clip}

    def __setstate__(self, state):
        # Layers pickled before the forms of the gates (or clip) existed are full GRUs (that clip nothing).
        super().__setstate__({"gates": "full", "clip": None, **state})

    # ----------------------------------------------------------------------- PyTorch
    @classmethod
    def from_torch(cls, module, seed=None) -> "GRU":
        """A GRU with the configuration and weights of a ``torch.nn.GRU`` (any layers,
        directions, batch_first)."""
        import torch

        if not isinstance(module, torch.nn.GRU):
            raise TypeError(f"module: expected a torch.nn.GRU, got {type(module).__name__}")
        if getattr(module, "proj_size", 0):
            raise ValueError("module: GRUs with proj_size have no fastgru counterpart")
        dtype = next(module.parameters()).dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"module: expected float32 or float64 parameters, got {dtype}")
        layer = cls(
            module.input_size, module.hidden_size, num_layers=module.num_layers, bias=module.bias,
            batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional,
            dtype="float32" if dtype == torch.float32 else "float64", seed=seed,
        )
        layer.load_state_dict({k: v.detach().cpu().numpy() for k, v in module.state_dict().items()})
        return layer

    def to_torch(self):
        """A ``torch.nn.GRU`` with this layer's configuration and weights (reset-after layers
        only: PyTorch has no reset-before GRU)."""
        _require_gru(self, "to_torch")
        import torch

        if not self.reset_after:
            raise ValueError("to_torch: torch.nn.GRU applies the reset gate after the recurrent "
                             "product; this layer has reset_after=False")
        if self.recurrent_dropout or self.zoneout:
            raise ValueError("to_torch: torch.nn.GRU has no recurrent_dropout or zoneout")
        if self.clip is not None:
            raise ValueError(f"to_torch: torch.nn.GRU does not clip its pre-activations; this layer has clip={self.clip}")
        module = torch.nn.GRU(self.input_size, self.hidden_size, num_layers=self.num_layers,
                              bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                              bidirectional=self.bidirectional,
                              dtype=torch.float32 if self.dtype == np.float32 else torch.float64)
        module.load_state_dict({k: torch.from_numpy(v) for k, v in self.state_dict().items()})
        return module

    # ----------------------------------------------------------------------- ONNX
    def to_onnx(self, path, initial_state: bool = False, lengths: bool = False, layout: int = 0) -> None:
        """Writes the layer as an ONNX model of standard ``GRU`` nodes (one per layer, both
        directions in one node), to run in ONNX Runtime or any ONNX backend; a drop-in for
        ``layer(x)``. Needs the ``onnx`` package.

        Inputs: ``x`` with the layer's layout ((T, B, I), or (B, T, I) with batch_first); with
        ``initial_state``, ``h0`` (L*D, B, H); with ``lengths``, ``lengths`` (B,) int64 (the GRU
        nodes' ``sequence_lens``). Outputs: ``y`` shaped like ``layer(x)[0]`` and ``h_n``
        (L*D, B, H). The configuration is kept in the model's metadata for :meth:`from_onnx`.

        A layer's ``clip`` becomes the nodes' ``clip`` attribute, a float32 in ONNX: a float64
        layer's bound is rounded to float32 there (the metadata keeps it for :meth:`from_onnx`).

        ``layout``: the GRU nodes' own ``layout`` attribute, whatever the layer's: 0, time-major
        nodes (ONNX Runtime's CPU GRU runs only these); 1, batch-major nodes, for backends that
        prefer them (a batch_first layer's then need no Transpose around them). The graph's
        inputs and outputs are the same either way.
        """
        _require_gru(self, "to_onnx")
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        initial_state, lengths = boolean(initial_state, "initial_state"), boolean(lengths, "lengths")
        layout = _onnx_layout(layout)
        if self.recurrent_dropout or self.zoneout:
            raise ValueError("to_onnx: ONNX's GRU has no recurrent_dropout or zoneout")
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        element = TensorProto.FLOAT if self.dtype == np.float32 else TensorProto.DOUBLE
        nodes, initializers = [], []

        def constant(name, array):
            initializers.append(numpy_helper.from_array(np.asarray(array), name))
            return name

        inputs = [helper.make_tensor_value_info(
            "x", element, ["B", "T", self.input_size] if self.batch_first else ["T", "B", self.input_size])]
        current = "x"
        if self.batch_first != bool(layout):  # x into the nodes' layout
            nodes.append(helper.make_node("Transpose", ["x"], ["x_nodes_layout"], perm=[1, 0, 2]))
            current = "x_nodes_layout"
        sequence_lens = ""
        if lengths:
            inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["B"]))
            nodes.append(helper.make_node("Cast", ["lengths"], ["sequence_lens"], to=TensorProto.INT32))
            sequence_lens = "sequence_lens"
        if initial_state:
            inputs.append(helper.make_tensor_value_info("h0", element, [L * D, "B", H]))
        h0 = "h0" if initial_state else ""
        current, final_states = self._onnx_layers(current, sequence_lens, h0, nodes, constant, layout)
        if self.batch_first != bool(layout):
            nodes.append(helper.make_node("Transpose", [current], ["y"], perm=[1, 0, 2]))
        else:
            nodes.append(helper.make_node("Identity", [current], ["y"]))
        nodes.append(helper.make_node("Concat", final_states, ["h_n"], axis=0))
        y_shape = ["B", "T", D * H] if self.batch_first else ["T", "B", D * H]
        outputs = [helper.make_tensor_value_info("y", element, y_shape),
                   helper.make_tensor_value_info("h_n", element, [L * D, "B", H])]
        graph = helper.make_graph(nodes, "fastgru", inputs, outputs, initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _ONNX_OPSET)],
                                  producer_name="fastgru")
        model.ir_version = min(model.ir_version, 9)  # readable by the ONNX Runtime releases in use
        helper.set_model_props(model, {"fastgru_class": "GRU",
                                       "fastgru_config": json.dumps(model_file.file_config(self)),
                                       "fastgru_version": __version__})
        onnx.checker.check_model(model)
        onnx.save(model, path)

    def _onnx_layers(self, current, sequence_lens, h0, nodes, constant, layout=0):
        """Appends to ``nodes`` the ONNX GRU nodes of every layer, of the ``layout`` attribute
        given, reading ``current`` in that layout ((T, B, I) for 0, (B, T, I) for 1),
        ``sequence_lens`` (int32 (B,), or "") and ``h0`` (L*D, B, H, or "");
        ``constant(name, array)`` adds an initializer. Returns the name of the last layer's
        outputs ((T, B, D*H) or (B, T, D*H)) and the names of each layer's final states (D, B, H)."""
        if self.precision != "full":
            raise ValueError(f"to_onnx: this GRU's products run in {self.precision}, and ONNX's GRU computes in the "
                             "weights' float type; export the float32 layer it was quantized from")
        from onnx import helper

        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        state = self.state_dict()
        final_states = []
        for l in range(L):
            def stacked(*bases):
                """(D, ·): the directions' ``bases`` arrays in ONNX's gate order, concatenated."""
                return np.stack([np.concatenate([_to_onnx_gates(state[parameter_name(base, l, d)], H) for base in bases])
                                 for d in range(D)])

            gru_inputs = [current, constant(f"W{l}", stacked("weight_ih")), constant(f"R{l}", stacked("weight_hh"))]
            gru_inputs.append(constant(f"B{l}", stacked("bias_ih", "bias_hh")) if self.bias else "")
            gru_inputs.append(sequence_lens)
            if h0:
                nodes.append(helper.make_node(
                    "Slice", [h0, constant(f"h0_start{l}", np.array([l * D])),
                              constant(f"h0_end{l}", np.array([(l + 1) * D])), constant(f"h0_axis{l}", np.array([0]))],
                    [f"h0_l{l}"]))
                if layout:  # (D, B, H) -> the batch-major node's (B, D, H)
                    nodes.append(helper.make_node("Transpose", [f"h0_l{l}"], [f"h0_l{l}_bdh"], perm=[1, 0, 2]))
                gru_inputs.append(f"h0_l{l}_bdh" if layout else f"h0_l{l}")
            while gru_inputs and gru_inputs[-1] == "":
                gru_inputs.pop()
            nodes.append(helper.make_node(
                "GRU", gru_inputs, [f"Y{l}", f"Y_h{l}"], hidden_size=H,
                direction="bidirectional" if D == 2 else ("reverse" if self.reverse else "forward"),
                linear_before_reset=1 if self.reset_after else 0, **({"layout": 1} if layout else {}),
                **({} if self.clip is None else {"clip": self.clip})))
            if layout:
                # (B, T, D, H) -> (B, T, D*H): the directions side by side, as the next layer reads them.
                outputs = f"Y{l}"
                nodes.append(helper.make_node("Transpose", [f"Y_h{l}"], [f"Y_h{l}_dbh"], perm=[1, 0, 2]))
                final_states.append(f"Y_h{l}_dbh")
            else:
                # (T, D, B, H) -> (T, B, D*H)
                outputs = f"Y{l}_tbdh"
                nodes.append(helper.make_node("Transpose", [f"Y{l}"], [outputs], perm=[0, 2, 1, 3]))
                final_states.append(f"Y_h{l}")
            nodes.append(helper.make_node("Reshape", [outputs, constant(f"shape{l}", np.array([0, 0, D * H]))],
                                          [f"out{l}"]))
            current = f"out{l}"
        return current, final_states

    @classmethod
    def from_onnx(cls, path) -> "GRU":
        """A GRU from an ONNX model of chained GRU nodes: one written by :meth:`to_onnx` (its
        configuration is in the metadata), or a plain stack of ONNX GRU nodes (forward, reverse or
        bidirectional, time-major or batch-major) whose W, R and B are initializers.

        A plain stack of ``layout=1`` (batch-major) nodes gives a ``batch_first`` layer, of
        ``layout=0`` a time-major one: the layer takes the first node's X ((B, T, I) or
        (T, B, I)) as ``x``. Its outputs are the ONNX ones in fastgru's shapes: ``y`` (B, T, D*H)
        (time-major: (T, B, D*H)) is ONNX's Y (B, T, D, H) (time-major: (T, D, B, H)) with the
        directions side by side, and ``h_n`` (L*D, B, H) and ``h0`` (L*D, B, H) are, layer by
        layer, ONNX's Y_h and initial_h, (B, D, H) for layout=1 (``h.transpose(1, 0, 2)``),
        (D, B, H) for layout=0; ``lengths`` is ``sequence_lens``.

        A node's ``clip`` becomes the layer's ``clip``. What fastgru cannot compute is refused
        (ValueError naming the node and the attribute or input), never ignored: a ``clip`` that
        is not > 0; ``activations`` other than the defaults (Sigmoid, Tanh
        for each direction; given explicitly they are fine); ``activation_alpha`` and
        ``activation_beta``; a ``layout`` other than 0 or 1; W, R or B that are not
        initializers; ``sequence_lens`` or ``initial_h`` stored as constants; and nodes whose
        hidden size, direction, ``linear_before_reset``, bias, clip or layout differ from the layer's.
        """
        import onnx
        from onnx import numpy_helper

        model = onnx.load(path)
        weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        grus = [node for node in model.graph.node if node.op_type == "GRU"]
        if not grus:
            raise ValueError(f"{path}: no GRU node in the model")
        _check_onnx_chain(path, model.graph, grus)
        labels = [f"{path}: GRU node {i}" + (f" ({node.name!r})" if node.name else "") for i, node in enumerate(grus)]
        node_settings = [
            _onnx_gru_settings(label, {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute},
                               list(node.input), weights)
            for label, node in zip(labels, grus)]
        layouts = [settings.pop("layout") for settings in node_settings]
        for label, layout in zip(labels, layouts):
            if layout != layouts[0]:
                raise ValueError(f"{label} has layout={layout}, but GRU node 0 has layout={layouts[0]}: expected "
                                 "one layout for the whole stack")
        props = {p.key: p.value for p in model.metadata_props}
        if "fastgru_config" in props:  # the graph's inputs and outputs are in the layer's layout
            config = {"clip": None, **json.loads(props["fastgru_config"])}  # written before clip existed: none
        else:  # the graph reads the first node's X
            config = dict(node_settings[0], num_layers=len(grus), batch_first=layouts[0] == 1)
        if config["num_layers"] != len(grus):
            raise ValueError(f"{path}: the metadata says num_layers={config['num_layers']}, but the model has "
                             f"{len(grus)} GRU nodes")
        for label, settings in zip(labels, node_settings):
            for name, source in _ONNX_SOURCES.items():
                if not _same_onnx_setting(name, settings[name], config[name]):
                    raise ValueError(f"{label}: its {source} gives {name}={settings[name]}, but the layer has "
                                     f"{name}={config[name]} (from GRU node 0 or the metadata)")
        layer = cls(**config)
        H, G = layer.hidden_size, gate_count("GRU") * layer.hidden_size
        state = {}
        for l, node in enumerate(grus):
            W, R = weights[node.input[1]], weights[node.input[2]]
            B = weights[node.input[3]] if layer.bias else None
            for d in range(layer.num_directions):
                state[parameter_name("weight_ih", l, d)] = _from_onnx_gates(W[d], H)
                state[parameter_name("weight_hh", l, d)] = _from_onnx_gates(R[d], H)
                if layer.bias:
                    state[parameter_name("bias_ih", l, d)] = _from_onnx_gates(B[d][:G], H)
                    state[parameter_name("bias_hh", l, d)] = _from_onnx_gates(B[d][G:], H)
        layer.load_state_dict(state)
        return layer

    # ----------------------------------------------------------------------- Keras
    @classmethod
    def from_keras(cls, keras_layer, seed=None) -> "GRU":
        """A GRU (batch_first, like Keras) from ``keras.layers.GRU`` or
        ``keras.layers.Bidirectional(GRU)`` (any ``merge_mode``, carried), either ``reset_after``.
        A GRU with ``go_backwards=True`` becomes a ``reverse=True`` layer, whose outputs are
        aligned with the input steps: Keras returns them in reversed order (``y[:, ::-1]``).

        Carried: the weights, ``use_bias``, ``reset_after`` and ``recurrent_dropout`` (fastgru's
        is the same variational dropout on the state fed to the recurrent products, with one mask
        for the three gates where Keras draws one per gate). Ignored as they do not change the
        outputs: ``unroll``, ``return_sequences``, ``return_state`` (fastgru returns both).
        Refused (ValueError naming the setting), as they change what is computed: activations
        other than tanh and sigmoid and ``go_backwards`` in a Bidirectional's forward layer.
        ``stateful`` is carried (a stateful fastgru layer). Warned about (UserWarning naming the setting), as they
        only shape training and have no fastgru counterpart: ``dropout`` (on the inputs), the
        regularizers and the constraints.
        """
        import keras

        bidirectional = isinstance(keras_layer, keras.layers.Bidirectional)
        if bidirectional:
            directions = [keras_layer.forward_layer, keras_layer.backward_layer]
        elif isinstance(keras_layer, keras.layers.GRU):
            directions = [keras_layer]
        else:
            raise TypeError("keras_layer: expected keras.layers.GRU or Bidirectional(GRU), got "
                            f"{type(keras_layer).__name__}")
        first = directions[0]
        if not first.built:
            raise ValueError("keras_layer: build it first (call it once or give it an input shape)")
        roles = [" (forward layer)", " (backward layer)"] if bidirectional else [""]
        # A lone GRU may run either way; a Bidirectional's halves run one each.
        expected_backwards = (False, True) if bidirectional else (bool(first.go_backwards),)
        for gru, role, go_backwards in zip(directions, roles, expected_backwards):
            _check_keras_gru(gru, go_backwards, role)
            for name in ("units", "use_bias", "reset_after", "recurrent_dropout"):
                if getattr(gru, name) != getattr(first, name):
                    raise ValueError(f"keras_layer: {name}={getattr(gru, name)}{role}, but {getattr(first, name)} in "
                                     "the forward layer: a fastgru GRU has one for both directions")
        if bidirectional and keras_layer.activity_regularizer:
            warnings.warn(f"keras_layer: activity_regularizer={type(keras_layer.activity_regularizer).__name__} "
                          f"(Bidirectional) is not carried: {_KERAS_TRAINING_ONLY['activity_regularizer']}",
                          UserWarning, stacklevel=2)
        hidden = int(first.units)
        kernel = np.asarray(first.get_weights()[0])
        layer = cls(
            int(kernel.shape[0]), hidden, bias=bool(first.use_bias), batch_first=True,
            bidirectional=bidirectional, reverse=not bidirectional and bool(first.go_backwards),
            merge_mode=keras_layer.merge_mode if bidirectional else "concat", stateful=bool(first.stateful),
            reset_after=bool(first.reset_after),
            dtype="float64" if kernel.dtype == np.float64 else "float32",
            recurrent_dropout=float(first.recurrent_dropout), seed=seed,
        )
        state = {}
        for d, gru in enumerate(directions):
            state.update(_keras_gru_state(gru, d, hidden))
        layer.load_state_dict(state)
        return layer

    def to_keras(self):
        """A built ``keras.layers.GRU`` (``Bidirectional`` when bidirectional; ``go_backwards``
        when reverse, returning its outputs in reversed order) with ``return_sequences`` and
        ``return_state`` and this layer's weights. Keras has no stacked
        GRU layer, and its reset-before GRU has no recurrent bias: such layers are refused."""
        _require_gru(self, "to_keras")
        if self.clip is not None:
            raise ValueError(f"to_keras: Keras's GRU does not clip its pre-activations; this layer has clip={self.clip}")
        import keras

        H = self.hidden_size
        if self.num_layers != 1:
            raise ValueError(f"to_keras: Keras has no stacked GRU layer; this layer has num_layers={self.num_layers}")
        if self.zoneout:
            raise ValueError("to_keras: Keras's GRU has no zoneout")
        if self.stateful:
            raise ValueError("to_keras: a stateful Keras GRU is built for one fixed batch size, which this layer "
                             "does not have; convert a copy with stateful=False and build it stateful in Keras")
        state = self.state_dict()
        if self.bias and not self.reset_after:
            nonzero = [n for n in state if n.startswith("bias_hh") and np.any(state[n])]
            if nonzero:
                raise ValueError("to_keras: Keras's reset_after=False GRU has no recurrent bias, "
                                 f"and {nonzero} are not zero")

        def make(direction):
            gru = keras.layers.GRU(H, reset_after=self.reset_after, use_bias=self.bias,
                                   return_sequences=True, return_state=True,
                                   go_backwards=direction == 1 or self.reverse,
                                   recurrent_dropout=self.recurrent_dropout, dtype=str(self.dtype))
            gru.build((None, None, self.input_size))

            def columns(base):
                return _to_onnx_gates(state[parameter_name(base, 0, direction)], H)

            weights = [columns("weight_ih").T, columns("weight_hh").T]
            if self.bias:
                weights.append(np.stack([columns("bias_ih"), columns("bias_hh")]) if self.reset_after
                               else columns("bias_ih"))
            gru.set_weights(weights)
            return gru

        if not self.bidirectional:
            return make(0)
        forward, backward = make(0), make(1)
        wrapper = keras.layers.Bidirectional(forward, backward_layer=backward, merge_mode=self.merge_mode)
        # Bidirectional rebuilds its layers from their configs: the weights go in after build.
        wrapper.build((None, None, self.input_size))
        wrapper.forward_layer.set_weights(forward.get_weights())
        wrapper.backward_layer.set_weights(backward.get_weights())
        return wrapper


def _finite_positive(value) -> bool:
    return value is not None and bool(np.isfinite(value)) and value > 0


def _require_gru(layer, converter):
    """Refuses another kind of layer handed to a GRU converter (``GRU.to_torch(other)``), and
    the forms of the gates that no other framework has."""
    if not isinstance(layer, GRU):
        raise TypeError(f"{converter}: only GRU layers have a counterpart there, got {type(layer).__name__}")
    if layer.gates != "full":
        raise ValueError(f"{converter}: only GRUs with gates='full' have a counterpart there, got gates={layer.gates!r}")


def flip_update_gate(state: dict) -> dict:
    """Converts GRU weights between the update-gate forms ``h' = (1 − z) ⊙ n + z ⊙ h``
    (fastgru, PyTorch, Keras, ONNX) and ``h' = (1 − z) ⊙ h + z ⊙ n`` (some texts): z ↦ 1 − z,
    i.e. the z rows of every ``weight_ih``, ``weight_hh``, ``bias_ih`` and ``bias_hh`` negated.
    Its own inverse; returns a new dict of NumPy arrays. For the other forms of the gates
    (``gates``), the arrays of H rows hold no z and are left as they are."""
    z = _GATE_BLOCKS.index("z")
    # H from the recurrent weights where the state has them (every form's are (·, H)).
    hiddens = {np.shape(value)[1] for name, value in state.items() if name.startswith("weight_hh") and np.ndim(value) == 2}
    state_hidden = hiddens.pop() if len(hiddens) == 1 else None
    out = {}
    for name, value in state.items():
        array = np.array(value, copy=True)
        hidden = state_hidden or array.shape[0] // gate_count("GRU")
        if name.startswith(CELLS["GRU"]["parameters"]) and array.shape[0] == gate_count("GRU") * hidden:
            array[z * hidden : (z + 1) * hidden] *= -1
        out[name] = array
    return out


def _reorder_gates(rows, hidden, source, target):
    """``rows`` (any trailing axes) with its row blocks of ``hidden`` rows reordered from the
    gate order ``source`` to ``target``."""
    blocks = {gate: rows[index * hidden : (index + 1) * hidden] for index, gate in enumerate(source)}
    return np.concatenate([blocks[gate] for gate in target])


def _to_onnx_gates(rows, hidden):
    """r, z, n row blocks (fastgru, PyTorch) -> z, r, h (ONNX, Keras's columns)."""
    return _reorder_gates(rows, hidden, _GATE_BLOCKS, _ONNX_GATE_BLOCKS)


def _from_onnx_gates(rows, hidden):
    return _reorder_gates(rows, hidden, _ONNX_GATE_BLOCKS, _GATE_BLOCKS)


# ONNX GRU attributes with no fastgru counterpart: refused rather than ignored.
_ONNX_UNSUPPORTED = {
    "activation_alpha": "fastgru's gate activations take no parameters",
    "activation_beta": "fastgru's gate activations take no parameters",
}
# The node's attribute or input behind each setting, for messages.
_ONNX_SOURCES = {"hidden_size": "hidden_size", "bidirectional": "direction", "reverse": "direction",
                 "reset_after": "linear_before_reset", "bias": "input B", "clip": "clip"}


def _onnx_gru_settings(label, attributes, inputs, weights):
    """What one ONNX GRU node computes, as fastgru GRU settings (input_size, hidden_size,
    bidirectional, reset_after, bias, clip, dtype) and its layout; refuses what fastgru cannot compute. ``inputs``:
    the node's input names (X, W, R, B, sequence_lens, initial_h); ``weights``: the initializers."""
    for name, reason in _ONNX_UNSUPPORTED.items():
        if name in attributes:
            raise ValueError(f"{label} has {name}={attributes[name]!r}: {reason}")
    clip = attributes.get("clip")
    if clip is not None and not (type(clip) is float and np.isfinite(clip) and clip > 0):
        raise ValueError(f"{label} has clip={clip!r}: expected a finite FLOAT > 0 (the bound of the pre-activations)")
    direction = attributes.get("direction", b"forward").decode()
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"{label} has direction {direction!r}: expected 'forward', 'reverse' or 'bidirectional'")
    layout = attributes.get("layout", 0)
    if layout not in (0, 1):
        raise ValueError(f"{label} has layout={layout}: expected 0 (time-major) or 1 (batch-major)")
    defaults = ["Sigmoid", "Tanh"] * (2 if direction == "bidirectional" else 1)
    activations = [a.decode() for a in attributes.get("activations", [])]
    if activations and activations != defaults:
        raise ValueError(f"{label} has activations {activations}: fastgru computes the defaults, {defaults}")
    inputs = inputs + [""] * (6 - len(inputs))
    for role, name in zip(("W", "R", "B"), inputs[1:4]):
        if name and name not in weights:
            raise ValueError(f"{label}: its input {role} ({name!r}) is not an initializer (a graph input or a "
                             "computed value); from_onnx reads the weights stored in the model as initializers")
    for role, argument, name in zip(("sequence_lens", "initial_h"), ("lengths", "h0"), inputs[4:]):
        if name in weights:
            raise ValueError(f"{label}: its input {role} ({name!r}) is a constant of the model; a fastgru layer "
                             f"takes it with each call: pass it as {argument}")
    W, R = weights[inputs[1]], weights[inputs[2]]
    return {"input_size": int(W.shape[2]), "hidden_size": int(attributes.get("hidden_size", R.shape[2])),
            "bidirectional": direction == "bidirectional", "reverse": direction == "reverse",
            "reset_after": bool(attributes.get("linear_before_reset", 0)), "bias": inputs[3] != "", "clip": clip,
            "dtype": "float64" if W.dtype == np.float64 else "float32", "layout": layout}


def _same_onnx_setting(name, node_value, layer_value) -> bool:
    """Whether a node's setting is the layer's; a clip as the float32 that ONNX's attribute holds."""
    if name == "clip" and node_value is not None and layer_value is not None:
        return np.float32(node_value) == np.float32(layer_value)
    return node_value == layer_value


def _onnx_layout(value):
    """The ``layout`` argument of to_onnx: 0 (time-major GRU nodes) or 1 (batch-major)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in (0, 1):
        raise ValueError(f"layout: expected 0 (time-major GRU nodes, which ONNX Runtime runs) or 1 (batch-major "
                         f"nodes), got {value!r}")
    return int(value)


# Nodes that only move a GRU stack's data around (layouts, directions side by side, the lengths'
# type, the initial state's slices): what to_onnx writes around its GRU nodes.
_ONNX_LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Identity", "Concat", "Cast", "Slice"}


def _check_onnx_chain(path, graph, grus):
    """Refuses a graph that computes more than its stack of GRU nodes: another operator anywhere,
    or a GRU whose input is not the previous GRU's output (the graph's input for the first),
    reached through layout nodes only."""
    for node in graph.node:
        if node.op_type not in _ONNX_LAYOUT_OPS | {"GRU"}:
            raise ValueError(f"{path}: node {node.name or node.output[0]!r} is a {node.op_type}: from_onnx reads "
                             f"a stack of GRU nodes and the layout nodes around them ({sorted(_ONNX_LAYOUT_OPS)}), "
                             "and would ignore it")
    producers = {output: node for node in graph.node for output in node.output}
    graph_inputs = {value.name for value in graph.input}
    for index, gru in enumerate(grus):
        source = gru.input[0]
        while source in producers and producers[source].op_type != "GRU":
            source = producers[source].input[0]
        expected = "the graph's input" if index == 0 else f"GRU node {index - 1}'s output"
        found = source in graph_inputs if index == 0 else source == grus[index - 1].output[0]
        if not found:
            raise ValueError(f"{path}: GRU node {index} reads {source!r}, expected {expected} through layout nodes")


def _keras_gru_state(gru, direction, hidden):
    """fastgru weights of one direction from a keras.layers.GRU (column blocks z, r, h)."""
    weights = [np.asarray(w) for w in gru.get_weights()]
    kernel, recurrent = weights[0], weights[1]
    state = {
        parameter_name("weight_ih", 0, direction): _from_onnx_gates(kernel.T, hidden),
        parameter_name("weight_hh", 0, direction): _from_onnx_gates(recurrent.T, hidden),
    }
    if gru.use_bias:
        bias = weights[2]
        bias_ih, bias_hh = parameter_name("bias_ih", 0, direction), parameter_name("bias_hh", 0, direction)
        if gru.reset_after:
            state[bias_ih] = _from_onnx_gates(bias[0], hidden)
            state[bias_hh] = _from_onnx_gates(bias[1], hidden)
        else:  # Keras's reset-before GRU has an input bias only
            state[bias_ih] = _from_onnx_gates(bias, hidden)
            state[bias_hh] = np.zeros_like(bias)
    return state


# Keras GRU settings that only shape training and have no fastgru counterpart: warned about.
_KERAS_TRAINING_ONLY = {
    "dropout": "fastgru's GRU has no dropout on its inputs (its dropout acts between stacked layers)",
    "kernel_regularizer": "fastgru adds no penalty to the loss (an optimizer's weight_decay is the nearest)",
    "recurrent_regularizer": "fastgru adds no penalty to the loss (an optimizer's weight_decay is the nearest)",
    "bias_regularizer": "fastgru adds no penalty to the loss (an optimizer's weight_decay is the nearest)",
    "activity_regularizer": "fastgru adds no penalty to the loss",
    "kernel_constraint": "fastgru's optimizers do not project the weights",
    "recurrent_constraint": "fastgru's optimizers do not project the weights",
    "bias_constraint": "fastgru's optimizers do not project the weights",
}


def _check_keras_gru(gru, go_backwards, role):
    """Refuses the settings of one Keras GRU (``role``: which one, for messages) that would
    change what it computes, and warns about those that only shape training."""
    import keras

    for name, expected, same in (("activation", keras.activations.tanh, keras.ops.tanh),
                                 ("recurrent_activation", keras.activations.sigmoid, keras.ops.sigmoid)):
        function = getattr(gru, name)
        if function is not expected and function is not same:
            raise ValueError(f"keras_layer: {name} {getattr(function, '__name__', function)!r}{role}: fastgru's GRU "
                             f"computes {expected.__name__}")
    if gru.go_backwards != go_backwards:
        raise ValueError(f"keras_layer: go_backwards={gru.go_backwards}{role}: expected {go_backwards} (a "
                         "Bidirectional's forward layer runs forward in time, its backward layer backward)")
    for name, reason in _KERAS_TRAINING_ONLY.items():
        value = getattr(gru, name, None)
        if value:
            shown = value if isinstance(value, float) else type(value).__name__  # a rate, or L2, NonNeg...
            warnings.warn(f"keras_layer: {name}={shown}{role} is not carried: {reason}", UserWarning, stacklevel=3)
