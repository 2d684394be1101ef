"""bf16 and int8 GRUs (EQUATIONS.md §9): GRU.quantize against the NumPy definition of the same
quantization (fastgru.reference_quantized) on every instruction set (conftest's isa fixture),
and what a quantized layer refuses."""

import pickle

import numpy as np
import pytest

import fastgru
from fastgru import reference_quantized as rq

from .helpers import normalised_error

MODES = ("bf16", "int8")
# One step from the same state agrees with the definition to float32 rounding, but for
# reset-before in bf16: its candidate's input r ⊙ h is rounded to bf16 after r, which the kernels
# compute in float32 and the definition in float64, so an element lying at a rounding boundary may
# round the other way: one bf16 ulp of |r ⊙ h| times a weight of ±1/√H, a few 1e-4 at most.
STEP_TOLERANCE = {("bf16", True): 2e-6, ("int8", True): 2e-6, ("bf16", False): 1e-3, ("int8", False): 2e-6}


def _layer(I, H, reset_after, seed=0, **settings):
    return fastgru.GRU(I, H, reset_after=reset_after, seed=seed, **settings)


def _weights(layer, suffix="_l0"):
    """weight_ih, weight_hh, bias_ih, bias_hh (None without biases) of layer 0."""
    state = layer.state_dict()
    return [state.get(name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("I, H, B", [(1, 1, 1), (5, 7, 3), (19, 37, 5), (33, 100, 17), (64, 256, 2)])
@pytest.mark.parametrize("gates", ["full", "hidden_bias", "hidden", "bias"])
def test_each_step_matches_the_definition(mode, reset_after, I, H, B, gates):
    layer = _layer(I, H, reset_after, seed=H, gates=gates)
    q = layer.quantize(mode)
    rng = np.random.default_rng(I + H)
    h = rng.uniform(-1, 1, (B, H)).astype(np.float32)
    for t in range(4):
        x_t = (rng.standard_normal((B, I)) * (1 + t)).astype(np.float32)
        _, h_next = q.step(x_t, h[np.newaxis])
        expected, _ = rq.gru_forward_quantized(x_t[np.newaxis], h, *_weights(layer), reset_after=reset_after,
                                               mode=mode, gates=gates)
        assert np.abs(h_next[0] - expected[0]).max() <= STEP_TOLERANCE[mode, reset_after]
        h = h_next[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("I, H, B, bias", [(1, 1, 1, True), (5, 7, 3, False), (19, 37, 5, True), (33, 100, 17, True)])
def test_mgu_steps_match_the_definition(mode, I, H, B, bias):
    layer = fastgru.MGU(I, H, bias=bias, seed=H)
    q = layer.quantize(mode)
    rng = np.random.default_rng(H)
    h = rng.uniform(-1, 1, (B, H)).astype(np.float32)
    for t in range(4):
        x_t = (rng.standard_normal((B, I)) * (1 + t)).astype(np.float32)
        _, h_next = q.step(x_t, h[np.newaxis])
        expected, _ = rq.mgu_forward_quantized(x_t[np.newaxis], h, *_weights(layer), mode=mode)
        # As reset-before's r ⊙ h, f ⊙ h may round the other way in bf16 (STEP_TOLERANCE).
        assert np.abs(h_next[0] - expected[0]).max() <= STEP_TOLERANCE[mode, False]
        h = h_next[0]
    y, _ = q(np.ones((6, B, I), np.float32))
    assert normalised_error(y, layer(np.ones((6, B, I), np.float32))[0]) < (1e-2 if mode == "bf16" else 3e-2)


def _batch_normalised(cls, I, H, seed, **settings):
    """A LiGRU or LiBRU whose running statistics are not the initial ones (a trained layer's)."""
    layer = cls(I, H, seed=seed, **settings)
    rng = np.random.default_rng(seed)
    state = layer.state_dict()
    for name in state:
        if name.startswith(("bn_running_var", "bn_weight")):
            state[name] = rng.uniform(0.5, 2.0, state[name].shape).astype(np.float32)
        elif name.startswith(("bn_running_mean", "bn_bias")):
            state[name] = rng.normal(0, 0.3, state[name].shape).astype(np.float32)
    layer.load_state_dict(state)
    return layer


def _batch_norm_arrays(layer):
    state = layer.state_dict()
    return [state[name + "_l0"] for name in ("weight_ih", "weight_hh", "bn_weight", "bn_bias", "bn_running_mean",
                                             "bn_running_var")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cell, activation", [("LiGRU", "relu"), ("LiGRU", "tanh"), ("LiGRU", "leaky_relu"),
                                              ("LiGRU", "softplus"), ("LiBRU", None)])
@pytest.mark.parametrize("I, H, B", [(1, 1, 1), (5, 7, 3), (19, 37, 5), (33, 100, 17)])
def test_batch_normalised_cells_match_the_definition(mode, cell, activation, I, H, B):
    settings = {"activation": activation, "negative_slope": 0.2} if activation else {}
    layer = _batch_normalised(getattr(fastgru, cell), I, H, seed=H, **settings)
    q = layer.quantize(mode)
    rng = np.random.default_rng(H)
    h = rng.uniform(-1, 1, (B, H)).astype(np.float32)
    if cell == "LiBRU":
        h = -np.abs(h)  # log-probabilities
    arrays = _batch_norm_arrays(layer)
    for t in range(3):
        x_t = (rng.standard_normal((B, I)) * (1 + t)).astype(np.float32)
        _, h_next = q.step(x_t, h[np.newaxis])
        if cell == "LiGRU":
            expected, _ = rq.ligru_forward_quantized(x_t[np.newaxis], h, *arrays, eps=layer.bn_eps,
                                                     activation=activation, negative_slope=0.2, mode=mode)
        else:
            expected, _ = rq.libru_forward_quantized(x_t[np.newaxis], h, *arrays, eps=layer.bn_eps, mode=mode)
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(h_next[0] - expected[0]).max() <= 2e-6 * scale
        h = h_next[0]
    x = rng.standard_normal((8, B, I)).astype(np.float32)
    assert normalised_error(q(x)[0], layer(x)[0]) < (1e-2 if mode == "bf16" else 3e-2)


def test_batch_norm_folding_that_is_not_finite_is_refused():
    layer = fastgru.LiGRU(3, 4, seed=0)
    state = layer.state_dict()
    state["bn_weight_l0"] = np.full(8, 3e38, np.float32)
    state["bn_running_var_l0"] = np.full(8, 1e-30, np.float32)
    layer.load_state_dict(state)
    with pytest.raises(ValueError, match=r"bn_weight: a bf16 or int8 layer folds batch normalisation"):
        layer.quantize("int8")


@pytest.mark.parametrize("gates", ["hidden_bias", "hidden", "bias"])
def test_gate_forms_without_biases(gates):
    layer = fastgru.GRU(6, 20, bias=False, gates=gates, seed=3)
    x = np.random.default_rng(0).standard_normal((5, 4, 6)).astype(np.float32)
    for mode in MODES:
        y, _ = layer.quantize(mode)(x)
        expected, _ = rq.gru_forward_quantized(x, None, *_weights(layer), mode=mode, gates=gates)
        assert normalised_error(y, expected) <= 1e-5


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reset_after", [True, False])
def test_sequences_match_the_definition_and_stay_near_float32(mode, reset_after):
    layer = _layer(24, 48, reset_after, seed=3)
    q = layer.quantize(mode)
    x = np.random.default_rng(4).standard_normal((30, 6, 24)).astype(np.float32)
    h0 = np.random.default_rng(5).uniform(-1, 1, (1, 6, 48)).astype(np.float32)
    y, h_n = q(x, h0)
    expected, _ = rq.gru_forward_quantized(x, h0[0], *_weights(layer), reset_after=reset_after, mode=mode)
    y_float, _ = layer(x, h0)
    quantization_error = normalised_error(expected, y_float)
    # Rounding differences compound over the steps, but stay far below the quantization's own.
    assert normalised_error(y, expected) <= 0.05 * quantization_error
    assert 1e-5 < quantization_error < (1e-2 if mode == "bf16" else 3e-2)
    np.testing.assert_array_equal(h_n[0], y[-1])


@pytest.mark.parametrize("mode", MODES)
def test_layers_directions_lengths_masks_and_batch_first(mode):
    layer = fastgru.GRU(6, 10, num_layers=2, bidirectional=True, batch_first=True, seed=2)
    q = layer.quantize(mode)
    x = np.random.default_rng(0).standard_normal((4, 9, 6)).astype(np.float32)
    lengths = np.array([9, 3, 0, 6])
    y, h_n = q(x, lengths=lengths)
    assert y.shape == (4, 9, 20) and h_n.shape == (4, 4, 10)
    for b, n in enumerate(lengths):
        if n == 0:
            assert not y[b].any()
            continue
        y_b, h_b = q(x[b:b + 1, :n])
        np.testing.assert_allclose(y[b, :n], y_b[0], atol=1e-6)
        np.testing.assert_allclose(h_n[:, b], h_b[:, 0], atol=1e-6)
        assert not y[b, n:].any()
    # A mask keeps the state through the masked steps (as float32 layers do).
    mask = np.ones((4, 9), bool)
    mask[1, 4:] = False
    y_masked, _ = q(x, mask=mask)
    np.testing.assert_array_equal(y_masked[1, 4:, :10], np.broadcast_to(y_masked[1, 3, :10], (5, 10)))
    # Close to the float32 layer, as the quantization allows.
    assert normalised_error(q(x)[0], layer(x)[0]) < (1e-2 if mode == "bf16" else 3e-2)


@pytest.mark.parametrize("mode", MODES)
def test_streaming_steps_equal_the_whole_sequence_and_threads_agree(mode):
    layer = fastgru.GRU(32, 64, num_layers=2, seed=7)
    q = layer.quantize(mode)
    x = np.random.default_rng(1).standard_normal((12, 40, 32)).astype(np.float32)
    y, h_n = q(x)
    h = None
    for t in range(12):
        y_t, h = q.step(x[t], h)
        np.testing.assert_allclose(y_t, y[t], atol=1e-6)
    np.testing.assert_allclose(h, h_n, atol=1e-6)
    previous = fastgru.get_num_threads()
    try:
        fastgru.set_num_threads(1)
        y_one, _ = q(x)
        fastgru.set_num_threads(2)
        y_two, _ = q(x)
    finally:
        fastgru.set_num_threads(previous)
    np.testing.assert_allclose(y_one, y_two, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_quantized_copies_pickle_and_leave_the_original_alone(mode):
    layer = fastgru.GRU(8, 16, seed=1)
    x = np.random.default_rng(2).standard_normal((5, 3, 8)).astype(np.float32)
    before = layer(x)[0]
    q = layer.quantize(mode)
    assert q.precision == mode and layer.precision == "full" and type(q) is fastgru.GRU
    np.testing.assert_array_equal(layer(x)[0], before)
    restored = pickle.loads(pickle.dumps(q))
    assert restored.precision == mode
    np.testing.assert_array_equal(restored(x)[0], q(x)[0])
    # Training, and quantizing twice, are refused by name.
    with pytest.raises(ValueError, match=f"train: .*{mode}.*inference only"):
        q.forward(x, train=True)
    with pytest.raises(RuntimeError, match="backward"):
        q.backward(np.zeros_like(before))
    with pytest.raises(ValueError, match=f"quantize: .*{mode} already"):
        q.quantize("bf16")


def test_quantized_layers_and_models_do_not_export_to_onnx_as_float(tmp_path):
    pytest.importorskip("onnx")
    layer = fastgru.GRU(3, 4, seed=0).quantize("int8")
    with pytest.raises(ValueError, match="to_onnx: this GRU's products run in int8"):
        layer.to_onnx(tmp_path / "layer.onnx")
    model = fastgru.Model(fastgru.GRU(3, 4, seed=0), outputs=2, seed=1).quantize("bf16")
    with pytest.raises(ValueError, match="to_onnx: this GRU's products run in bf16"):
        model.to_onnx(tmp_path / "model.onnx")
    assert not any(tmp_path.iterdir())


def test_what_quantize_refuses():
    layer = fastgru.GRU(3, 4)
    with pytest.raises(ValueError, match=r"mode: expected one of \('bf16', 'int8'\), got 'fp8'"):
        layer.quantize("fp8")
    with pytest.raises(ValueError, match="quantize: .*float32.*float64"):
        fastgru.GRU(3, 4, dtype="float64").quantize("bf16")


@pytest.mark.parametrize("mode", MODES)
def test_values_that_are_not_finite_carry_through_as_in_float32(mode):
    # A row of x (and so of every later layer's input) or of h0 holding a NaN has no int8 scale:
    # its outputs are NaN, as float32's and bf16's are; the other rows are untouched. (An inf,
    # which float32 may saturate through a gate, gives NaN in int8 too.)
    layer = fastgru.GRU(3, 4, num_layers=2, seed=0)
    q = layer.quantize(mode)
    x = np.ones((2, 3, 3), np.float32)
    x[1, 0, 2] = np.nan
    h0 = np.zeros((2, 3, 4), np.float32)
    h0[0, 2, 1] = np.nan
    y, h_n = q(x, h0)
    assert np.isfinite(y[0, 0]).all() and np.isnan(y[1, 0]).all() and np.isnan(y[:, 2]).all()
    np.testing.assert_array_equal(y[:, 1], q(x[:, 1:2])[0][:, 0])
    assert np.isnan(layer(x, h0)[0][1, 0]).all()


def test_weights_that_are_not_finite_are_refused_in_int8_where_they_were_set():
    layer = fastgru.GRU(3, 8, seed=0)
    state = layer.state_dict()
    state["weight_hh_l0"][10, 5] = np.inf
    layer.load_state_dict(state)
    with pytest.raises(ValueError, match=r"weight_hh: int8 quantization needs finite weights, got inf at row 10, "
                                         r"column 5"):
        layer.quantize("int8")
    assert np.isnan(layer.quantize("bf16")(np.ones((2, 1, 3), np.float32))[0]).any()
