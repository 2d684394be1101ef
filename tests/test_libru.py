"""The light Bayesian recurrent unit: the core against the NumPy reference (both dtypes, lengths,
directions, layers, batch_first), central differences of every gradient through the batch
statistics and the regularisations, step against the whole sequence, no overflow where the
pre-activations are large, the initialisation, the model file, pickling and clear errors."""

import pickle

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import BATCH_NORM_CASES, central_difference, normalised_error, randomised_batch_norm_state

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
def network_reference(layer, state, x, h0, lengths, train):
    return reference.libru_network_forward(x, h0, state, num_layers=layer.num_layers,
                                           bidirectional=layer.bidirectional, train=train, eps=layer.bn_eps,
                                           lengths=lengths, batch_first=layer.batch_first)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", BATCH_NORM_CASES, ids=str)
def test_libru_matches_reference(case, dtype):
    (T, B, I, H), config, lengths = (BATCH_NORM_CASES[case][key] for key in ("shape", "config", "lengths"))
    layer = fastgru.LiBRU(I, H, dtype=dtype, seed=T * B, **config)
    rng = np.random.default_rng(1)
    state = randomised_batch_norm_state(layer, rng)
    D = layer.num_directions
    LD = layer.num_layers * D
    x = rng.standard_normal((B, T, I) if layer.batch_first else (T, B, I))
    # Log-probabilities: at most 0.
    h0, dh_n = -np.abs(rng.standard_normal((LD, B, H))), rng.standard_normal((LD, B, H))
    dy = rng.standard_normal((B, T, D * H) if layer.batch_first else (T, B, D * H))
    tol = TOLERANCE[dtype]

    y, h_n = layer.forward(x.astype(dtype), h0.astype(dtype), lengths=lengths)
    dx, dh0 = layer.backward(dy.astype(dtype), dh_n.astype(dtype))
    y_ref, h_ref, cache = network_reference(layer, state, x, h0, lengths, train=True)
    g = reference.libru_network_backward(cache, dy, dh_n)
    assert normalised_error(y, y_ref) <= tol and normalised_error(h_n, h_ref) <= tol
    assert normalised_error(dx, g["dx"]) <= tol and normalised_error(dh0, g["dh0"]) <= tol
    assert set(layer.grads) == set(g["grads"])
    for name, expected in g["grads"].items():
        assert normalised_error(layer.grads[name], expected) <= tol, name

    for suffix, (mean, var, count) in cache["statistics"].items():
        expected_mean, expected_var = reference.ligru_running_statistics(
            state["bn_running_mean" + suffix], state["bn_running_var" + suffix], mean, var, count, 0.1)
        assert normalised_error(getattr(layer, "bn_running_mean" + suffix), expected_mean) <= tol
        assert normalised_error(getattr(layer, "bn_running_var" + suffix), expected_var) <= tol

    updated = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    y_inf, h_inf = layer(x.astype(dtype), h0.astype(dtype), lengths=lengths)
    y_ref, h_ref, _ = network_reference(layer, updated, x, h0, lengths, train=False)
    assert normalised_error(y_inf, y_ref) <= tol and normalised_error(h_inf, h_ref) <= tol


@pytest.mark.parametrize("rates", [{}, dict(dropout=0.3, recurrent_dropout=0.25, zoneout=0.2)], ids=str)
def test_core_gradients_match_central_differences(rates):
    """Every gradient of a stacked bidirectional LiBRU with lengths, through the batch statistics."""
    rng = np.random.default_rng(4)
    lengths = np.array([4, 2, 3])
    x, h0 = rng.standard_normal((4, 3, 2)), -np.abs(rng.standard_normal((4, 3, 3)))
    dy, dh_n = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 3))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0

    def fresh():
        # The same seed gives the same masks to the first training forward.
        return fastgru.LiBRU(2, 3, num_layers=2, bidirectional=True, dtype="float64", seed=3, **rates)

    layer = fresh()
    params = randomised_batch_norm_state(layer, np.random.default_rng(5))
    layer.forward(x, h0, lengths=lengths)
    dx, dh0 = layer.backward(dy, dh_n)

    def loss(x=x, h0=h0, state=params):
        probe = fresh()
        probe.load_state_dict(state)
        y, h_n = probe.forward(x, h0, lengths=lengths)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    assert normalised_error(dx, central_difference(loss, x)) <= 1e-7
    assert normalised_error(dh0, central_difference(loss, h0)) <= 1e-7
    for name in layer.grads:
        value = params[name].copy()
        numeric = central_difference(lambda: loss(state={**params, name: value}), value)
        assert normalised_error(layer.grads[name], numeric) <= 1e-7, name


def test_step_loop_equals_whole_sequence_inference_and_reset_starts_from_zero():
    layer = fastgru.LiBRU(4, 6, num_layers=2, seed=6)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((9, 3, 4)).astype(np.float32)
    layer.forward(x)  # running statistics away from their initial values
    y, h_n = layer(x)
    h = None
    for t in range(9):
        y_t, h = layer.step(x[t], h)
        assert normalised_error(y_t, y[t]) <= 1e-6
    assert normalised_error(h, h_n) <= 1e-6
    # Row 1 restarts at step 4: it continues as a fresh sequence from there.
    h = None
    for t in range(9):
        y_t, h = layer.step(x[t], h, reset=np.array([False, t == 4, False]))
    _, h_fresh = layer(x[4:, 1:2])
    assert normalised_error(h[:, 1:2], h_fresh) <= 1e-6 and normalised_error(h[:, 0], h_n[:, 0]) <= 1e-6


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_pre_activations_neither_overflow_nor_lose_the_state(dtype):
    # Zero weights, so that a = β: a_z = ±1e4 (z = 1 or 0 to rounding) and a_c = ±1e4, ±30, 0
    # (c = 1e4 ... e^−1e4). Each exponential of the naive form log(z e^ĥ + (1 − z) e^c)
    # overflows or underflows here; the computed form stays finite and matches the reference.
    layer = fastgru.LiBRU(2, 6, dtype=dtype)
    state = {name: np.zeros_like(value) for name, value in layer.state_dict().items()}
    state["bn_weight_l0"][:] = 1
    state["bn_running_var_l0"][:] = 1
    state["bn_bias_l0"] = np.r_[[1e4, -1e4, 1e4, -1e4, 30, -30], [1e4, 1e4, -1e4, -1e4, -30, 0]]
    layer.load_state_dict(state)
    x = np.random.default_rng(4).standard_normal((4, 3, 2)).astype(dtype)
    h0 = np.full((1, 3, 6), -0.7, dtype)
    y_ref, _, _ = network_reference(layer, state, x, h0, None, train=False)
    for y in (layer(x, h0)[0], layer.forward(x, h0, train=True)[0]):
        assert np.isfinite(y).all()
        assert normalised_error(y, y_ref) <= TOLERANCE[dtype]
    # Unit 2, z = 1 and c = 0, keeps the state: ĥ' = logaddexp(ĥ − e^−1e4, −1e4) = ĥ to rounding.
    np.testing.assert_array_equal(y_ref[..., 2], np.float64(np.dtype(dtype).type(-0.7)))


def test_the_ligru_with_softplus_is_a_lower_bound():
    # The geometric mean z ⊙ ĥ + (1 − z) ⊙ c of the LiGRU with softplus is at most the log of
    # the arithmetic mean (concavity of log): one step from the same state and weights.
    rng = np.random.default_rng(7)
    libru = fastgru.LiBRU(3, 5, dtype="float64", seed=7)
    ligru = fastgru.LiGRU(3, 5, activation="softplus", dtype="float64")
    state = randomised_batch_norm_state(libru, rng)
    ligru.load_state_dict(state)
    x, h = rng.standard_normal((3, 3)), -np.abs(rng.standard_normal((1, 3, 5)))
    upper, _ = libru.step(x, h)
    lower, _ = ligru.step(x, h)
    assert np.all(lower <= upper + 1e-12) and np.any(lower < upper - 1e-6)


def test_initial_parameters_as_the_authors_code():
    layer = fastgru.LiBRU(3, 4, num_layers=2, bidirectional=True, seed=8)
    state = layer.state_dict()
    assert len(state) == 6 * 4
    assert state["weight_ih_l0"].shape == (8, 3) and state["weight_ih_l1_reverse"].shape == (8, 8)
    assert np.abs(layer.weight_ih_l0).max() <= np.sqrt(6 / (3 + 8))
    assert np.abs(layer.weight_ih_l1).max() <= np.sqrt(6 / (8 + 8))
    for name in ("weight_hh_l0", "weight_hh_l1_reverse"):
        for block in (state[name][:4], state[name][4:]):
            np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-6)
    assert not np.allclose(state["weight_hh_l0"][:4], state["weight_hh_l0"][4:])
    assert np.all(layer.bn_weight_l0 == 1) and np.all(layer.bn_bias_l1 == 0)
    assert np.all(layer.bn_running_mean_l1_reverse == 0) and np.all(layer.bn_running_var_l1_reverse == 1)
    again = fastgru.LiBRU(3, 4, num_layers=2, bidirectional=True, seed=8).state_dict()
    assert all(np.array_equal(again[name], value) for name, value in state.items())
    assert layer.config() == dict(input_size=3, hidden_size=4, num_layers=2, batch_first=False, dropout=0.0,
                                  bidirectional=True, dtype="float32", recurrent_dropout=0.0, zoneout=0.0,
                                  reverse=False, merge_mode="concat", stateful=False, bn_momentum=0.1, bn_eps=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_file_round_trip_and_pickling(tmp_path, dtype):
    layer = fastgru.LiBRU(3, 4, num_layers=2, bidirectional=True, batch_first=True, bn_momentum=0.2, bn_eps=1e-4,
                          zoneout=0.1, dtype=dtype, seed=9)
    x = np.random.default_rng(9).standard_normal((2, 5, 3)).astype(dtype)
    layer.forward(x)
    layer.save(tmp_path / "libru.safetensors")
    for loaded in (fastgru.load(tmp_path / "libru.safetensors"), pickle.loads(pickle.dumps(layer))):
        assert type(loaded) is fastgru.LiBRU and loaded.config() == layer.config()
        for name, value in layer.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[name], value)
        np.testing.assert_array_equal(loaded(x)[0], layer(x)[0])
        loaded.forward(x)  # trains on
    assert not hasattr(layer, "to_torch")


@pytest.mark.parametrize("kwargs, match", [
    (dict(bn_momentum=1.5), r"bn_momentum: expected a number in \[0, 1\], got 1.5"),
    (dict(bn_eps=0), r"bn_eps: expected a finite number > 0, got 0"),
    (dict(zoneout=1.0), r"zoneout: expected a probability in \[0, 1\), got 1.0"),
], ids=str)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastgru.LiBRU(3, 4, **kwargs)


def test_bad_inputs_are_clear_errors():
    layer = fastgru.LiBRU(3, 4, seed=10)
    with pytest.raises(ValueError, match="x: a LiBRU's training forward .* needs at least 2 of them, got 1"):
        layer.forward(np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match=r"x: expected 3 input features \(last axis\), got shape \(2, 2, 5\)"):
        layer.forward(np.ones((2, 2, 5)))
    state = layer.state_dict()
    state["bn_running_var_l0"] = -np.ones(8, np.float32)
    with pytest.raises(ValueError, match=r"bn_running_var: expected values >= 0, got -1"):
        layer.load_state_dict(state)
    with pytest.raises(KeyError, match="missing keys \\['bn_running_mean_l0'\\]"):
        layer.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "bn_running_mean_l0"})
    for argument in ("bias", "activation", "negative_slope"):
        with pytest.raises(TypeError, match=argument):
            fastgru.LiBRU(3, 4, **{argument: 1})
    np.testing.assert_array_equal(layer.bn_running_var_l0, np.ones(8, np.float32))
    layer.forward(np.ones((2, 1, 3)))


def test_the_c_tests_model_file_is_a_trained_libru():
    # cpp/tests/data/libru2_f32.safetensors, which the C and C++ tests load: the reference's
    # outputs from its arrays, with running statistics moved by training.
    from pathlib import Path

    layer = fastgru.load(Path(__file__).parents[1] / "cpp" / "tests" / "data" / "libru2_f32.safetensors")
    assert type(layer) is fastgru.LiBRU and layer.num_layers == 2 and layer.input_size == 3
    state = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    assert not np.allclose(state["bn_running_var_l1"], 1)
    x = np.random.default_rng(13).standard_normal((7, 3, 3))
    y_ref, _, _ = network_reference(layer, state, x, None, None, train=False)
    assert normalised_error(layer(x.astype(np.float32))[0], y_ref) <= 1e-5
