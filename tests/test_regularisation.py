"""Dropout between layers, recurrent (variational) dropout and zoneout: inference semantics,
reproducible masks, and BPTT against central differences with the masks fixed by the seed."""

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import central_difference, normalised_error

RATES = dict(dropout=0.3, recurrent_dropout=0.25, zoneout=0.2)


def make_layer(seed=3, reset_after=True, **kwargs):
    config = dict(num_layers=2, bidirectional=True, dtype="float64", seed=seed, reset_after=reset_after)
    config.update(kwargs)
    return fastgru.GRU(3, 4, **config)


def test_inference_ignores_dropouts():
    plain = make_layer()
    regularised = make_layer(dropout=0.5, recurrent_dropout=0.5)
    regularised.load_state_dict(plain.state_dict())
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    for a, b in zip(plain(x), regularised(x)):
        np.testing.assert_array_equal(a, b)


def test_zoneout_inference_is_the_expectation():
    p = 0.3
    layer = fastgru.GRU(3, 5, zoneout=p, dtype="float64", seed=1)
    x = np.random.default_rng(1).standard_normal((7, 2, 3))
    y, h_n = layer(x)
    params = layer.state_dict()
    h = np.zeros((2, 5))
    for t in range(7):
        _, h_new, _ = reference.gru_forward(x[t : t + 1], h, params["weight_ih_l0"], params["weight_hh_l0"],
                                            params["bias_ih_l0"], params["bias_hh_l0"])
        h = p * h + (1 - p) * h_new
        assert normalised_error(y[t], h) <= 1e-12
    assert normalised_error(h_n[0], h) <= 1e-12


def test_training_masks_are_reproducible_and_change_between_calls():
    x = np.random.default_rng(2).standard_normal((5, 3, 3))
    first, second = make_layer(**RATES), make_layer(**RATES)
    y1, _ = first.forward(x)
    y2, _ = second.forward(x)
    np.testing.assert_array_equal(y1, y2)
    y3, _ = first.forward(x)
    assert not np.array_equal(y1, y3)
    y_inference, _ = first(x)
    assert not np.array_equal(y1, y_inference)


def test_masks_do_not_depend_on_the_thread_count(forced_threads):
    layer = fastgru.GRU(16, 40, num_layers=2, bidirectional=True, seed=4, **RATES)
    x = np.random.default_rng(3).standard_normal((8, 40, 16)).astype(np.float32)
    lengths = np.random.default_rng(4).integers(1, 9, size=40)
    outs = []
    try:
        for threads in (1, 2):
            fastgru.set_num_threads(threads)
            layer._mask_seeds = np.random.default_rng([4, 1])
            outs.append(layer.forward(x, lengths=lengths)[0])
            layer.backward(np.ones_like(outs[-1]))
    finally:
        fastgru.set_num_threads(0)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_dropout_zeroes_about_its_share_of_the_next_layers_inputs():
    # Layer 1 with z = σ(−1000) = 0 and no recurrent weights outputs tanh(its input) exactly:
    # a dropped input shows as an exact zero.
    layer = fastgru.GRU(1, 1, num_layers=2, dropout=0.4, dtype="float64", seed=5)
    state = layer.state_dict()
    state["weight_ih_l1"] = np.array([[0.0], [0.0], [1.0]])
    state["weight_hh_l1"] = np.zeros((3, 1))
    state["bias_ih_l1"] = np.array([0.0, -1000.0, 0.0])
    state["bias_hh_l1"] = np.zeros(3)
    layer.load_state_dict(state)
    x = np.ones((400, 50, 1))
    y, _ = layer.forward(x)
    dropped = np.mean(np.abs(y) < 1e-15)
    assert 0.37 < dropped < 0.43


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("rates", [dict(dropout=0.3), dict(recurrent_dropout=0.3), dict(zoneout=0.3), RATES],
                         ids=lambda r: "+".join(r))
def test_gradients_with_masks_match_central_differences(reset_after, rates):
    T, B = 4, 3
    lengths = np.array([4, 2, 3])
    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, B, 3))
    h0 = 0.5 * rng.standard_normal((4, B, 4))
    dy = rng.standard_normal((T, B, 8))
    dh_n = rng.standard_normal((4, B, 4))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0
    params = make_layer(reset_after=reset_after, **rates).state_dict()

    def fresh():
        # The same seed gives the same masks to the first training forward.
        layer = make_layer(seed=11, reset_after=reset_after, **rates)
        layer.load_state_dict(params)
        return layer

    layer = fresh()
    layer.forward(x, h0, lengths=lengths)
    dx, dh0 = layer.backward(dy, dh_n)

    def loss(x=x, h0=h0, state=params):
        other = fresh()
        other.load_state_dict(state)
        y, h_n = other.forward(x, h0, lengths=lengths)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    assert normalised_error(dx, central_difference(loss, x)) <= 1e-7
    assert normalised_error(dh0, central_difference(loss, h0)) <= 1e-7
    for name in ("weight_hh_l0", "weight_ih_l1_reverse", "bias_hh_l0_reverse"):
        value = params[name].copy()
        grad = central_difference(lambda: loss(state={**params, name: value}), value)
        assert normalised_error(layer.grads[name], grad) <= 1e-7, name


@pytest.mark.parametrize("name, value", [("dropout", 1.0), ("recurrent_dropout", -0.1), ("zoneout", "x")])
def test_bad_rates_are_clear_errors(name, value):
    with pytest.raises(ValueError, match=name):
        fastgru.GRU(2, 3, **{name: value})
