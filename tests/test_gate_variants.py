"""The GRU's other forms of its gates (EQUATIONS.md §7: Dey & Salem's types 1-3), as layers:
the NumPy reference, central differences through layers, directions, lengths and the three
regularisations, step = sequence, the model file in both readers, pickling and the converters'
refusals."""

import pickle

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import (assert_gradients_match_central_differences, assert_one_layer_matches_the_reference,
                      assert_steps_equal_the_sequence, normalised_error)

FORMS = ("hidden_bias", "hidden", "bias")
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def forms_and_conventions():
    return [(gates, reset_after) for gates in FORMS for reset_after in (True, False)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("gates, reset_after", forms_and_conventions())
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (7, 3, 5, 13), (5, 17, 16, 33)], ids=str)
def test_forms_match_the_reference(shape, gates, reset_after, bias, dtype):
    T, B, I, H = shape
    layer = fastgru.GRU(I, H, gates=gates, reset_after=reset_after, bias=bias, dtype=dtype, seed=sum(shape))
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((T, B, I)).astype(dtype), rng.standard_normal((1, B, H)).astype(dtype)
    dy, dh_n = rng.standard_normal((T, B, H)).astype(dtype), rng.standard_normal((1, B, H)).astype(dtype)
    y, h_n = layer.forward(x, h0)
    dx, dh0 = layer.backward(dy, dh_n)
    p = {k[: -len("_l0")]: v.astype(np.float64) for k, v in layer.state_dict().items()}
    assert {k: v.shape for k, v in p.items()} == {
        k: v for k, v in reference.gru_variant_shapes(gates, I, H, bias).items()}
    y_ref, h_ref, cache = reference.gru_variant_forward(
        x.astype(np.float64), h0[0].astype(np.float64), p["weight_ih"], p["weight_hh"], p.get("bias_ih"),
        p.get("bias_hh"), gates=gates, reset_after=reset_after)
    g = reference.gru_variant_backward(cache, dy.astype(np.float64), dh_n[0].astype(np.float64))
    assert_one_layer_matches_the_reference(layer, (y, h_n), (dx, dh0), (y_ref, h_ref), g, TOLERANCE[dtype])


@pytest.mark.parametrize("gates, reset_after", forms_and_conventions())
def test_parameter_count_follows_the_formulas(gates, reset_after):
    I, H = 6, 10
    formula = {"hidden_bias": H * I + 3 * H * H + 4 * H, "hidden": H * I + 3 * H * H + 2 * H,
               "bias": H * I + H * H + 4 * H}[gates]
    assert fastgru.GRU(I, H, gates=gates, reset_after=reset_after).parameter_count() == formula
    no_bias = fastgru.GRU(I, H, gates=gates, reset_after=reset_after, bias=False)
    assert no_bias.parameter_count() == formula - {"hidden_bias": 4 * H, "hidden": 2 * H, "bias": 4 * H}[gates]
    assert fastgru.GRU(I, H).parameter_count() == 3 * H * I + 3 * H * H + 6 * H


@pytest.mark.parametrize("rates", [{}, dict(dropout=0.3, recurrent_dropout=0.25, zoneout=0.2)], ids=["plain", "regularised"])
@pytest.mark.parametrize("gates, reset_after", forms_and_conventions())
def test_stacked_bidirectional_forms_with_lengths_match_central_differences(gates, reset_after, rates):
    def make(seed=3):
        return fastgru.GRU(2, 3, num_layers=2, bidirectional=True, gates=gates, reset_after=reset_after,
                           dtype="float64", seed=seed, **rates)

    rng = np.random.default_rng(4)
    lengths = np.array([4, 2, 3])
    x, h0 = rng.standard_normal((4, 3, 2)), 0.5 * rng.standard_normal((4, 3, 3))
    dy, dh_n = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 3))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0
    params = make().state_dict()

    def fresh(state=params):
        # The same seed gives the same masks to the first training forward.
        layer = make(seed=11)
        layer.load_state_dict(state)
        return layer

    layer = fresh()
    layer.forward(x, h0, lengths=lengths)
    dx, dh0 = layer.backward(dy, dh_n)

    assert_gradients_match_central_differences(
        (dx, dh0, layer.grads), fresh, params, x, h0, dy, dh_n, lengths=lengths,
        names=("weight_ih_l0", "weight_hh_l1_reverse", "bias_ih_l1", "bias_hh_l0_reverse"))


@pytest.mark.parametrize("gates, reset_after", forms_and_conventions())
def test_step_with_resets_equals_the_sequence(gates, reset_after):
    layer = fastgru.GRU(4, 9, num_layers=2, gates=gates, reset_after=reset_after, seed=7)
    assert_steps_equal_the_sequence(layer, np.random.default_rng(8).standard_normal((6, 3, 4)).astype(np.float32))


def test_bias_gates_are_constant_over_time():
    layer = fastgru.GRU(3, 5, gates="bias", dtype="float64", seed=9)
    p = layer.state_dict()
    z = 1 / (1 + np.exp(-p["bias_hh_l0"][5:10]))
    x = np.random.default_rng(10).standard_normal((4, 2, 3))
    y, _ = layer(x)
    h_prev = np.concatenate([np.zeros((1, 2, 5)), y[:-1]])
    # h' = (1 − z) n + z h with the same z at every step: n = (h' − z h) / (1 − z) lies in (−1, 1).
    n = (y - z * h_prev) / (1 - z)
    assert np.all(np.abs(n) < 1)


@pytest.mark.parametrize("gates", FORMS)
def test_forms_in_the_model_file_both_readers_and_pickles(gates, tmp_path):
    layer = fastgru.GRU(3, 4, num_layers=2, bidirectional=True, gates=gates, reset_after=False, seed=5)
    layer.save(tmp_path / "gru.safetensors")
    loaded = fastgru.load(tmp_path / "gru.safetensors")
    assert type(loaded) is fastgru.GRU and loaded.config() == layer.config() and loaded.gates == gates
    x = np.random.default_rng(6).standard_normal((5, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x)[0], layer(x)[0])
    from fastgru import _core

    core = _core.load_model_file_f64(str(tmp_path / "gru.safetensors"))
    y64, _ = core.forward(x.astype(np.float64), None, None, False, None)
    assert normalised_error(y64, layer(x)[0]) <= 1e-6
    copy = pickle.loads(pickle.dumps(layer))
    assert copy.gates == gates
    np.testing.assert_array_equal(copy(x)[0], layer(x)[0])


def test_files_without_the_field_are_full_grus(tmp_path):
    """A file written before the forms existed has no "gates" field: both readers read a GRU."""
    import json
    import struct

    layer = fastgru.GRU(3, 4, seed=1)
    layer.save(tmp_path / "new.safetensors")
    raw = (tmp_path / "new.safetensors").read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    config = json.loads(header["__metadata__"]["config"])
    assert config.pop("gates") == "full"
    header["__metadata__"]["config"] = json.dumps(config)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (tmp_path / "old.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])
    old = fastgru.load(tmp_path / "old.safetensors")
    assert old.gates == "full" and old.config() == layer.config()
    from fastgru import _core

    x = np.ones((2, 1, 3))
    assert normalised_error(_core.load_model_file_f64(str(tmp_path / "old.safetensors")).forward(
        x, None, None, False, None)[0], layer(x.astype(np.float32))[0]) <= 1e-6


def test_bad_forms_and_converters_are_refused():
    with pytest.raises(ValueError, match="gates: expected one of 'full', 'hidden_bias', 'hidden', 'bias', got 'input'"):
        fastgru.GRU(2, 3, gates="input")
    layer = fastgru.GRU(2, 3, gates="hidden")
    for converter in ("to_torch", "to_keras"):
        with pytest.raises(ValueError, match=f"{converter}: only GRUs with gates='full'"):
            getattr(layer, converter)()
    with pytest.raises(ValueError, match="to_onnx: only GRUs with gates='full'"):
        layer.to_onnx("unused.onnx")
    with pytest.raises(ValueError, match="weight_ih_l0"):
        layer.load_state_dict({**layer.state_dict(), "weight_ih_l0": np.zeros((9, 2), np.float32)})
    from fastgru import _core

    with pytest.raises(ValueError, match="gates: expected 'full' for cell 'mgu', got 'hidden'"):
        _core.GruF32(2, 3, 1, False, True, True, [(np.zeros((6, 2), np.float32), np.zeros((6, 3), np.float32),
                                                 None, None)], cell="mgu", gates="hidden")


def test_flip_update_gate_leaves_the_arrays_without_z():
    layer = fastgru.GRU(2, 3, gates="hidden", seed=2)
    state = layer.state_dict()
    flipped = fastgru.flip_update_gate(state)
    np.testing.assert_array_equal(flipped["weight_ih_l0"], state["weight_ih_l0"])
    np.testing.assert_array_equal(flipped["bias_hh_l0"], state["bias_hh_l0"])
    np.testing.assert_array_equal(flipped["weight_hh_l0"][3:6], -state["weight_hh_l0"][3:6])
    np.testing.assert_array_equal(flipped["weight_hh_l0"][:3], state["weight_hh_l0"][:3])


def test_the_c_tests_model_files_match_the_reference():
    # cpp/tests/data/gru_{hidden,bias}2_f32.safetensors, which the C and C++ tests load.
    from pathlib import Path

    data = Path(__file__).parents[1] / "cpp" / "tests" / "data"
    x = np.random.default_rng(13).standard_normal((7, 3, 3))
    for file, gates, reset_after in (("gru_hidden2_f32", "hidden", False), ("gru_bias2_f32", "bias", True)):
        layer = fastgru.load(data / f"{file}.safetensors")
        assert (layer.gates, layer.reset_after, layer.num_layers, layer.input_size) == (gates, reset_after, 2, 3)
        p = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
        h = x
        for k in range(2):
            h, _, _ = reference.gru_variant_forward(h, None, p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"],
                                                    p[f"bias_ih_l{k}"], p[f"bias_hh_l{k}"], gates=gates,
                                                    reset_after=reset_after)
        assert normalised_error(layer(x.astype(np.float32))[0], h) <= 1e-5
