"""The core against the NumPy reference (float64), and gradients against central differences."""

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import central_difference, normalised_error

# (T, B, I, H): T = 1, B = 1, H = 1, sizes off the vector widths, I != H, long T.
SHAPES = [
    (1, 1, 1, 1),
    (1, 3, 4, 5),
    (5, 1, 3, 1),
    (7, 3, 5, 13),
    (4, 9, 17, 8),
    (3, 17, 16, 33),
    (6, 2, 40, 16),
    (2, 5, 7, 70),
    (600, 2, 3, 9),
]

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def random_problem(T, B, I, H, seed, bias=True):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((T, B, I)),
        "h0": rng.standard_normal((1, B, H)) * 0.5,
        "dy": rng.standard_normal((T, B, H)),
        "dh_n": rng.standard_normal((1, B, H)),
    }


def reference_run(layer, problem):
    params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    y, h_n, cache = reference.gru_forward(
        problem["x"],
        problem["h0"][0],
        params["weight_ih_l0"],
        params["weight_hh_l0"],
        params.get("bias_ih_l0"),
        params.get("bias_hh_l0"),
        reset_after=layer.reset_after,
    )
    grads = reference.gru_backward(cache, problem["dy"], problem["dh_n"][0])
    return y, h_n, grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-B%d-I%d-H%d" % s)
def test_core_matches_reference(shape, reset_after, dtype):
    T, B, I, H = shape
    layer = fastgru.GRU(I, H, reset_after=reset_after, dtype=dtype, seed=sum(shape))
    problem = random_problem(*shape, seed=7)
    cast = {k: v.astype(dtype) for k, v in problem.items()}
    # The reference runs in float64 from the very inputs the core saw.
    problem = {k: v.astype(np.float64) for k, v in cast.items()}
    y_ref, h_ref, grads_ref = reference_run(layer, problem)

    y, h_n = layer.forward(cast["x"], cast["h0"], train=True)
    dx, dh0 = layer.backward(cast["dy"], cast["dh_n"])

    tol = TOLERANCE[dtype]
    assert y.dtype == np.dtype(dtype) and dx.dtype == np.dtype(dtype)
    assert normalised_error(y, y_ref) <= tol
    assert normalised_error(h_n[0], h_ref) <= tol
    assert normalised_error(dx, grads_ref["dx"]) <= tol
    assert normalised_error(dh0[0], grads_ref["dh0"]) <= tol
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert normalised_error(layer.grads[name + "_l0"], grads_ref[name]) <= tol, name


@pytest.mark.parametrize("reset_after", [True, False])
def test_inference_equals_training_forward(reset_after):
    layer = fastgru.GRU(6, 10, reset_after=reset_after, seed=3)
    x = np.random.default_rng(0).standard_normal((9, 4, 6)).astype(np.float32)
    y_inf, h_inf = layer(x)
    y_train, h_train = layer.forward(x, train=True)
    np.testing.assert_array_equal(y_inf, y_train)
    np.testing.assert_array_equal(h_inf, h_train)


@pytest.mark.parametrize("reset_after", [True, False])
def test_layer_without_bias_matches_reference(reset_after):
    layer = fastgru.GRU(5, 6, bias=False, reset_after=reset_after, dtype="float64", seed=2)
    assert set(layer.state_dict()) == {"weight_ih_l0", "weight_hh_l0"}
    problem = random_problem(4, 3, 5, 6, seed=1)
    y_ref, _, grads_ref = reference_run(layer, problem)
    y, _ = layer.forward(problem["x"], problem["h0"], train=True)
    dx, _ = layer.backward(problem["dy"], problem["dh_n"])
    assert normalised_error(y, y_ref) <= 1e-12
    assert normalised_error(dx, grads_ref["dx"]) <= 1e-12
    assert normalised_error(layer.grads["weight_hh_l0"], grads_ref["weight_hh"]) <= 1e-12


def test_default_initialisation_is_pytorchs_and_reproducible():
    a = fastgru.GRU(7, 20, seed=11).state_dict()
    b = fastgru.GRU(7, 20, seed=11).state_dict()
    c = fastgru.GRU(7, 20, seed=12).state_dict()
    bound = 1 / np.sqrt(20)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.array_equal(a[name], c[name])
        assert np.abs(a[name]).max() <= bound
        assert np.abs(a[name]).max() > 0.8 * bound


# ----------------------------------------------------------------------------- gradients
def loss_and_gradients(layer, x, h0, dy, dh_n):
    """L = Σ dy ⊙ y + Σ dh_n ⊙ h_n, whose gradient backward computes from (dy, dh_n)."""
    y, h_n = layer.forward(x, h0, train=True)
    layer.zero_grad()
    dx, dh0 = layer.backward(dy, dh_n)
    return float(np.sum(dy * y) + np.sum(dh_n * h_n)), dx, dh0, layer.state_dict(), dict(layer.grads)


def loss_only(layer, x, h0, dy, dh_n):
    y, h_n = layer(x, h0)
    return float(np.sum(dy * y) + np.sum(dh_n * h_n))


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (4, 3, 5, 6), (6, 2, 3, 9)], ids=str)
def test_core_gradients_match_central_differences(shape, reset_after):
    T, B, I, H = shape
    layer = fastgru.GRU(I, H, reset_after=reset_after, dtype="float64", seed=5)
    p = random_problem(T, B, I, H, seed=9)
    x, h0, dy, dh_n = p["x"], p["h0"], p["dy"], p["dh_n"]
    _, dx, dh0, params, grads = loss_and_gradients(layer, x, h0, dy, dh_n)

    def f():
        return loss_only(layer, x, h0, dy, dh_n)

    assert normalised_error(dx, central_difference(f, x)) <= 1e-7
    assert normalised_error(dh0, central_difference(f, h0)) <= 1e-7
    for name, value in params.items():
        value = value.copy()

        def f_param(name=name, value=value):
            state = dict(params)
            state[name] = value
            layer.load_state_dict(state)
            return loss_only(layer, x, h0, dy, dh_n)

        numeric = central_difference(f_param, value)
        assert normalised_error(grads[name], numeric) <= 1e-7, name


@pytest.mark.parametrize("reset_after", [True, False])
def test_reference_gradients_match_central_differences(reset_after):
    rng = np.random.default_rng(4)
    T, B, I, H = 5, 3, 4, 6
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((B, H))
    params = [rng.uniform(-0.5, 0.5, s) for s in [(3 * H, I), (3 * H, H), (3 * H,), (3 * H,)]]
    dy, dh_n = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))

    def f():
        y, h_n, _ = reference.gru_forward(x, h0, *params, reset_after=reset_after)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    _, _, cache = reference.gru_forward(x, h0, *params, reset_after=reset_after)
    grads = reference.gru_backward(cache, dy, dh_n)
    assert normalised_error(grads["dx"], central_difference(f, x)) <= 1e-7
    assert normalised_error(grads["dh0"], central_difference(f, h0)) <= 1e-7
    for name, value in zip(["weight_ih", "weight_hh", "bias_ih", "bias_hh"], params):
        assert normalised_error(grads[name], central_difference(f, value)) <= 1e-7, name


def test_normalised_error_can_fail():
    # The comparison itself must be able to fail, also on NaN.
    assert normalised_error(np.ones(3), np.ones(3)) == 0
    assert normalised_error(np.array([1.0, 2.0]), np.array([1.0, 2.1])) > 1e-3
    assert not normalised_error(np.array([np.nan]), np.array([1.0])) <= 1


@pytest.mark.parametrize("reset_after", [True, False])
def test_step_loop_equals_whole_sequence(reset_after):
    layer = fastgru.GRU(5, 19, reset_after=reset_after, seed=8)
    x = np.random.default_rng(2).standard_normal((12, 3, 5)).astype(np.float32)
    y_all, h_all = layer(x)
    h = None
    for t in range(x.shape[0]):
        y_t, h = layer.step(x[t], h)
        assert normalised_error(y_t, y_all[t]) <= 1e-6
    assert normalised_error(h, h_all) <= 1e-6


def test_step_reset_restarts_the_masked_rows():
    layer = fastgru.GRU(4, 9, seed=3)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 2, 4)).astype(np.float32)
    fresh = rng.standard_normal((3, 2, 4)).astype(np.float32)
    h = None
    for t in range(6):
        _, h = layer.step(x[t], h)
    # Row 1 starts a new sequence; row 0 goes on with its own.
    y_t, h = layer.step(fresh[0], h, reset=np.array([False, True]))
    _, h_cont = layer(np.concatenate([x, fresh[:1]])[:, :1])
    _, h_new = layer(fresh[:1, 1:])
    assert normalised_error(h[:, :1], h_cont) <= 1e-6
    assert normalised_error(h[:, 1:], h_new) <= 1e-6
    with pytest.raises(ValueError, match="reset"):
        layer.step(fresh[0], h, reset=np.array([1, 0]))
    with pytest.raises(ValueError, match="x_t"):
        layer.step(fresh[:1], h)
