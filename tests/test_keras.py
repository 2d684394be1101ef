"""Keras 3 round trips (run on its torch backend, the CPU build pinned for the tests)."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import fastgru  # noqa: E402

from .helpers import normalised_error  # noqa: E402


def keras_outputs(keras_layer, x):
    outputs = keras_layer(x)
    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in outputs]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_keras_to_fastgru_to_keras(reset_after, bidirectional):
    keras.utils.set_random_seed(int(reset_after) + 2 * int(bidirectional))
    gru = keras.layers.GRU(6, reset_after=reset_after, return_sequences=True, return_state=True,
                           bias_initializer="random_normal")
    keras_layer = keras.layers.Bidirectional(gru) if bidirectional else gru
    x = np.random.default_rng(0).standard_normal((3, 7, 4)).astype(np.float32)
    expected = keras_outputs(keras_layer, x)

    layer = fastgru.GRU.from_keras(keras_layer)
    assert layer.batch_first and layer.bidirectional == bidirectional and layer.reset_after == reset_after
    y, h_n = layer(x)
    assert normalised_error(y, expected[0]) <= 1e-5
    for d in range(layer.num_directions):
        assert normalised_error(h_n[d], expected[1 + d]) <= 1e-5

    back = layer.to_keras()
    for theirs, ours in zip(keras_outputs(back, x), expected):
        assert normalised_error(theirs, ours) <= 1e-5


def test_fastgru_to_keras_to_fastgru():
    layer = fastgru.GRU(5, 4, batch_first=True, seed=3)
    back = fastgru.GRU.from_keras(layer.to_keras())
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value)


def test_to_keras_refuses_what_keras_cannot_express():
    with pytest.raises(ValueError, match="stacked"):
        fastgru.GRU(2, 3, num_layers=2).to_keras()
    with pytest.raises(ValueError, match="recurrent bias"):
        fastgru.GRU(2, 3, reset_after=False, seed=0).to_keras()
    with pytest.raises(TypeError, match="keras.layers.GRU"):
        fastgru.GRU.from_keras(keras.layers.Dense(3))


@pytest.mark.parametrize("reset_after", [True, False])
def test_go_backwards_is_a_reverse_layer(reset_after):
    keras.utils.set_random_seed(5)
    gru = keras.layers.GRU(6, reset_after=reset_after, return_sequences=True, return_state=True, go_backwards=True,
                           bias_initializer="random_normal")
    x = np.random.default_rng(1).standard_normal((3, 7, 4)).astype(np.float32)
    expected_y, expected_h = keras_outputs(gru, x)
    layer = fastgru.GRU.from_keras(gru)
    assert layer.reverse and not layer.bidirectional
    y, h_n = layer(x)
    # Keras returns a backward layer's outputs in reversed order; fastgru's stay aligned with x.
    assert normalised_error(y[:, ::-1], expected_y) <= 1e-5
    assert normalised_error(h_n[0], expected_h) <= 1e-5
    back = layer.to_keras()
    assert back.go_backwards
    for theirs, ours in zip(keras_outputs(back, x), (expected_y, expected_h)):
        assert normalised_error(theirs, ours) <= 1e-5


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave", "concat", None])
def test_bidirectional_merge_modes_match_keras(merge_mode):
    keras.utils.set_random_seed(7)
    gru = keras.layers.GRU(5, return_sequences=True, return_state=True, bias_initializer="random_normal")
    keras_layer = keras.layers.Bidirectional(gru, merge_mode=merge_mode)
    x = np.random.default_rng(2).standard_normal((3, 6, 4)).astype(np.float32)
    expected = keras_outputs(keras_layer, x)
    layer = fastgru.GRU.from_keras(keras_layer)
    assert layer.merge_mode == merge_mode
    y, h_n = layer(x)
    if merge_mode is None:  # Keras gives the two directions' sequences apart
        assert y.shape == (3, 6, 2, 5)
        assert normalised_error(y[:, :, 0], expected[0]) <= 1e-5
        assert normalised_error(y[:, :, 1], expected[1]) <= 1e-5
    else:
        assert y.shape == (3, 6, layer.output_size) and normalised_error(y, expected[0]) <= 1e-5
    back = layer.to_keras()
    assert back.merge_mode == merge_mode
    for theirs, ours in zip(keras_outputs(back, x), expected):
        assert normalised_error(theirs, ours) <= 1e-5


def test_stateful_layers_carry_their_states_as_keras_does():
    keras.utils.set_random_seed(9)
    gru = keras.layers.GRU(5, return_sequences=True, return_state=True, stateful=True,
                           bias_initializer="random_normal")
    x = np.random.default_rng(3).standard_normal((2, 8, 4)).astype(np.float32)
    gru.build((2, None, 4))
    layer = fastgru.GRU.from_keras(gru)
    assert layer.stateful
    for chunk in (x[:, :3], x[:, 3:]):  # two calls continue one sequence
        expected_y, expected_h = keras_outputs(gru, chunk)
        y, h_n = layer(chunk)
        assert normalised_error(y, expected_y) <= 1e-5 and normalised_error(h_n[0], expected_h) <= 1e-5
    gru.reset_states()
    layer.reset_states()
    expected_y, _ = keras_outputs(gru, x[:, :3])
    assert normalised_error(layer(x[:, :3])[0], expected_y) <= 1e-5
    with pytest.raises(ValueError, match="to_keras: a stateful Keras GRU is built for one fixed batch size"):
        layer.to_keras()
