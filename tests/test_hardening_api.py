"""Nothing accepted that is then ignored: settings, parameters and conversions that the code
cannot honour are refused (or, when they only shape training, warned about), never dropped."""

import copy
import os
import pickle
import warnings

import numpy as np
import pytest

import fastgru
from fastgru.training import SGD, EarlyStopping, Model

from .helpers import normalised_error

CELLS = [fastgru.GRU, fastgru.MGU, fastgru.LiGRU]


def sequence_batch(layer, T=5, B=3, seed=0):
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    return np.random.default_rng(seed).standard_normal(shape).astype(layer.dtype)


# ------------------------------------------------------------------ 1. parameters and unknown names
@pytest.mark.parametrize("cell", CELLS)
def test_assigning_a_parameter_or_an_unknown_attribute_is_refused(cell):
    layer = cell(3, 4, seed=0)
    x = sequence_batch(layer)
    before = layer(x)[0]
    with pytest.raises(AttributeError, match=r"weight_hh_l0: .*load_state_dict"):
        layer.weight_hh_l0 = np.zeros_like(layer.weight_hh_l0)
    with pytest.raises(AttributeError, match=r"'bais_hh_l0'.*load_state_dict"):
        layer.bais_hh_l0 = 1
    with pytest.raises(AttributeError, match="grads"):
        layer.grads = {}
    with pytest.raises(AttributeError, match="hidden_size"):
        del layer.hidden_size
    assert "weight_hh_l0" not in vars(layer) and "bais_hh_l0" not in vars(layer)
    np.testing.assert_array_equal(layer(x)[0], before)
    layer.forward(x, train=True)  # the layer's own bookkeeping is still free to change

    for twin in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        np.testing.assert_array_equal(twin(x)[0], layer(x)[0])
        with pytest.raises(AttributeError, match="load_state_dict"):
            twin.weight_ih_l0 = layer.weight_ih_l0


@pytest.mark.parametrize("cell", CELLS)
def test_pickles_name_the_public_class(cell):
    """The path a pickle stores is ``fastgru.<class>``, whichever module defines the class."""
    assert f"cfastgru\n{cell.__name__}\n".encode() in pickle.dumps(cell(2, 3), protocol=0)


def test_layers_pickled_before_the_layers_package_still_load():
    """Written by fastgru 0.1.0 at commit 27d1764, whose pickles name ``fastgru.gru.<class>``: one
    layer per cell, a LiGRU whose running statistics a training forward moved, and their outputs
    on ``x``."""
    path = os.path.join(os.path.dirname(__file__), "data", "layers_pickled_before_the_layers_package.pickle")
    with open(path, "rb") as file:
        pickled = pickle.load(file)
    assert [type(layer) for layer in pickled["layers"]] == CELLS
    for layer, expected in zip(pickled["layers"], pickled["outputs"]):
        assert normalised_error(layer(pickled["x"])[0], expected) <= 1e-6  # written on another ISA, maybe
        layer.forward(pickled["x"], train=True)  # trains on after unpickling


# ------------------------------------------------------------------ 2. booleans are booleans
BOOLEAN_ARGUMENTS = [(fastgru.GRU, name) for name in ("bias", "batch_first", "bidirectional", "reset_after")] + [
    (fastgru.MGU, name) for name in ("bias", "batch_first", "bidirectional")] + [
    (fastgru.LiGRU, name) for name in ("batch_first", "bidirectional")]


@pytest.mark.parametrize("cell, name", BOOLEAN_ARGUMENTS, ids=str)
def test_boolean_constructor_arguments_must_be_booleans(cell, name):
    for value in ("False", "True", 0, 1, None):
        with pytest.raises(TypeError, match=f"{name}: expected a bool, got {type(value).__name__}"):
            cell(3, 4, **{name: value})
    layer = cell(3, 4, **{name: np.bool_(True)})
    assert getattr(layer, name) is True


def test_boolean_arguments_elsewhere_must_be_booleans(tmp_path):
    layer = fastgru.GRU(2, 3, batch_first=True, seed=0)
    x = sequence_batch(layer)
    with pytest.raises(TypeError, match="train: expected a bool, got str"):
        layer.forward(x, train="False")
    with pytest.raises(TypeError, match="initial_state: expected a bool, got str"):
        layer.to_onnx(tmp_path / "m.onnx", initial_state="yes")
    with pytest.raises(TypeError, match="lengths: expected a bool, got int"):
        layer.to_onnx(tmp_path / "m.onnx", lengths=1)
    model = Model(layer, outputs=1, seed=0)
    with pytest.raises(TypeError, match="shuffle: expected a bool, got str"):
        model.fit(x, np.zeros(3), epochs=1, verbose=0, shuffle="False")
    with pytest.raises(TypeError, match="nesterov: expected a bool, got str"):
        SGD(0.1, momentum=0.9, nesterov="False")
    with pytest.raises(TypeError, match="restore_best_weights: expected a bool, got str"):
        EarlyStopping(restore_best_weights="False")
    estimators = pytest.importorskip("fastgru.estimators")
    for name in ("bidirectional", "reset_after"):
        with pytest.raises(TypeError, match=f"{name}: expected a bool, got str"):
            estimators.GRURegressor(epochs=1, **{name: "False"}).fit(x, np.zeros(3))


# ------------------------------------------------------------------ 3. settings fixed at construction
OTHER_VALUES = dict(input_size=5, hidden_size=7, num_layers=2, bias=False, batch_first=True, dropout=0.5,
                    bidirectional=True, reset_after=False, dtype="float64", recurrent_dropout=0.5,
                    zoneout=0.5, activation="tanh", negative_slope=0.2, bn_momentum=0.5, bn_eps=1e-3,
                    gates="hidden", reverse=True, merge_mode="sum", stateful=True, clip=2.0)


@pytest.mark.parametrize("cell", CELLS)
def test_settings_are_fixed_after_construction(cell):
    layer = cell(3, 4, seed=0)
    config = layer.config()
    settings = [*config, "bias", "reset_after"]  # also those a class fixes (a LiGRU has no bias)
    for name in settings:
        with pytest.raises(AttributeError, match=f"{name}: fixed"):
            setattr(layer, name, OTHER_VALUES[name])
    assert layer.config() == config and pickle.loads(pickle.dumps(layer)).config() == config

    # what the message advises: a new layer with the other value, loaded with these weights
    with pytest.warns(UserWarning, match="dropout"):
        other = type(layer)(**{**layer.config(), "dropout": 0.5})
    other.load_state_dict(layer.state_dict())
    x = sequence_batch(layer)
    np.testing.assert_array_equal(other(x)[0], layer(x)[0])


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_with_one_layer_warns(cell):
    with pytest.warns(UserWarning, match=r"dropout=0.5 .*num_layers=1"):
        cell(3, 4, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cell(3, 4, num_layers=2, dropout=0.5)
        cell(3, 4)


# ------------------------------------------------------------------ 4. ONNX attributes
def onnx_gru_file(path, attributes=(), weights_as_inputs=False, bidirectional=False, second_node=None):
    """A plain ONNX model of one or two GRU nodes with random weights (W, R, B initializers or,
    with ``weights_as_inputs``, graph inputs)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    D, H, I = (2 if bidirectional else 1), 3, 2
    rng = np.random.default_rng(0)
    direction = "bidirectional" if bidirectional else "forward"
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I])]
    initializers, nodes, current = [], [], "X"
    for index, extra in enumerate([dict(attributes)] + ([second_node] if second_node is not None else [])):
        features = I if index == 0 else D * H
        weights = {f"W{index}": rng.standard_normal((D, 3 * H, features)),
                   f"R{index}": rng.standard_normal((D, 3 * H, H)),
                   f"B{index}": rng.standard_normal((D, 6 * H))}
        for name, value in weights.items():
            if weights_as_inputs:
                inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
            else:
                initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        nodes.append(helper.make_node("GRU", [current, *weights], [f"Y{index}", f"Y_h{index}"], hidden_size=H,
                                      direction=direction, **extra))
        nodes.append(helper.make_node("Transpose", [f"Y{index}"], [f"Y{index}_t"], perm=[0, 2, 1, 3]))
        initializers.append(numpy_helper.from_array(np.array([0, 0, D * H]), f"shape{index}"))
        nodes.append(helper.make_node("Reshape", [f"Y{index}_t", f"shape{index}"], [f"out{index}"]))
        current = f"out{index}"
    graph = helper.make_graph(nodes, "gru", inputs, [helper.make_tensor_value_info(current, TensorProto.FLOAT, None)],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = min(model.ir_version, 9)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("attributes, named", [
    (dict(clip=0.0), "clip"),
    (dict(clip=-1.0), "clip"),
    (dict(activations=["Tanh", "Tanh"]), "activations"),
    (dict(activations=["HardSigmoid", "Tanh"]), "activations"),
    (dict(activation_alpha=[0.5]), "activation_alpha"),
    (dict(activation_beta=[0.5]), "activation_beta"),
    (dict(layout=2), "layout"),
])
def test_from_onnx_refuses_attributes_it_cannot_compute(tmp_path, attributes, named):
    path = onnx_gru_file(tmp_path / "gru.onnx", attributes)
    with pytest.raises(ValueError, match=f"GRU node 0.* {named}"):
        fastgru.GRU.from_onnx(path)


def test_from_onnx_checks_every_node(tmp_path):
    path = onnx_gru_file(tmp_path / "gru.onnx", second_node=dict(clip=2.0))
    with pytest.raises(ValueError, match="GRU node 1.* clip"):
        fastgru.GRU.from_onnx(path)
    path = onnx_gru_file(tmp_path / "gru.onnx", second_node=dict(linear_before_reset=1))
    with pytest.raises(ValueError, match="GRU node 1.* linear_before_reset"):
        fastgru.GRU.from_onnx(path)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_from_onnx_accepts_the_default_activations_given_explicitly(tmp_path, bidirectional):
    ort = pytest.importorskip("onnxruntime")
    activations = ["Sigmoid", "Tanh"] * (2 if bidirectional else 1)
    path = onnx_gru_file(tmp_path / "gru.onnx", dict(activations=activations), bidirectional=bidirectional)
    layer = fastgru.GRU.from_onnx(path)
    x = np.random.default_rng(1).standard_normal((4, 2, 2)).astype(np.float32)
    (expected,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"X": x})
    assert normalised_error(layer(x)[0], expected) <= 1e-5


def test_from_onnx_names_weights_that_are_graph_inputs(tmp_path):
    path = onnx_gru_file(tmp_path / "gru.onnx", weights_as_inputs=True)
    with pytest.raises(ValueError, match=r"GRU node 0.* W \('W0'\) is not an initializer"):
        fastgru.GRU.from_onnx(path)


# ------------------------------------------------------------------ 5. Keras settings
@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def built_keras_gru(keras, bidirectional=False, **options):
    gru = keras.layers.GRU(3, return_sequences=True, return_state=True, **options)
    layer = keras.layers.Bidirectional(gru) if bidirectional else gru
    layer(np.zeros((2, 5, 4), np.float32))
    return layer


def keras_outputs(keras, keras_layer, x):
    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras_layer(x)]


@pytest.mark.parametrize("setting, value", [
    ("dropout", 0.25), ("kernel_regularizer", "l2"), ("recurrent_regularizer", "l1"), ("bias_regularizer", "l2"),
    ("activity_regularizer", "l2"), ("kernel_constraint", "non_neg"), ("recurrent_constraint", "max_norm"),
    ("bias_constraint", "unit_norm"),
])
def test_from_keras_warns_about_training_settings_it_cannot_carry(keras, setting, value):
    for bidirectional in (False, True):
        with pytest.warns(UserWarning, match=f"keras_layer: {setting}"):
            fastgru.GRU.from_keras(built_keras_gru(keras, bidirectional, **{setting: value}))


@pytest.mark.parametrize("setting, value", [
    ("activation", "relu"), ("recurrent_activation", "hard_sigmoid"), ("go_backwards", True),
])
def test_from_keras_refuses_settings_that_change_the_outputs(keras, setting, value):
    if setting == "go_backwards":  # a lone GRU running backward is a reverse layer (tests/test_keras.py)
        assert fastgru.GRU.from_keras(built_keras_gru(keras, **{setting: value})).reverse
    else:
        with pytest.raises(ValueError, match=f"keras_layer: {setting}"):
            fastgru.GRU.from_keras(built_keras_gru(keras, **{setting: value}))
    # in a Bidirectional, the forward layer's (Keras wants the two go_backwards different)
    forward = keras.layers.GRU(3, return_sequences=True, return_state=True, **{setting: value})
    backward = keras.layers.GRU(3, return_sequences=True, return_state=True, go_backwards=setting != "go_backwards")
    bidirectional = keras.layers.Bidirectional(forward, backward_layer=backward)
    bidirectional(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ValueError, match=f"keras_layer: {setting}"):
        fastgru.GRU.from_keras(bidirectional)


def test_from_keras_carries_recurrent_dropout_and_what_does_not_change_the_outputs(keras):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for options in (dict(recurrent_dropout=0.2), dict(use_bias=False), dict(unroll=True)):
            keras_layer = built_keras_gru(keras, bidirectional=True, **options)
            layer = fastgru.GRU.from_keras(keras_layer)
            assert layer.recurrent_dropout == options.get("recurrent_dropout", 0.0)
            assert layer.bias == options.get("use_bias", True)
            expected = keras_outputs(keras, keras_layer, x)
            assert normalised_error(layer(x)[0], expected[0]) <= 1e-5


# ------------------------------------------------------------------ 6. estimators: the fitted features
@pytest.mark.filterwarnings("ignore:GRU(Regressor|Classifier). training ended")  # 1 epoch: not to learn
def test_estimators_refuse_another_number_of_features():
    estimators = pytest.importorskip("fastgru.estimators")
    X = np.random.default_rng(0).standard_normal((16, 6, 3))
    for estimator, y in ((estimators.GRURegressor, X[:, -1, 0]), (estimators.GRUClassifier, X[:, -1, 0] > 0)):
        fitted = estimator(hidden_size=4, epochs=1, random_state=0).fit(X, y)
        name = estimator.__name__
        for other, count in ((X[:, :, :2], 2), (X[:, :, :1], 1), (X[:, :, 0], 1)):
            message = f"X has {count} features, but {name} is expecting 3 features as input"
            with pytest.raises(ValueError, match=message):
                fitted.predict(other)
        assert fitted.predict(X).shape == (16,)


# ------------------------------------------------------------------ 7. sequences of different lengths
@pytest.mark.filterwarnings("ignore:GRU(Regressor|Classifier). training ended")  # 1 epoch: not to learn
def test_sequences_of_different_lengths_point_at_lengths_and_padding():
    layer = fastgru.GRU(2, 3, batch_first=True, seed=0)
    ragged = [np.zeros((3, 2)), np.zeros((5, 2))]
    for call in (lambda: layer(ragged), lambda: layer.forward(ragged, train=True)):
        with pytest.raises(ValueError, match=r"x: .*different lengths.*pad.*lengths"):
            call()
    estimators = pytest.importorskip("fastgru.estimators")  # they take such lists (issue 19)
    assert estimators.GRURegressor(epochs=1, ensemble_size=1).fit(ragged, [0.0, 1.0]).predict(ragged).shape == (2,)
    fitted = estimators.GRURegressor(hidden_size=4, epochs=1, ensemble_size=1).fit(np.zeros((2, 5, 2)), [0.0, 1.0])
    assert fitted.predict(ragged).shape == (2,)


def test_model_takes_lists_of_sequences_of_different_lengths():
    model = Model(fastgru.GRU(2, 3, batch_first=True, dtype="float64", seed=0), outputs=1, seed=0)
    rng = np.random.default_rng(0)
    ragged = [rng.standard_normal((n, 2)) for n in (3, 5, 4)]
    model.fit(ragged, np.zeros(3), epochs=1, verbose=0)
    as_objects = np.empty(3, dtype=object)
    as_objects[:] = ragged
    expected = np.concatenate([model.predict(s[None]) for s in ragged])
    for X in (ragged, tuple(ragged), as_objects):
        np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12)


# ------------------------------------------------------------------ 8. one unbatched sequence
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_a_2d_x_is_one_unbatched_sequence(cell, batch_first):
    layer = cell(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    h0 = rng.standard_normal((4, 4))
    batched_x = x[None] if batch_first else x[:, None]
    y, h_n = layer(x, h0)
    assert y.shape == (6, 8) and h_n.shape == (4, 4)
    y_batched, h_n_batched = layer(batched_x, h0[:, None])
    np.testing.assert_array_equal(y, y_batched[0] if batch_first else y_batched[:, 0])
    np.testing.assert_array_equal(h_n, h_n_batched[:, 0])
    with pytest.raises(ValueError, match=r"h0: expected shape \(4, 4\)"):
        layer(x, h0[:, None])
    with pytest.raises(ValueError, match="lengths: .*one unbatched sequence"):
        layer(x, lengths=np.array([6]))

    if cell is fastgru.LiGRU:
        return  # a training forward normalises over the batch: one row differs from one row in a batch
    dy, dh_n = rng.standard_normal((6, 8)), rng.standard_normal((4, 4))
    layer.zero_grad()
    layer.forward(x, h0, train=True)
    dx, dh0 = layer.backward(dy, dh_n)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    layer.zero_grad()
    layer.forward(batched_x, h0[:, None], train=True)
    dx_batched, dh0_batched = layer.backward(dy[None] if batch_first else dy[:, None], dh_n[:, None])
    assert dx.shape == (6, 3) and dh0.shape == (4, 4)
    np.testing.assert_array_equal(dx, dx_batched[0] if batch_first else dx_batched[:, 0])
    np.testing.assert_array_equal(dh0, dh0_batched[:, 0])
    for name, grad in grads.items():
        np.testing.assert_array_equal(grad, layer.grads[name])
    layer.forward(x, h0, train=True)
    with pytest.raises(ValueError, match=r"dy: expected shape \(6, 8\)"):
        layer.backward(dy[None])


@pytest.mark.parametrize("cell", CELLS)
def test_step_takes_one_unbatched_input(cell):
    layer = cell(3, 4, num_layers=2, dtype="float64", seed=0)
    rng = np.random.default_rng(1)
    x_t, h = rng.standard_normal(3), rng.standard_normal((2, 4))
    y_t, h_next = layer.step(x_t, h)
    assert y_t.shape == (4,) and h_next.shape == (2, 4)
    y_batched, h_batched = layer.step(x_t[None], h[:, None])
    np.testing.assert_array_equal(y_t, y_batched[0])
    np.testing.assert_array_equal(h_next, h_batched[:, 0])
    np.testing.assert_array_equal(layer.step(x_t, h, reset=np.bool_(True))[1], layer.step(x_t)[1])
    with pytest.raises(ValueError, match=r"h: expected shape \(2, 4\)"):
        layer.step(x_t, h[:, None])
    with pytest.raises(ValueError, match=r"x_t: expected \(B, I\)"):
        layer.step(np.zeros((1, 1, 3)))


@pytest.mark.parametrize("head", ["last", "sequence"])
def test_model_predicts_one_prediction_for_a_2d_x(head):
    model = Model(fastgru.GRU(1, 4, batch_first=True, dtype="float64", seed=0), outputs=2, head=head, seed=0)
    X = np.random.default_rng(0).standard_normal((8, 12, 1))
    model.fit(X, np.zeros((8, 12, 2) if head == "sequence" else (8, 2)), epochs=1, verbose=0)
    one = model.predict(X[3])  # (T, F) = (12, 1): one sequence, as in PyTorch
    assert one.shape == ((12, 2) if head == "sequence" else (2,))
    np.testing.assert_array_equal(one, model.predict(X[3:4])[0])
    with pytest.raises(ValueError, match=r"X: .*one sequence.*\(samples, steps, 1\)"):
        model.fit(X[:, :, 0], np.zeros((8, 2)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"lengths: .*one unbatched sequence"):
        model.predict(X[3], lengths=np.array([5]))


# ------------------------------------------------------------------ review findings
def test_from_onnx_refuses_operators_beside_the_gru_stack(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    path = onnx_gru_file(tmp_path / "gru.onnx")
    model = onnx.load(path)
    scaled = helper.make_node("Mul", ["X", "X"], ["X_scaled"])  # x * x before the GRU
    model.graph.node.insert(0, scaled)
    model.graph.node[1].input[0] = "X_scaled"
    onnx.save(model, tmp_path / "mul.onnx")
    with pytest.raises(ValueError, match="is a Mul"):
        fastgru.GRU.from_onnx(tmp_path / "mul.onnx")


def test_from_onnx_refuses_gru_nodes_that_are_not_chained(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = onnx_gru_file(tmp_path / "two.onnx", second_node={})
    model = onnx.load(path)
    second = next(node for i, node in enumerate(n for n in model.graph.node if n.op_type == "GRU") if i == 1)
    second.input[0] = "X"  # the second GRU reads the graph's input, not the first one's output
    onnx.save(model, tmp_path / "parallel.onnx")
    with pytest.raises(ValueError, match="GRU node 1 reads 'X'"):
        fastgru.GRU.from_onnx(tmp_path / "parallel.onnx")


def test_from_keras_accepts_the_ops_spelling_of_its_activations(keras):
    keras_layer = built_keras_gru(keras, activation=keras.ops.tanh, recurrent_activation=keras.ops.sigmoid)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    assert normalised_error(fastgru.GRU.from_keras(keras_layer)(x)[0], keras_outputs(keras, keras_layer, x)[0]) <= 1e-5


def test_estimators_refuse_reset_after_for_cells_without_a_reset_gate():
    estimators = pytest.importorskip("fastgru.estimators")
    X = np.random.default_rng(0).standard_normal((8, 4, 2))
    with pytest.raises(ValueError, match="reset_after"):
        estimators.GRURegressor(cell="mgu", reset_after=False, epochs=1).fit(X, X[:, -1, 0])


def test_a_subclass_may_add_properties_with_setters():
    class Scaled(fastgru.GRU):
        @property
        def scale(self):
            return self._scale

        @scale.setter
        def scale(self, value):
            self._scale = float(value)

    layer = Scaled(2, 3)
    layer.scale = 2
    assert layer.scale == 2.0
    with pytest.raises(AttributeError):
        layer.dropout = 0.5


def test_an_optimizer_that_runs_inference_in_its_step_does_not_deadlock_a_ligru():
    import threading

    class Probing(SGD):
        def step(self, params, grads):
            model.predict(X[:2])  # inference inside the parameter update
            super().step(params, grads)

    X = np.random.default_rng(0).standard_normal((8, 4, 2)).astype(np.float32)
    model = Model(fastgru.LiGRU(2, 3, batch_first=True, seed=0), optimizer=Probing(0.01))
    fitted = threading.Thread(target=lambda: model.fit(X, X[:, -1, :1], epochs=1, verbose=0), daemon=True)
    fitted.start()
    fitted.join(timeout=60)
    assert not fitted.is_alive(), "fit deadlocked"
