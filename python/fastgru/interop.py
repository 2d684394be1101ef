"""Moving weights between fastgru and other frameworks, and fastgru's model file.

Gate orders and bias layouts differ between frameworks (``EQUATIONS.md`` §3); these
functions convert them, so that no user writes a converter by hand. Other frameworks are
imported only when their converter is called: none is a dependency.
"""

from __future__ import annotations

import contextlib
import json
import warnings

import numpy as np

from ._arguments import boolean
from .model_file import (FORMAT_VERSION, LAYER_CLASSES, check_layer_config, check_tensors, read_model_file, refusal,
                         write_model_file)

__all__ = ["load", "flip_update_gate"]

def _gru():
    from .gru import GRU

    return GRU


def _layer_class(name):
    from . import gru

    return getattr(gru, name)


def _require_gru(layer, converter):
    if type(layer).__name__ != "GRU":
        raise TypeError(f"{converter}: only GRU layers have a counterpart there, got {type(layer).__name__}")


def save(layer, path) -> None:
    """Writes ``layer``'s weights and configuration to a ``.safetensors`` file (see model_file)."""
    from . import __version__

    write_model_file(path, layer.state_dict(), {
        "format": "fastgru",
        "format_version": str(FORMAT_VERSION),
        "class": type(layer).__name__,
        "config": json.dumps(layer.config()),
        "fastgru_version": __version__,
    })


def load(path):
    """Reads a layer written by ``layer.save(path)`` (or a :class:`fastgru.Model` written by
    ``model.save(path)``): the same class, configuration and weights.

    Raises :class:`fastgru.model_file.ModelFileError` (a ValueError) for any file that is not a
    well-formed fastgru model file, before building anything (README.md, "The model file");
    OSError where the file cannot be opened.
    """
    tensors, metadata = read_model_file(path)
    refuse = refusal(path)
    class_name = metadata["class"]
    if class_name == "Model":
        from .training.model import Model

        return Model._from_file(path, tensors, metadata)
    if class_name not in LAYER_CLASSES:
        raise refuse(f"expected a layer class in {LAYER_CLASSES} or 'Model', got {class_name!r:.50}")
    layer_class, config, expected = layer_plan(class_name, metadata["config"], "config", refuse, len(tensors))
    check_tensors(tensors, expected, config["dtype"], refuse)
    with refused_as(refuse):
        layer = build_layer(layer_class, config)
        layer.load_state_dict(tensors)
    return layer


def layer_plan(class_name, text, what, refuse, tensor_count):
    """What a model file's layer configuration (JSON ``text``) builds, checked: (layer class,
    config, name -> shape of the tensors it needs), so that the tensors can be checked before
    anything is built."""
    config = check_layer_config(class_name, text, what, refuse)
    layer_class = _layer_class(class_name)
    needed = 2 * config["num_layers"] * (2 if config["bidirectional"] else 1)  # weights of each layer and direction
    if needed > tensor_count:
        raise refuse(f"{what} num_layers: {config['num_layers']} layers need at least {needed} tensors, "
                     f"the file has {tensor_count}")
    return layer_class, config, layer_class._parameter_shapes_of(config)


def build_layer(layer_class, config):
    """The layer of a checked file configuration. Its warnings were given when it was first
    built (e.g. dropout with one layer): loading it does not repeat them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return layer_class(**config)


@contextlib.contextmanager
def refused_as(refuse):
    """Turns what a constructor refuses in a model file (e.g. a negative running variance) into
    the file's error."""
    try:
        yield
    except ValueError as error:
        raise refuse(str(error)) from None


def flip_update_gate(state: dict) -> dict:
    """Converts weights between the update-gate forms ``h' = (1 − z) ⊙ n + z ⊙ h`` (fastgru,
    PyTorch, Keras, ONNX) and ``h' = (1 − z) ⊙ h + z ⊙ n`` (some texts): z ↦ 1 − z, i.e. the z
    rows of every ``weight_ih``, ``weight_hh``, ``bias_ih`` and ``bias_hh`` negated. Its own
    inverse; returns a new dict of NumPy arrays."""
    out = {}
    for name, value in state.items():
        array = np.array(value, copy=True)
        hidden = array.shape[0] // 3
        if name.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
            array[hidden : 2 * hidden] *= -1
        out[name] = array
    return out


def from_torch(module, seed=None):
    """A fastgru ``GRU`` with the configuration and weights of a ``torch.nn.GRU``."""
    import torch

    if not isinstance(module, torch.nn.GRU):
        raise TypeError(f"module: expected a torch.nn.GRU, got {type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise ValueError("module: GRUs with proj_size have no fastgru counterpart")
    dtype = next(module.parameters()).dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"module: expected float32 or float64 parameters, got {dtype}")
    layer = _gru()(
        module.input_size, module.hidden_size, num_layers=module.num_layers, bias=module.bias,
        batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional,
        dtype="float32" if dtype == torch.float32 else "float64", seed=seed,
    )
    layer.load_state_dict({k: v.detach().cpu().numpy() for k, v in module.state_dict().items()})
    return layer


def to_torch(layer):
    """A ``torch.nn.GRU`` with ``layer``'s configuration and weights (reset-after layers only:
    PyTorch has no reset-before GRU)."""
    import torch

    _require_gru(layer, "to_torch")
    if not layer.reset_after:
        raise ValueError("to_torch: torch.nn.GRU applies the reset gate after the recurrent "
                         "product; this layer has reset_after=False")
    if layer.recurrent_dropout or layer.zoneout:
        raise ValueError("to_torch: torch.nn.GRU has no recurrent_dropout or zoneout")
    module = torch.nn.GRU(layer.input_size, layer.hidden_size, num_layers=layer.num_layers,
                          bias=layer.bias, batch_first=layer.batch_first, dropout=layer.dropout,
                          bidirectional=layer.bidirectional,
                          dtype=torch.float32 if layer.dtype == np.float32 else torch.float64)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return module


def _to_onnx_gates(rows, hidden):
    """r, z, n row blocks (fastgru, PyTorch) -> z, r, h (ONNX); works on any leading axis."""
    r, z, n = rows[:hidden], rows[hidden : 2 * hidden], rows[2 * hidden :]
    return np.concatenate([z, r, n])


def _from_onnx_gates(rows, hidden):
    z, r, n = rows[:hidden], rows[hidden : 2 * hidden], rows[2 * hidden :]
    return np.concatenate([r, z, n])


def to_onnx(layer, path, initial_state=False, lengths=False, opset=14):
    """Writes ``layer`` as an ONNX model of standard ``GRU`` nodes (one per layer, both
    directions in one node), to run in ONNX Runtime or any ONNX backend.

    Inputs: ``x`` with the layer's layout ((T, B, I), or (B, T, I) with batch_first); with
    ``initial_state``, ``h0`` (L*D, B, H); with ``lengths``, ``lengths`` (B,) int64 (the GRU
    nodes' ``sequence_lens``). Outputs: ``y`` shaped like ``layer(x)[0]`` and ``h_n`` (L*D, B, H).
    The configuration is kept in the model's metadata for :func:`from_onnx`.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _require_gru(layer, "to_onnx")
    initial_state, lengths = boolean(initial_state, "initial_state"), boolean(lengths, "lengths")
    if layer.recurrent_dropout or layer.zoneout:
        raise ValueError("to_onnx: ONNX's GRU has no recurrent_dropout or zoneout")
    H, D, L = layer.hidden_size, layer.num_directions, layer.num_layers
    element = TensorProto.FLOAT if layer.dtype == np.float32 else TensorProto.DOUBLE
    state = layer.state_dict()
    nodes, initializers = [], []

    def constant(name, array):
        initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    inputs = [helper.make_tensor_value_info(
        "x", element, ["B", "T", layer.input_size] if layer.batch_first else ["T", "B", layer.input_size])]
    current = "x"
    if layer.batch_first:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_time_major"], perm=[1, 0, 2]))
        current = "x_time_major"
    sequence_lens = ""
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["B"]))
        nodes.append(helper.make_node("Cast", ["lengths"], ["sequence_lens"], to=TensorProto.INT32))
        sequence_lens = "sequence_lens"
    if initial_state:
        inputs.append(helper.make_tensor_value_info("h0", element, [L * D, "B", H]))
    final_states = []
    for l in range(L):
        suffixes = [f"_l{l}", f"_l{l}_reverse"][:D]
        W = np.stack([_to_onnx_gates(state[f"weight_ih{s}"], H) for s in suffixes])
        R = np.stack([_to_onnx_gates(state[f"weight_hh{s}"], H) for s in suffixes])
        gru_inputs = [current, constant(f"W{l}", W), constant(f"R{l}", R)]
        if layer.bias:
            B = np.stack([np.concatenate([_to_onnx_gates(state[f"bias_ih{s}"], H),
                                          _to_onnx_gates(state[f"bias_hh{s}"], H)]) for s in suffixes])
            gru_inputs.append(constant(f"B{l}", B))
        else:
            gru_inputs.append("")
        gru_inputs.append(sequence_lens)
        if initial_state:
            nodes.append(helper.make_node(
                "Slice", ["h0", constant(f"h0_start{l}", np.array([l * D])), constant(f"h0_end{l}", np.array([(l + 1) * D])),
                          constant(f"h0_axis{l}", np.array([0]))], [f"h0_l{l}"]))
            gru_inputs.append(f"h0_l{l}")
        while gru_inputs and gru_inputs[-1] == "":
            gru_inputs.pop()
        nodes.append(helper.make_node(
            "GRU", gru_inputs, [f"Y{l}", f"Y_h{l}"], hidden_size=H,
            direction="bidirectional" if D == 2 else "forward",
            linear_before_reset=1 if layer.reset_after else 0))
        # (T, D, B, H) -> (T, B, D*H): the directions side by side, as the next layer reads them.
        nodes.append(helper.make_node("Transpose", [f"Y{l}"], [f"Y{l}_tbdh"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"Y{l}_tbdh", constant(f"shape{l}", np.array([0, 0, D * H]))],
                                      [f"out{l}"]))
        current = f"out{l}"
        final_states.append(f"Y_h{l}")
    if layer.batch_first:
        nodes.append(helper.make_node("Transpose", [current], ["y"], perm=[1, 0, 2]))
    else:
        nodes.append(helper.make_node("Identity", [current], ["y"]))
    nodes.append(helper.make_node("Concat", final_states, ["h_n"], axis=0))
    y_shape = ["B", "T", D * H] if layer.batch_first else ["T", "B", D * H]
    outputs = [helper.make_tensor_value_info("y", element, y_shape),
               helper.make_tensor_value_info("h_n", element, [L * D, "B", H])]
    graph = helper.make_graph(nodes, "fastgru", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="fastgru")
    model.ir_version = min(model.ir_version, 9)  # readable by the ONNX Runtime releases in use
    from . import __version__

    helper.set_model_props(model, {"fastgru_class": "GRU", "fastgru_config": json.dumps(layer.config()),
                                   "fastgru_version": __version__})
    onnx.checker.check_model(model)
    onnx.save(model, path)


# ONNX GRU attributes with no fastgru counterpart: refused rather than ignored.
_ONNX_UNSUPPORTED = {
    "clip": "fastgru does not clip the gates' inputs",
    "activation_alpha": "fastgru's gate activations take no parameters",
    "activation_beta": "fastgru's gate activations take no parameters",
}
# The node's attribute or input behind each setting, for messages.
_ONNX_SOURCES = {"hidden_size": "hidden_size", "bidirectional": "direction", "reset_after": "linear_before_reset",
                 "bias": "input B"}


def _onnx_gru_settings(label, attributes, inputs, weights):
    """What one ONNX GRU node computes, as fastgru GRU settings (input_size, hidden_size,
    bidirectional, reset_after, bias, dtype); refuses what fastgru cannot compute. ``inputs``:
    the node's input names (X, W, R, B, sequence_lens, initial_h); ``weights``: the initializers."""
    for name, reason in _ONNX_UNSUPPORTED.items():
        if name in attributes:
            raise ValueError(f"{label} has {name}={attributes[name]!r}: {reason}")
    direction = attributes.get("direction", b"forward").decode()
    if direction not in ("forward", "bidirectional"):
        raise ValueError(f"{label} has direction {direction!r}: fastgru has 'forward' and 'bidirectional'")
    if attributes.get("layout", 0) != 0:
        raise ValueError(f"{label} has layout={attributes['layout']}: only time-major nodes (layout=0) are read")
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
            "bidirectional": direction == "bidirectional",
            "reset_after": bool(attributes.get("linear_before_reset", 0)), "bias": inputs[3] != "",
            "dtype": "float64" if W.dtype == np.float64 else "float32"}


def from_onnx(path):
    """A fastgru GRU from an ONNX model of chained GRU nodes: one written by :func:`to_onnx`
    (its configuration is in the metadata), or a plain stack of ONNX GRU nodes (forward or
    bidirectional, time-major) whose W, R and B are initializers.

    What fastgru cannot compute is refused (ValueError naming the node and the attribute or
    input), never ignored: ``clip``; ``activations`` other than the defaults (Sigmoid, Tanh
    for each direction; given explicitly they are fine); ``activation_alpha`` and
    ``activation_beta``; ``layout=1``; direction ``reverse``; W, R or B that are not
    initializers; ``sequence_lens`` or ``initial_h`` stored as constants; and nodes whose
    hidden size, direction, ``linear_before_reset`` or bias differ from the layer's.
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
    props = {p.key: p.value for p in model.metadata_props}
    if "fastgru_config" in props:
        config = json.loads(props["fastgru_config"])
    else:
        config = dict(node_settings[0], num_layers=len(grus))
    if config["num_layers"] != len(grus):
        raise ValueError(f"{path}: the metadata says num_layers={config['num_layers']}, but the model has "
                         f"{len(grus)} GRU nodes")
    for label, settings in zip(labels, node_settings):
        for name, source in _ONNX_SOURCES.items():
            if settings[name] != config[name]:
                raise ValueError(f"{label}: its {source} gives {name}={settings[name]}, but the layer has "
                                 f"{name}={config[name]} (from GRU node 0 or the metadata)")
    layer = _gru()(**config)
    H, D = layer.hidden_size, layer.num_directions
    state = {}
    for l, node in enumerate(grus):
        W, R = weights[node.input[1]], weights[node.input[2]]
        B = weights[node.input[3]] if layer.bias else None
        for d, suffix in enumerate([f"_l{l}", f"_l{l}_reverse"][:D]):
            state[f"weight_ih{suffix}"] = _from_onnx_gates(W[d], H)
            state[f"weight_hh{suffix}"] = _from_onnx_gates(R[d], H)
            if layer.bias:
                state[f"bias_ih{suffix}"] = _from_onnx_gates(B[d][: 3 * H], H)
                state[f"bias_hh{suffix}"] = _from_onnx_gates(B[d][3 * H :], H)
    layer.load_state_dict(state)
    return layer


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


def _keras_gru_state(gru, suffix, hidden):
    """fastgru weights of one direction from a keras.layers.GRU (column blocks z, r, h)."""
    weights = [np.asarray(w) for w in gru.get_weights()]
    kernel, recurrent = weights[0], weights[1]
    state = {
        f"weight_ih{suffix}": _from_onnx_gates(kernel.T, hidden),
        f"weight_hh{suffix}": _from_onnx_gates(recurrent.T, hidden),
    }
    if gru.use_bias:
        bias = weights[2]
        if gru.reset_after:
            state[f"bias_ih{suffix}"] = _from_onnx_gates(bias[0], hidden)
            state[f"bias_hh{suffix}"] = _from_onnx_gates(bias[1], hidden)
        else:  # Keras's reset-before GRU has an input bias only
            state[f"bias_ih{suffix}"] = _from_onnx_gates(bias, hidden)
            state[f"bias_hh{suffix}"] = np.zeros_like(bias)
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
                         "reversed sequence has no fastgru counterpart; reverse x instead)")
    if gru.stateful:
        raise ValueError(f"keras_layer: stateful=True{role}: each call of a fastgru layer starts from its h0 "
                         "(pass the previous call's h_n as h0 to carry the state on)")
    for name, reason in _KERAS_TRAINING_ONLY.items():
        value = getattr(gru, name, None)
        if value:
            shown = value if isinstance(value, float) else type(value).__name__  # a rate, or L2, NonNeg...
            warnings.warn(f"keras_layer: {name}={shown}{role} is not carried: {reason}", UserWarning, stacklevel=4)


def from_keras(keras_layer, seed=None):
    """A fastgru GRU (batch_first, like Keras) from ``keras.layers.GRU`` or
    ``keras.layers.Bidirectional(GRU)`` with merge_mode "concat", either ``reset_after``.

    Carried: the weights, ``use_bias``, ``reset_after`` and ``recurrent_dropout`` (fastgru's
    is the same variational dropout on the state fed to the recurrent products, with one mask
    for the three gates where Keras draws one per gate). Ignored as they do not change the
    outputs: ``unroll``, ``return_sequences``, ``return_state`` (fastgru returns both).
    Refused (ValueError naming the setting), as they change what is computed: activations other
    than tanh and sigmoid, ``go_backwards`` (but the backward layer of a Bidirectional), and
    ``stateful``. Warned about (UserWarning naming the setting), as they only shape training
    and have no fastgru counterpart: ``dropout`` (on the inputs), the regularizers and the
    constraints.
    """
    import keras

    bidirectional = isinstance(keras_layer, keras.layers.Bidirectional)
    if bidirectional:
        if keras_layer.merge_mode != "concat":
            raise ValueError(f"keras_layer: expected merge_mode 'concat', got {keras_layer.merge_mode!r}")
        directions = [keras_layer.forward_layer, keras_layer.backward_layer]
    elif isinstance(keras_layer, keras.layers.GRU):
        directions = [keras_layer]
    else:
        raise TypeError(f"keras_layer: expected keras.layers.GRU or Bidirectional(GRU), got {type(keras_layer).__name__}")
    first = directions[0]
    if not first.built:
        raise ValueError("keras_layer: build it first (call it once or give it an input shape)")
    roles = [" (forward layer)", " (backward layer)"] if bidirectional else [""]
    for gru, role, go_backwards in zip(directions, roles, (False, True)):
        _check_keras_gru(gru, go_backwards, role)
        for name in ("units", "use_bias", "reset_after", "recurrent_dropout"):
            if getattr(gru, name) != getattr(first, name):
                raise ValueError(f"keras_layer: {name}={getattr(gru, name)}{role}, but {getattr(first, name)} in the "
                                 "forward layer: a fastgru GRU has one for both directions")
    if bidirectional and keras_layer.activity_regularizer:
        warnings.warn(f"keras_layer: activity_regularizer={type(keras_layer.activity_regularizer).__name__} "
                      f"(Bidirectional) is not carried: {_KERAS_TRAINING_ONLY['activity_regularizer']}", UserWarning,
                      stacklevel=3)
    hidden = int(first.units)
    kernel = np.asarray(first.get_weights()[0])
    layer = _gru()(
        int(kernel.shape[0]), hidden, bias=bool(first.use_bias), batch_first=True,
        bidirectional=bidirectional, reset_after=bool(first.reset_after),
        dtype="float64" if kernel.dtype == np.float64 else "float32",
        recurrent_dropout=float(first.recurrent_dropout), seed=seed,
    )
    state = {}
    for d, gru in enumerate(directions):
        state.update(_keras_gru_state(gru, "_l0" + ("_reverse" if d else ""), hidden))
    layer.load_state_dict(state)
    return layer


def to_keras(layer):
    """A built ``keras.layers.GRU`` (or ``Bidirectional(GRU)``) with ``return_sequences`` and
    ``return_state`` and this layer's weights. Keras has no stacked GRU layer, and its
    reset-before GRU has no recurrent bias: such layers are refused."""
    _require_gru(layer, "to_keras")
    import keras

    H = layer.hidden_size
    if layer.num_layers != 1:
        raise ValueError("to_keras: Keras has no stacked GRU layer; this layer has num_layers="
                         f"{layer.num_layers}")
    if layer.zoneout:
        raise ValueError("to_keras: Keras's GRU has no zoneout")
    state = layer.state_dict()
    if layer.bias and not layer.reset_after:
        nonzero = [n for n in state if n.startswith("bias_hh") and np.any(state[n])]
        if nonzero:
            raise ValueError("to_keras: Keras's reset_after=False GRU has no recurrent bias, "
                             f"and {nonzero} are not zero")

    def make(suffix, backwards):
        gru = keras.layers.GRU(H, reset_after=layer.reset_after, use_bias=layer.bias,
                               return_sequences=True, return_state=True, go_backwards=backwards,
                               recurrent_dropout=layer.recurrent_dropout, dtype=str(layer.dtype))
        gru.build((None, None, layer.input_size))
        weights = [_to_onnx_gates(state[f"weight_ih{suffix}"], H).T,
                   _to_onnx_gates(state[f"weight_hh{suffix}"], H).T]
        if layer.bias:
            b_ih = _to_onnx_gates(state[f"bias_ih{suffix}"], H)
            b_hh = _to_onnx_gates(state[f"bias_hh{suffix}"], H)
            weights.append(np.stack([b_ih, b_hh]) if layer.reset_after else b_ih)
        gru.set_weights(weights)
        return gru

    if not layer.bidirectional:
        return make("_l0", False)
    forward, backward = make("_l0", False), make("_l0_reverse", True)
    wrapper = keras.layers.Bidirectional(forward, backward_layer=backward, merge_mode="concat")
    # Bidirectional rebuilds its layers from their configs: the weights go in after build.
    wrapper.build((None, None, layer.input_size))
    wrapper.forward_layer.set_weights(forward.get_weights())
    wrapper.backward_layer.set_weights(backward.get_weights())
    return wrapper
