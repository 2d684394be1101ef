"""The light GRU: the core against the NumPy reference (both dtypes, every activation, lengths,
directions, layers), central differences through batch normalisation's batch statistics, the
running statistics, inference and step, the model file, clear errors, and an independent
torch autograd LiGRU."""

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import BATCH_NORM_CASES, central_difference, normalised_error, randomised_batch_norm_state

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
ACTIVATIONS = ["relu", "tanh", "leaky_relu", "softplus"]
BN_NAMES = ("weight_ih", "weight_hh", "bn_weight", "bn_bias", "bn_running_mean", "bn_running_var")
def network_reference(layer, state, x, h0, lengths, train):
    return reference.ligru_network_forward(
        x, h0, state, num_layers=layer.num_layers, bidirectional=layer.bidirectional, train=train,
        activation=layer.activation, negative_slope=layer.negative_slope, eps=layer.bn_eps, lengths=lengths,
        batch_first=layer.batch_first)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case", BATCH_NORM_CASES, ids=str)
def test_ligru_matches_reference(case, activation, dtype):
    (T, B, I, H), config, lengths = (BATCH_NORM_CASES[case][key] for key in ("shape", "config", "lengths"))
    layer = fastgru.LiGRU(I, H, activation=activation, negative_slope=0.2, dtype=dtype, seed=T * B, **config)
    rng = np.random.default_rng(1)
    state = randomised_batch_norm_state(layer, rng)
    D = layer.num_directions
    LD = layer.num_layers * D
    x = rng.standard_normal((B, T, I) if layer.batch_first else (T, B, I))
    h0, dh_n = rng.standard_normal((LD, B, H)), rng.standard_normal((LD, B, H))
    dy = rng.standard_normal((B, T, D * H) if layer.batch_first else (T, B, D * H))
    tol = TOLERANCE[dtype]

    y, h_n = layer.forward(x.astype(dtype), h0.astype(dtype), lengths=lengths)
    dx, dh0 = layer.backward(dy.astype(dtype), dh_n.astype(dtype))
    y_ref, h_ref, cache = network_reference(layer, state, x, h0, lengths, train=True)
    g = reference.ligru_network_backward(cache, dy, dh_n)
    assert normalised_error(y, y_ref) <= tol and normalised_error(h_n, h_ref) <= tol
    assert normalised_error(dx, g["dx"]) <= tol and normalised_error(dh0, g["dh0"]) <= tol
    assert set(layer.grads) == set(g["grads"])
    for name, expected in g["grads"].items():
        assert normalised_error(layer.grads[name], expected) <= tol, name

    # The training forward moved the running statistics as BatchNorm1d does.
    for suffix, (mean, var, count) in cache["statistics"].items():
        expected_mean, expected_var = reference.ligru_running_statistics(
            state["bn_running_mean" + suffix], state["bn_running_var" + suffix], mean, var, count, 0.1)
        assert normalised_error(getattr(layer, "bn_running_mean" + suffix), expected_mean) <= tol
        assert normalised_error(getattr(layer, "bn_running_var" + suffix), expected_var) <= tol

    # Inference normalises with those running statistics.
    updated = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    y_inf, h_inf = layer(x.astype(dtype), h0.astype(dtype), lengths=lengths)
    y_ref, h_ref, _ = network_reference(layer, updated, x, h0, lengths, train=False)
    assert normalised_error(y_inf, y_ref) <= tol and normalised_error(h_inf, h_ref) <= tol


def test_reference_gradients_match_central_differences():
    rng = np.random.default_rng(2)
    T, B, I, H = 4, 3, 2, 3
    lengths = np.array([4, 1, 3])
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    params = [rng.uniform(-0.6, 0.6, (2 * H, I)), rng.uniform(-0.6, 0.6, (2 * H, H)),
              rng.uniform(0.5, 1.5, 2 * H), 0.3 * rng.standard_normal(2 * H),
              0.3 * rng.standard_normal(2 * H), rng.uniform(0.5, 2, 2 * H)]
    dy, dh_n = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0
    for train in (True, False):
        for activation in ACTIVATIONS:
            def f():
                y, h_n, _ = reference.ligru_forward(x, h0, *params, train=train, activation=activation,
                                                    negative_slope=0.2, lengths=lengths)
                return float(np.sum(dy * y) + np.sum(dh_n * h_n))

            _, _, cache = reference.ligru_forward(x, h0, *params, train=train, activation=activation,
                                                  negative_slope=0.2, lengths=lengths)
            g = reference.ligru_backward(cache, dy, dh_n)
            assert normalised_error(g["dx"], central_difference(f, x)) <= 1e-7
            assert normalised_error(g["dh0"], central_difference(f, h0)) <= 1e-7
            for name, value in zip(BN_NAMES[:4], params):
                assert normalised_error(g[name], central_difference(f, value)) <= 1e-7, (train, activation, name)


@pytest.mark.parametrize("rates", [{}, dict(dropout=0.3, recurrent_dropout=0.25, zoneout=0.2)], ids=str)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_core_gradients_match_central_differences(activation, rates):
    """Every gradient of a stacked bidirectional LiGRU with lengths, through the batch statistics."""
    rng = np.random.default_rng(4)
    lengths = np.array([4, 2, 3])
    x, h0 = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 3))
    dy, dh_n = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 3))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0

    def fresh():
        # The same seed gives the same masks to the first training forward.
        layer = fastgru.LiGRU(2, 3, num_layers=2, bidirectional=True, activation=activation, negative_slope=0.2,
                              dtype="float64", seed=3, **rates)
        return layer

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


def test_step_loop_equals_whole_sequence_inference():
    layer = fastgru.LiGRU(4, 6, num_layers=2, activation="tanh", seed=6)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((9, 3, 4)).astype(np.float32)
    layer.forward(x)  # running statistics away from their initial values
    y, h_n = layer(x)
    h = None
    for t in range(9):
        y_t, h = layer.step(x[t], h)
        assert normalised_error(y_t, y[t]) <= 1e-6
    assert normalised_error(h, h_n) <= 1e-6


def test_running_statistics_follow_every_training_forward_and_only_those():
    layer = fastgru.LiGRU(3, 4, dtype="float64", seed=7, bn_momentum=0.25)
    x = np.random.default_rng(7).standard_normal((5, 2, 3))
    layer(x)
    layer.step(x[0])
    assert np.all(layer.bn_running_mean_l0 == 0) and np.all(layer.bn_running_var_l0 == 1)
    state = layer.state_dict()
    _, _, cache = reference.ligru_forward(x, None, *(state[n + "_l0"] for n in BN_NAMES))
    mean, var = state["bn_running_mean_l0"], state["bn_running_var_l0"]
    for _ in range(3):
        layer.forward(x)
        mean, var = reference.ligru_running_statistics(mean, var, cache["batch_mean"], cache["batch_var"],
                                                       cache["count"], 0.25)
    assert normalised_error(layer.bn_running_mean_l0, mean) <= 1e-12
    assert normalised_error(layer.bn_running_var_l0, var) <= 1e-12
    assert "bn_running_mean_l0" not in layer.grads and "bn_weight_l0" in layer.grads


def test_initial_parameters_and_names():
    layer = fastgru.LiGRU(3, 4, num_layers=2, bidirectional=True, seed=8)
    shapes = {k: v.shape for k, v in layer.state_dict().items()}
    assert shapes["weight_ih_l0"] == (8, 3) and shapes["weight_ih_l1_reverse"] == (8, 8)
    assert shapes["weight_hh_l1"] == (8, 4) and shapes["bn_running_var_l0_reverse"] == (8,)
    assert len(shapes) == 6 * 4
    assert np.all(layer.bn_weight_l0 == 1) and np.all(layer.bn_bias_l1 == 0)
    assert np.all(layer.bn_running_mean_l1_reverse == 0) and np.all(layer.bn_running_var_l1_reverse == 1)
    assert np.abs(layer.weight_hh_l0).max() <= 0.5


@pytest.mark.parametrize("activation", ["leaky_relu", "softplus"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_file_round_trip(tmp_path, dtype, activation):
    layer = fastgru.LiGRU(3, 4, num_layers=2, bidirectional=True, batch_first=True, activation=activation,
                          negative_slope=0.05, bn_momentum=0.2, bn_eps=1e-4, dtype=dtype, seed=9)
    x = np.random.default_rng(9).standard_normal((2, 5, 3)).astype(dtype)
    layer.forward(x)
    layer.save(tmp_path / "ligru.safetensors")
    loaded = fastgru.load(tmp_path / "ligru.safetensors")
    assert type(loaded) is fastgru.LiGRU and loaded.config() == layer.config()
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    np.testing.assert_array_equal(loaded(x)[0], layer(x)[0])
    assert not hasattr(layer, "to_torch")


@pytest.mark.parametrize("kwargs, match", [
    (dict(activation="gelu"), r"activation: expected one of 'relu', 'tanh', 'leaky_relu', 'softplus', got 'gelu'"),
    (dict(activation=None), r"activation: expected one of .*, got None"),
    (dict(negative_slope=-0.1), r"negative_slope: expected a finite number >= 0, got -0.1"),
    (dict(negative_slope=float("nan")), r"negative_slope: expected a finite number >= 0, got nan"),
    (dict(bn_momentum=1.5), r"bn_momentum: expected a number in \[0, 1\], got 1.5"),
    (dict(bn_eps=0), r"bn_eps: expected a finite number > 0, got 0"),
    (dict(bn_eps="1e-5"), r"bn_eps: expected a finite number > 0, got '1e-5'"),
    (dict(dropout=1.0), r"dropout: expected a probability in \[0, 1\), got 1.0"),
], ids=str)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastgru.LiGRU(3, 4, **kwargs)


def test_bad_inputs_are_clear_errors():
    layer = fastgru.LiGRU(3, 4, seed=10)
    with pytest.raises(ValueError, match="x: a LiGRU's training forward .* needs at least 2 of them, got 1"):
        layer.forward(np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match="needs at least 2 of them, got 1"):
        layer.forward(np.ones((3, 1, 3)), lengths=[1])
    with pytest.raises(ValueError, match=r"x: expected 3 input features \(last axis\), got shape \(2, 2, 5\)"):
        layer.forward(np.ones((2, 2, 5)))
    state = layer.state_dict()
    state["bn_running_var_l0"] = -np.ones(8, np.float32)
    with pytest.raises(ValueError, match=r"bn_running_var: expected values >= 0, got -1"):
        layer.load_state_dict(state)
    state = layer.state_dict()
    state["bn_weight_l0"] = np.ones(7, np.float32)
    with pytest.raises(ValueError, match=r"bn_weight_l0 expected shape \(8,\), got \(7,\)"):
        layer.load_state_dict(state)
    with pytest.raises(KeyError, match="missing keys \\['bn_running_mean_l0'\\]"):
        layer.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "bn_running_mean_l0"})
    with pytest.raises(TypeError, match="bias"):
        fastgru.LiGRU(3, 4, bias=True)
    # A rejected call leaves the layer usable and unchanged.
    np.testing.assert_array_equal(layer.bn_running_var_l0, np.ones(8, np.float32))
    layer.forward(np.ones((2, 1, 3)))


def torch_ligru(torch, x, h0, weight_ih, weight_hh, bn_weight, bn_bias, running_mean, running_var, activation):
    """An independent LiGRU in torch autograd: F.batch_norm over (T·B) rows, then the recurrence."""
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    projection = (x.reshape(T * B, -1) @ weight_ih.T)
    a = torch.nn.functional.batch_norm(projection, running_mean, running_var, bn_weight, bn_bias,
                                       training=True, momentum=0.1, eps=1e-5).reshape(T, B, 2 * H)
    act = {"relu": torch.relu, "tanh": torch.tanh,
           "leaky_relu": lambda v: torch.nn.functional.leaky_relu(v, 0.2),
           # (torch's softplus returns v itself past its threshold, 20 by default)
           "softplus": lambda v: torch.nn.functional.softplus(v, threshold=50)}[activation]
    h, ys = h0, []
    for t in range(T):
        z = torch.sigmoid(a[t, :, :H] + h @ weight_hh[:H].T)
        n = act(a[t, :, H:] + h @ weight_hh[H:].T)
        h = z * h + (1 - z) * n
        ys.append(h)
    return torch.stack(ys), h


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_an_independent_torch_autograd_ligru(activation):
    torch = pytest.importorskip("torch")
    layer = fastgru.LiGRU(4, 5, activation=activation, negative_slope=0.2, dtype="float64", seed=11)
    rng = np.random.default_rng(11)
    state = randomised_batch_norm_state(layer, rng)
    x, h0 = rng.standard_normal((6, 3, 4)), rng.standard_normal((1, 3, 5))
    dy, dh_n = rng.standard_normal((6, 3, 5)), rng.standard_normal((1, 3, 5))
    y, h_n = layer.forward(x, h0)
    dx, dh0 = layer.backward(dy, dh_n)

    tensors = {k: torch.tensor(v, requires_grad=not k.startswith("bn_running")) for k, v in state.items()}
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0[0], requires_grad=True)
    yt, hnt = torch_ligru(torch, xt, h0t, *(tensors[n + "_l0"] for n in BN_NAMES), activation)
    (torch.sum(yt * torch.tensor(dy)) + torch.sum(hnt * torch.tensor(dh_n[0]))).backward()
    assert normalised_error(y, yt.detach().numpy()) <= 1e-12
    assert normalised_error(h_n[0], hnt.detach().numpy()) <= 1e-12
    assert normalised_error(dx, xt.grad.numpy()) <= 1e-12
    assert normalised_error(dh0[0], h0t.grad.numpy()) <= 1e-12
    for name in ("weight_ih", "weight_hh", "bn_weight", "bn_bias"):
        assert normalised_error(layer.grads[name + "_l0"], tensors[name + "_l0"].grad.numpy()) <= 1e-12, name
    # F.batch_norm updated its running statistics in place: BatchNorm1d's own rule.
    for name in ("bn_running_mean_l0", "bn_running_var_l0"):
        assert normalised_error(getattr(layer, name), tensors[name].detach().numpy()) <= 1e-12, name


def test_a_batch_with_nan_leaves_the_running_statistics_unchanged():
    layer = fastgru.LiGRU(3, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    layer.forward(x, train=True)
    before = layer.state_dict()
    poisoned = x.copy()
    poisoned[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="x: the batch's statistics are not finite"):
        layer.forward(poisoned, train=True)
    for name, value in layer.state_dict().items():
        assert np.array_equal(value, before[name]), name
    with pytest.raises(RuntimeError, match="backward: no training forward"):
        layer.backward(np.ones((5, 2, 4)))
    assert np.isfinite(layer(x)[0]).all()  # inference still works


def test_variants_have_no_framework_counterpart():
    converters = ("from_torch", "to_torch", "from_onnx", "to_onnx", "from_keras", "to_keras")
    for cls in (fastgru.LiGRU, fastgru.MGU):
        assert [name for name in converters if hasattr(cls, name)] == []
        # Handed to the GRU's own converters, they are refused by name.
        for converter, arguments in (("to_torch", ()), ("to_keras", ()), ("to_onnx", ("model.onnx",))):
            with pytest.raises(TypeError, match=f"{converter}: only GRU layers have a counterpart there, got "
                                                f"{cls.__name__}"):
                getattr(fastgru.GRU, converter)(cls(2, 3), *arguments)


def saturating_state(layer, z_bias, n_bias):
    """Zero weights, so that a = β: z = σ(z_bias) and n = act(n_bias) at every step."""
    state = {name: np.zeros_like(value) for name, value in layer.state_dict().items()}
    state["bn_weight_l0"][:] = 1
    state["bn_running_var_l0"][:] = 1
    state["bn_bias_l0"] = np.r_[z_bias, n_bias]
    layer.load_state_dict(state)
    return state


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_saturated_update_gate_keeps_the_state_exactly(dtype):
    # z = 1 must keep h whatever n is, and z = 0 take n: n + z ⊙ (h − n) returned −0.6875 for
    # h = −0.7 at n = 1e6 and 0 at n = 1e8 in float32.
    layer = fastgru.LiGRU(2, 6, dtype=dtype)
    n_bias = np.array([1e6, 1e8, 1e12, 1e6, 1e8, 1e12])
    state = saturating_state(layer, np.r_[np.full(3, 50.0), np.full(3, -50.0)], n_bias)
    x = np.random.default_rng(4).standard_normal((4, 3, 2)).astype(dtype)
    h0 = np.full((1, 3, 6), -0.7, dtype)
    y_ref, _, _ = network_reference(layer, state, x, h0, None, train=False)
    kept, taken = slice(0, 3), slice(3, 6)
    np.testing.assert_array_equal(y_ref[..., kept], np.full((4, 3, 3), -0.7, dtype))
    for y in (layer(x, h0)[0], layer.forward(x, h0, train=True)[0], layer.step(x[0], h0)[0][np.newaxis]):
        np.testing.assert_array_equal(y[..., kept], y_ref[: len(y), :, kept])
        np.testing.assert_allclose(y[..., taken], y_ref[: len(y), :, taken], rtol=1e-6)


def test_zoneout_keeps_the_state_exactly():
    # A unit that zoneout keeps holds exactly its previous state, however far the new one is:
    # h_new + 1 · (h_prev − h_new) lost it. Every output is either h0 (kept since step 0) or n.
    layer = fastgru.LiGRU(2, 6, zoneout=0.5, seed=5)
    saturating_state(layer, np.full(6, -50.0), np.full(6, 1e8))  # z ≈ 0: h_new = n = 1e8
    h0 = np.full((1, 3, 6), -0.7, np.float32)
    y, _ = layer.forward(np.zeros((8, 3, 2), np.float32), h0, train=True)
    kept = y == np.float32(-0.7)
    assert kept.any() and (~kept).any()
    np.testing.assert_array_equal(y[~kept], np.float32(1e8))


def test_an_infinite_batch_norm_scale_matches_the_reference():
    # γ = inf saturates its channel (z = 0 or 1, tanh = ±1) where the reference stays finite;
    # folding γ / √(σ² + ε) into W_ih gave inf − inf in the projection and inf · 0 in the shift.
    layer = fastgru.LiGRU(4, 5, activation="tanh", seed=6)
    rng = np.random.default_rng(6)
    state = randomised_batch_norm_state(layer, rng)
    state["bn_weight_l0"][[0, 3, 6, 9]] = np.inf  # z units 0 and 3, n units 1 and 4
    state["bn_running_mean_l0"][[3, 9]] = 0  # their shift β − inf · μ was inf · 0
    layer.load_state_dict(state)
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    h0 = rng.standard_normal((1, 3, 5)).astype(np.float32)
    y_ref, h_ref, _ = network_reference(layer, state, x, h0, None, train=False)
    assert np.isfinite(y_ref).all()
    y, h_n = layer(x, h0)
    assert normalised_error(y, y_ref) <= 1e-5 and normalised_error(h_n, h_ref) <= 1e-5
    y_t, _ = layer.step(x[0], h0)
    assert normalised_error(y_t, y_ref[0]) <= 1e-5
