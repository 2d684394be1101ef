"""The NumPy definitions of the GRU's gate variants (EQUATIONS.md §7) and the LiBRU (§8):
their gradients against central differences, and their equations against each other."""

import numpy as np
import pytest

from fastgru import reference

from .helpers import central_difference, normalised_error

# NumPy only: no kernel runs here, so once is enough.
pytestmark = pytest.mark.best_isa_only

GATES = list(reference.GATE_TERMS)


def variant_problem(gates, T=4, B=3, I=2, H=3, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    params = {name: rng.uniform(-0.8, 0.8, shape)
              for name, shape in reference.gru_variant_shapes(gates, I, H, bias=bias).items()}
    return (rng.standard_normal((T, B, I)), rng.standard_normal((B, H)) * 0.5, params,
            rng.standard_normal((T, B, H)), rng.standard_normal((B, H)))


@pytest.mark.parametrize("gates,counts", [
    ("full", lambda I, H: 3 * H * I + 3 * H * H + 6 * H),
    ("hidden_bias", lambda I, H: H * I + 3 * H * H + 4 * H),
    ("hidden", lambda I, H: H * I + 3 * H * H + 2 * H),
    ("bias", lambda I, H: H * I + H * H + 4 * H),
])
def test_variant_parameter_counts_follow_the_formulas(gates, counts):
    for I, H in [(1, 1), (5, 3), (16, 33)]:
        shapes = reference.gru_variant_shapes(gates, I, H)
        assert sum(int(np.prod(s)) for s in shapes.values()) == counts(I, H)


@pytest.mark.parametrize("reset_after", [True, False])
def test_full_gates_are_the_gru(reset_after):
    x, h0, params, dy, dh_n = variant_problem("full", T=5, B=2, I=4, H=6)
    y, h_n, cache = reference.gru_variant_forward(x, h0, **params, gates="full", reset_after=reset_after)
    y_gru, h_gru, cache_gru = reference.gru_forward(x, h0, **params, reset_after=reset_after)
    # The same equations, summed in another order.
    assert normalised_error(y, y_gru) <= 1e-14
    assert normalised_error(h_n, h_gru) <= 1e-14
    grads = reference.gru_variant_backward(cache, dy, dh_n)
    expected = reference.gru_backward(cache_gru, dy, dh_n)
    for name in ("dx", "dh0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert normalised_error(grads[name], expected[name]) <= 1e-14, name


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("gates", GATES)
def test_variant_gradients_match_central_differences(gates, reset_after, bias):
    x, h0, params, dy, dh_n = variant_problem(gates, bias=bias, seed=3)

    def loss():
        y, h_n, _ = reference.gru_variant_forward(x, h0, **params, gates=gates, reset_after=reset_after)
        return np.sum(y * dy) + np.sum(h_n * dh_n)

    _, _, cache = reference.gru_variant_forward(x, h0, **params, gates=gates, reset_after=reset_after)
    grads = reference.gru_variant_backward(cache, dy, dh_n)
    assert set(grads) == {"dx", "dh0"} | set(params)
    assert normalised_error(grads["dx"], central_difference(loss, x)) <= 1e-7
    assert normalised_error(grads["dh0"], central_difference(loss, h0)) <= 1e-7
    for name, value in params.items():
        assert grads[name].shape == value.shape
        assert normalised_error(grads[name], central_difference(loss, value)) <= 1e-7, name


@pytest.mark.parametrize("reset_after", [True, False])
def test_variant_gates_see_only_their_terms(reset_after):
    """Type 1 with zero gate biases is type 2; type 2 with zero gate weights and type 3 with zero
    gate biases both hold r = z = 1/2; the bias-only gates are constant over time."""
    x, h0, p1, _, _ = variant_problem("hidden_bias", T=6, B=2, I=3, H=4, seed=5)
    p1["bias_hh"][:8] = 0
    p2 = {"weight_ih": p1["weight_ih"], "weight_hh": p1["weight_hh"], "bias_ih": p1["bias_ih"],
          "bias_hh": p1["bias_hh"][8:]}
    run = lambda gates, p: reference.gru_variant_forward(x, h0, **p, gates=gates, reset_after=reset_after)
    np.testing.assert_array_equal(run("hidden_bias", p1)[0], run("hidden", p2)[0])

    p2["weight_hh"] = p2["weight_hh"].copy()
    p2["weight_hh"][:8] = 0
    p3 = {"weight_ih": p2["weight_ih"], "weight_hh": p2["weight_hh"][8:], "bias_ih": p2["bias_ih"],
          "bias_hh": np.concatenate([np.zeros(8), p2["bias_hh"]])}
    y2, _, cache2 = run("hidden", p2)
    y3, _, cache3 = run("bias", p3)
    np.testing.assert_allclose(y2, y3, rtol=0, atol=1e-15)
    assert all(np.all(s["r"] == 0.5) and np.all(s["z"] == 0.5) for s in cache3["steps"])

    _, _, p, _, _ = variant_problem("bias", T=6, B=2, I=3, H=4, seed=6)
    _, _, cache = reference.gru_variant_forward(x, h0, **p, gates="bias", reset_after=reset_after)
    for s in cache["steps"]:
        np.testing.assert_array_equal(s["z"], cache["steps"][0]["z"])
        np.testing.assert_array_equal(s["r"][0], 1 / (1 + np.exp(-p["bias_hh"][:4])))


def libru_parameters(rng, I, H):
    return [rng.uniform(-0.6, 0.6, (2 * H, I)), rng.uniform(-0.6, 0.6, (2 * H, H)),
            rng.uniform(0.5, 1.5, 2 * H), 0.3 * rng.standard_normal(2 * H),
            0.3 * rng.standard_normal(2 * H), rng.uniform(0.5, 2, 2 * H)]


def test_libru_state_is_the_log_of_the_mixed_probabilities():
    """ĥ' = log(z e^ĥ + (1 − z) e^c) with c = softplus(a_c), computed naively at moderate values."""
    rng = np.random.default_rng(1)
    T, B, I, H = 5, 3, 4, 6
    x = rng.standard_normal((T, B, I))
    w_ih, w_hh, gamma, beta, mean, var = libru_parameters(rng, I, H)
    y, _, _ = reference.libru_forward(x, None, w_ih, w_hh, gamma, beta, mean, var, train=False)
    a = gamma * (x @ w_ih.T - mean) / np.sqrt(var + 1e-5) + beta
    h = np.zeros((B, H))
    for t in range(T):
        z = 1 / (1 + np.exp(-(a[t, :, :H] + h @ w_hh[:H].T)))
        c = np.log1p(np.exp(a[t, :, H:] + h @ w_hh[H:].T))
        h = np.log(z * np.exp(h) + (1 - z) * np.exp(c))
        assert normalised_error(y[t], h) <= 1e-13


def test_libru_is_above_its_geometric_mean_approximation():
    """By the concavity of log, the LiBRU's step is at least the LiGRU's with softplus for the
    activation (z ĥ + (1 − z) c), the authors' "geomean" approximation."""
    rng = np.random.default_rng(2)
    B, I, H = 7, 3, 5
    x = rng.standard_normal((1, B, I)) * 3
    h0 = -np.abs(rng.standard_normal((B, H)))
    w_ih, w_hh, gamma, beta, mean, var = libru_parameters(rng, I, H)
    _, h_libru, cache = reference.libru_forward(x, h0, w_ih, w_hh, gamma, beta, mean, var, train=False)
    s = cache["steps"][0]
    z = 1 / (1 + np.exp(-s["a_z"]))
    geomean = z * h0 + (1 - z) * np.log1p(np.exp(s["a_c"]))
    assert np.all(h_libru >= geomean - 1e-12)
    assert np.any(h_libru > geomean + 1e-3)


def test_libru_stays_finite_where_the_naive_form_overflows():
    rng = np.random.default_rng(3)
    T, B, I, H = 3, 2, 2, 3
    x = rng.standard_normal((T, B, I)) * 1e3
    w_ih, w_hh, gamma, beta, mean, var = libru_parameters(rng, I, H)
    y, h_n, cache = reference.libru_forward(x, None, w_ih, w_hh, gamma * 100, beta, mean, var, train=False)
    assert np.isfinite(y).all() and np.isfinite(h_n).all()
    grads = reference.libru_backward(cache, np.ones_like(y))
    assert all(np.isfinite(v).all() for v in grads.values())


@pytest.mark.parametrize("train", [True, False])
def test_libru_gradients_match_central_differences(train):
    rng = np.random.default_rng(4)
    T, B, I, H = 4, 3, 2, 3
    lengths = np.array([4, 1, 3])
    x, h0 = rng.standard_normal((T, B, I)), -np.abs(rng.standard_normal((B, H)))
    params = libru_parameters(rng, I, H)
    dy, dh_n = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0

    def loss():
        y, h_n, _ = reference.libru_forward(x, h0, *params, train=train, lengths=lengths)
        return np.sum(y * dy) + np.sum(h_n * dh_n)

    _, _, cache = reference.libru_forward(x, h0, *params, train=train, lengths=lengths)
    g = reference.libru_backward(cache, dy, dh_n)
    assert normalised_error(g["dx"], central_difference(loss, x)) <= 1e-7
    assert normalised_error(g["dh0"], central_difference(loss, h0)) <= 1e-7
    for name, value in zip(("weight_ih", "weight_hh", "bn_weight", "bn_bias"), params):
        assert normalised_error(g[name], central_difference(loss, value)) <= 1e-7, (train, name)


def test_libru_rows_past_their_length_keep_their_state():
    rng = np.random.default_rng(5)
    T, B, I, H = 5, 3, 2, 4
    lengths = np.array([5, 2, 3])
    x = rng.standard_normal((T, B, I))
    params = libru_parameters(rng, I, H)
    y, h_n, _ = reference.libru_forward(x, None, *params, train=False, lengths=lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(h_n[b], y[n - 1, b])
        assert not y[n:, b].any()
        alone, h_alone, _ = reference.libru_forward(x[:n, b : b + 1], None, *params, train=False)
        np.testing.assert_allclose(y[:n, b], alone[:, 0], rtol=1e-14, atol=1e-14)
