"""The minimal gated unit: the NumPy reference, the core, central differences, the model file."""

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import central_difference, normalised_error

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (7, 3, 5, 13), (5, 17, 16, 33)], ids=str)
def test_mgu_matches_reference(shape, dtype):
    T, B, I, H = shape
    layer = fastgru.MGU(I, H, dtype=dtype, seed=sum(shape))
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((T, B, I)).astype(dtype), rng.standard_normal((1, B, H)).astype(dtype)
    dy, dh_n = rng.standard_normal((T, B, H)).astype(dtype), rng.standard_normal((1, B, H)).astype(dtype)
    y, h_n = layer.forward(x, h0)
    dx, dh0 = layer.backward(dy, dh_n)
    p = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    y_ref, h_ref, cache = reference.mgu_forward(x.astype(np.float64), h0[0].astype(np.float64), p["weight_ih_l0"],
                                                p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    g = reference.mgu_backward(cache, dy.astype(np.float64), dh_n[0].astype(np.float64))
    tol = TOLERANCE[dtype]
    assert normalised_error(y, y_ref) <= tol and normalised_error(h_n[0], h_ref) <= tol
    assert normalised_error(dx, g["dx"]) <= tol and normalised_error(dh0[0], g["dh0"]) <= tol
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert normalised_error(layer.grads[name + "_l0"], g[name]) <= tol, name


def test_mgu_reference_gradients_match_central_differences():
    rng = np.random.default_rng(2)
    x, h0 = rng.standard_normal((4, 3, 2)), rng.standard_normal((3, 5))
    params = [rng.uniform(-0.6, 0.6, s) for s in [(10, 2), (10, 5), (10,), (10,)]]
    dy, dh_n = rng.standard_normal((4, 3, 5)), rng.standard_normal((3, 5))

    def f():
        y, h_n, _ = reference.mgu_forward(x, h0, *params)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    _, _, cache = reference.mgu_forward(x, h0, *params)
    g = reference.mgu_backward(cache, dy, dh_n)
    assert normalised_error(g["dx"], central_difference(f, x)) <= 1e-7
    assert normalised_error(g["dh0"], central_difference(f, h0)) <= 1e-7
    for name, value in zip(["weight_ih", "weight_hh", "bias_ih", "bias_hh"], params):
        assert normalised_error(g[name], central_difference(f, value)) <= 1e-7, name


def test_stacked_bidirectional_mgu_with_lengths_matches_central_differences():
    layer = fastgru.MGU(2, 3, num_layers=2, bidirectional=True, dtype="float64", seed=3)
    rng = np.random.default_rng(4)
    lengths = np.array([4, 2, 3])
    x, h0 = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 3))
    dy, dh_n = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 3))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0
    layer.forward(x, h0, lengths=lengths)
    dx, dh0 = layer.backward(dy, dh_n)
    params = layer.state_dict()

    def loss(state=params):
        layer.load_state_dict(state)
        y, h_n = layer(x, h0, lengths=lengths)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    assert normalised_error(dx, central_difference(loss, x)) <= 1e-7
    assert normalised_error(dh0, central_difference(loss, h0)) <= 1e-7
    for name in ("weight_ih_l1_reverse", "weight_hh_l0", "bias_hh_l1"):
        value = params[name].copy()
        numeric = central_difference(lambda: loss({**params, name: value}), value)
        assert normalised_error(layer.grads[name], numeric) <= 1e-7, name


def test_mgu_model_file_and_converters(tmp_path):
    layer = fastgru.MGU(3, 4, num_layers=2, batch_first=True, seed=5)
    layer.save(tmp_path / "mgu.safetensors")
    loaded = fastgru.load(tmp_path / "mgu.safetensors")
    assert type(loaded) is fastgru.MGU and loaded.config() == layer.config()
    x = np.random.default_rng(6).standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x)[0], layer(x)[0])
    assert not hasattr(layer, "to_onnx")
    y_t, h = layer.step(x[:, 0])
    assert normalised_error(y_t, layer(x[:, :1])[0][:, 0]) <= 1e-6
