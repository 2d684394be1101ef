"""ONNX's clip in the GRU (EQUATIONS.md §1.1): the pre-activations of r, z and n bounded to
[-clip, clip]. Against the NumPy reference (forward and backward, every form of the gates, both
conventions), central differences, ONNX Runtime (from_onnx and to_onnx), the quantized
definition, both model-file readers, and what is refused."""

import json
import pickle
import struct

import numpy as np
import pytest

import fastgru
from fastgru import _core, reference
from fastgru import reference_quantized as rq

from .helpers import (assert_gradients_match_central_differences, assert_one_layer_matches_the_reference,
                      assert_steps_equal_the_sequence, normalised_error)

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
FORMS = ("full", "hidden_bias", "hidden", "bias")


def _clipped_fraction(cache):
    """The share of the pre-activations the forward clipped, from the reference's cache."""
    keeps = [keep for step in cache["steps"] for keep in step["keep"] if np.ndim(keep)]
    return 1 - np.mean(np.concatenate([np.ravel(keep) for keep in keeps]))


def _scaled_layer(I, H, scale=3.0, **settings):
    """A GRU whose weights are ``scale`` times the default's, so that a clip of 0.5 bites often."""
    layer = fastgru.GRU(I, H, **settings)
    layer.load_state_dict({name: value * scale for name, value in layer.state_dict().items()})
    return layer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("gates", FORMS)
@pytest.mark.parametrize("shape", [(7, 3, 5, 13), (5, 17, 16, 33)], ids=str)
def test_clipped_layers_match_the_reference(shape, gates, reset_after, dtype):
    T, B, I, H = shape
    clip = 0.5
    layer = _scaled_layer(I, H, gates=gates, reset_after=reset_after, dtype=dtype, seed=sum(shape), clip=clip)
    rng = np.random.default_rng(1)
    x, h0 = (2 * rng.standard_normal((T, B, I))).astype(dtype), rng.standard_normal((1, B, H)).astype(dtype)
    dy, dh_n = rng.standard_normal((T, B, H)).astype(dtype), rng.standard_normal((1, B, H)).astype(dtype)
    y, h_n = layer.forward(x, h0)
    dx, dh0 = layer.backward(dy, dh_n)
    p = {k[: -len("_l0")]: v.astype(np.float64) for k, v in layer.state_dict().items()}
    # The float32 layer clips at clip rounded to float32 (ONNX's attribute is a float32).
    bound = float(np.dtype(dtype).type(clip))
    y_ref, h_ref, cache = reference.gru_variant_forward(
        x.astype(np.float64), h0[0].astype(np.float64), p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
        gates=gates, reset_after=reset_after, clip=bound)
    assert 0.1 < _clipped_fraction(cache) < 0.9  # the clip changes the outputs and the gradients
    g = reference.gru_variant_backward(cache, dy.astype(np.float64), dh_n[0].astype(np.float64))
    assert_one_layer_matches_the_reference(layer, (y, h_n), (dx, dh0), (y_ref, h_ref), g, TOLERANCE[dtype])
    unclipped, _, _ = reference.gru_variant_forward(
        x.astype(np.float64), h0[0].astype(np.float64), p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
        gates=gates, reset_after=reset_after)
    assert normalised_error(y, unclipped) > 1e-2


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("gates", ["full", "bias"])
def test_clipped_stacks_with_lengths_match_central_differences(gates, reset_after):
    def make():
        return _scaled_layer(2, 3, scale=2.0, num_layers=2, bidirectional=True, gates=gates,
                             reset_after=reset_after, dtype="float64", seed=3, clip=0.8)

    rng = np.random.default_rng(4)
    lengths = np.array([4, 2, 3])
    x, h0 = 2 * rng.standard_normal((4, 3, 2)), 0.5 * rng.standard_normal((4, 3, 3))
    dy, dh_n = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 3))
    params = make().state_dict()

    def fresh(state=params):
        layer = make()
        layer.load_state_dict(state)
        return layer

    layer = fresh()
    y, _ = layer.forward(x, h0, lengths=lengths)
    dx, dh0 = layer.backward(dy, dh_n)
    unclipped = fastgru.GRU(**{**layer.config(), "clip": None})
    unclipped.load_state_dict(params)
    assert normalised_error(y, unclipped(x, h0, lengths=lengths)[0]) > 1e-2

    assert_gradients_match_central_differences(
        (dx, dh0, layer.grads), fresh, params, x, h0, dy, dh_n, lengths=lengths,
        names=("weight_ih_l0", "weight_hh_l1_reverse", "bias_ih_l1", "bias_hh_l0_reverse"))


@pytest.mark.parametrize("reset_after", [True, False])
def test_a_bound_no_value_reaches_changes_nothing(reset_after):
    plain = fastgru.GRU(4, 9, reset_after=reset_after, seed=5)
    bounded = fastgru.GRU(4, 9, reset_after=reset_after, seed=5, clip=1e30)
    x = np.random.default_rng(6).standard_normal((5, 3, 4)).astype(np.float32)
    dy = np.ones((5, 3, 9), np.float32)
    for layer in (plain, bounded):
        layer.forward(x)
        layer.backward(dy)
    np.testing.assert_array_equal(bounded(x)[0], plain(x)[0])
    for name, grad in plain.grads.items():
        np.testing.assert_array_equal(bounded.grads[name], grad)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("gates", FORMS)
def test_clipped_steps_equal_the_sequence(gates, reset_after):
    layer = _scaled_layer(4, 9, num_layers=2, gates=gates, reset_after=reset_after, seed=7, clip=0.4)
    assert_steps_equal_the_sequence(layer, (2 * np.random.default_rng(8).standard_normal((6, 3, 4))).astype(np.float32))


@pytest.mark.parametrize("mode", ["bf16", "int8"])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("gates", FORMS)
def test_quantized_clipped_layers_match_the_definition(mode, reset_after, gates):
    I, H, B = 19, 37, 5
    layer = _scaled_layer(I, H, gates=gates, reset_after=reset_after, seed=H, clip=0.5)
    quantized = layer.quantize(mode)
    assert quantized.clip == 0.5
    state = layer.state_dict()
    weights = [state.get(name + "_l0") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    rng = np.random.default_rng(I + H)
    h = rng.uniform(-1, 1, (B, H)).astype(np.float32)
    for t in range(3):
        x_t = (rng.standard_normal((B, I)) * (1 + t)).astype(np.float32)
        _, h_next = quantized.step(x_t, h[np.newaxis])
        expected, _ = rq.gru_forward_quantized(x_t[np.newaxis], h, *weights, reset_after=reset_after, mode=mode,
                                               gates=gates, clip=np.float32(0.5))
        unclipped, _ = rq.gru_forward_quantized(x_t[np.newaxis], h, *weights, reset_after=reset_after, mode=mode,
                                                gates=gates)
        # As test_quantized_layers' STEP_TOLERANCE: bf16 reset-before may round r ⊙ h the other way.
        assert np.abs(h_next[0] - expected[0]).max() <= (1e-3 if (mode, reset_after) == ("bf16", False) else 2e-6)
        assert np.abs(unclipped[0] - expected[0]).max() > 1e-2
        h = h_next[0]


# ------------------------------------------------------------------ ONNX Runtime
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from .test_onnx import save_with_second_node_changed, time_major_equivalent  # noqa: E402


def _onnx_clipped_gru(direction, linear_before_reset, clip, I, H, seed=0):
    """One time-major ONNX GRU node with clip: X (T, B, I), sequence_lens (B,), initial_h (D, B, H)."""
    D = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(seed)
    initializers = [numpy_helper.from_array((1.5 * rng.standard_normal(shape)).astype(np.float32), name)
                    for name, shape in (("W", (D, 3 * H, I)), ("R", (D, 3 * H, H)), ("B", (D, 6 * H)))]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I]),
              helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
              helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [D, "B", H])]
    node = helper.make_node("GRU", ["X", "W", "R", "B", "sequence_lens", "initial_h"], ["Y", "Y_h"], hidden_size=H,
                            direction=direction, linear_before_reset=linear_before_reset, clip=clip)
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", D, "B", H]),
               helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [D, "B", H])]
    model = helper.make_model(helper.make_graph([node], "clipped_gru", inputs, outputs, initializers),
                              opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("linear_before_reset", [1, 0])
def test_from_onnx_reads_clip_and_matches_onnxruntime(tmp_path, direction, linear_before_reset):
    T, B, I, H = 6, 4, 3, 5
    D = 2 if direction == "bidirectional" else 1
    model = _onnx_clipped_gru(direction, linear_before_reset, 0.75, I, H)
    onnx.save(model, tmp_path / "clipped.onnx")
    layer = fastgru.GRU.from_onnx(tmp_path / "clipped.onnx")
    assert layer.clip == 0.75
    rng = np.random.default_rng(1)
    feeds = {"X": (2 * rng.standard_normal((T, B, I))).astype(np.float32),
             "sequence_lens": np.array([6, 2, 5, 1], np.int32),
             "initial_h": (0.5 * rng.standard_normal((D, B, H))).astype(np.float32)}
    Y, Y_h = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    y, h_n = layer(feeds["X"], feeds["initial_h"], lengths=feeds["sequence_lens"])
    assert normalised_error(y, Y.transpose(0, 2, 1, 3).reshape(T, B, D * H)) <= 1e-5
    assert normalised_error(h_n, Y_h) <= 1e-5
    # The same node without its clip computes something else.
    unclipped = fastgru.GRU(**{**layer.config(), "clip": None})
    unclipped.load_state_dict(layer.state_dict())
    assert normalised_error(unclipped(feeds["X"], feeds["initial_h"], lengths=feeds["sequence_lens"])[0], y) > 1e-2


@pytest.mark.parametrize("layout", [0, 1])
def test_to_onnx_writes_clip_that_onnxruntime_runs(tmp_path, layout):
    layer = _scaled_layer(3, 5, num_layers=2, bidirectional=True, reset_after=False, batch_first=True, seed=2,
                          clip=0.6)
    path = tmp_path / "clipped.onnx"
    layer.to_onnx(path, initial_state=True, lengths=True, layout=layout)
    model = onnx.load(path)
    clips = [helper.get_attribute_value(a) for node in model.graph.node if node.op_type == "GRU"
             for a in node.attribute if a.name == "clip"]
    assert clips == [pytest.approx(0.6)] * 2
    rng = np.random.default_rng(3)
    x = (2 * rng.standard_normal((4, 6, 3))).astype(np.float32)
    h0 = rng.standard_normal((4, 4, 5)).astype(np.float32)
    lengths = np.array([6, 2, 4, 1])
    y, h_n = layer(x, h0, lengths=lengths)
    if layout:  # ONNX Runtime's CPU GRU runs time-major nodes only: the batch-major one's equivalent
        model = time_major_equivalent(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y_ort, h_ort = session.run(None, {"x": x, "h0": h0, "lengths": lengths})
    assert normalised_error(y, y_ort) <= 1e-5 and normalised_error(h_n, h_ort) <= 1e-5
    back = fastgru.GRU.from_onnx(path)
    assert back.config() == layer.config()


# ------------------------------------------------------------------ model files and refusals
def _rewrite_config(source, target, change):
    """Copies a layer file with its configuration JSON changed by ``change(config)``."""
    raw = source.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    config = json.loads(header["__metadata__"]["config"])
    change(config)
    header["__metadata__"]["config"] = json.dumps(config)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    target.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])


def test_clip_in_model_files_both_readers_and_pickles(tmp_path):
    layer = _scaled_layer(3, 4, num_layers=2, reset_after=False, seed=5, clip=0.25)
    layer.save(tmp_path / "gru.safetensors")
    loaded = fastgru.load(tmp_path / "gru.safetensors")
    assert loaded.clip == 0.25 and loaded.config() == layer.config()
    x = (2 * np.random.default_rng(6).standard_normal((5, 2, 3))).astype(np.float32)
    np.testing.assert_array_equal(loaded(x)[0], layer(x)[0])
    for load, dtype in ((_core.load_model_file_f32, np.float32), (_core.load_model_file_f64, np.float64)):
        y, _ = load(str(tmp_path / "gru.safetensors")).forward(x.astype(dtype), None, None, False, None)
        assert normalised_error(y, layer(x)[0]) <= 1e-6
    copy = pickle.loads(pickle.dumps(layer))
    assert copy.clip == 0.25
    np.testing.assert_array_equal(copy(x)[0], layer(x)[0])
    # A file without the field (written before clip existed, or of a GRU that clips nothing) and
    # one with null both clip nothing.
    plain = fastgru.GRU(3, 4, seed=1)
    plain.save(tmp_path / "plain.safetensors")
    _rewrite_config(tmp_path / "plain.safetensors", tmp_path / "null.safetensors", lambda c: c.update(clip=None))
    for name in ("plain", "null"):
        assert fastgru.load(tmp_path / f"{name}.safetensors").clip is None
        y, _ = _core.load_model_file_f64(str(tmp_path / f"{name}.safetensors")).forward(
            x.astype(np.float64), None, None, False, None)
        assert normalised_error(y, plain(x)[0]) <= 1e-6


@pytest.mark.parametrize("value", [0, -1.0, "0.5", True, [1.0]])
def test_files_with_a_bad_clip_are_refused_by_both_readers(tmp_path, value):
    fastgru.GRU(3, 4, seed=1).save(tmp_path / "gru.safetensors")
    _rewrite_config(tmp_path / "gru.safetensors", tmp_path / "bad.safetensors", lambda c: c.update(clip=value))
    with pytest.raises(ValueError, match="clip: expected a number > 0 or null"):
        fastgru.load(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="clip: expected a number > 0 or null"):
        _core.load_model_file_f32(str(tmp_path / "bad.safetensors"))


def test_what_clip_refuses(tmp_path):
    for value in (0, -0.5, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match=r"clip: expected a finite number > 0 or None, got"):
            fastgru.GRU(2, 3, clip=value)
    layer = fastgru.GRU(2, 3, clip=1.0)
    with pytest.raises(ValueError, match="to_torch: torch.nn.GRU does not clip its pre-activations"):
        layer.to_torch()
    with pytest.raises(ValueError, match="to_keras: Keras's GRU does not clip its pre-activations"):
        layer.to_keras()
    with pytest.raises(ValueError, match="config.clip: the MGU clips nothing"):
        _core.GruF32(2, 3, 1, False, True, True, [(np.zeros((6, 2), np.float32), np.zeros((6, 3), np.float32),
                                                 None, None)], cell="mgu", clip=1.0)
    with pytest.raises(ValueError, match="config.clip: expected a number > 0"):
        _core.GruF32(2, 3, 1, False, True, False, [(np.zeros((9, 2), np.float32), np.zeros((9, 3), np.float32),
                                                  None, None)], clip=-1.0)


def test_a_clipped_model_runs_alike_in_python_and_the_cpp_whole_model_reader(tmp_path):
    model = fastgru.Model(_scaled_layer(3, 8, batch_first=True, seed=0, clip=0.3), outputs=2, seed=0)
    X = (3 * np.random.default_rng(0).standard_normal((5, 7, 3))).astype(np.float32)
    expected = model.predict(X)
    model.save(tmp_path / "model.safetensors")
    assert normalised_error(fastgru.load(tmp_path / "model.safetensors").predict(X), expected) <= 1e-7
    whole = _core.load_whole_model_file_f32(str(tmp_path / "model.safetensors"))
    assert normalised_error(whole.predict(X, None, False), expected) <= 1e-6


def test_the_c_tests_clipped_file_matches_the_reference():
    # cpp/tests/data/gru_clip2_f32.safetensors, which cpp/tests/capi_tests.c loads and streams.
    from pathlib import Path

    layer = fastgru.load(Path(__file__).parents[1] / "cpp" / "tests" / "data" / "gru_clip2_f32.safetensors")
    assert (layer.clip, layer.reset_after, layer.num_layers, layer.input_size) == (0.5, False, 2, 3)
    p = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    x = 2 * np.random.default_rng(13).standard_normal((7, 3, 3))
    h = x
    for k in range(2):
        h, _, cache = reference.gru_forward(h, None, p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"], p[f"bias_ih_l{k}"],
                                            p[f"bias_hh_l{k}"], reset_after=False, clip=0.5)
        assert 0.1 < _clipped_fraction(cache) < 0.9
    assert normalised_error(layer(x.astype(np.float32))[0], h) <= 1e-5


@pytest.mark.parametrize("reset_after", [True, False])
def test_not_a_number_carries_through_a_clipped_layer_as_through_the_reference(reset_after):
    layer = _scaled_layer(3, 6, reset_after=reset_after, dtype="float64", seed=9, clip=0.5)
    x = 2 * np.random.default_rng(10).standard_normal((4, 2, 3))
    x[1, 0, 2] = np.nan
    y, _ = layer.forward(x)
    dx, _ = layer.backward(np.ones_like(y))
    p = {k[: -len("_l0")]: v for k, v in layer.state_dict().items()}
    y_ref, _, cache = reference.gru_forward(x, None, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                                            reset_after=reset_after, clip=0.5)
    g = reference.gru_backward(cache, np.ones_like(y_ref))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(g["dx"]))
    assert np.isnan(y[1:, 0]).all() and not np.isnan(y[:, 1]).any()


def test_bounds_a_float32_layer_cannot_hold_are_refused():
    for value in (1e-46, 1e39):
        with pytest.raises(ValueError, match="clip: a float32 layer clips at clip as a float32; expected a number "
                                             "that stays > 0 and finite as one"):
            fastgru.GRU(2, 3, clip=value)
        assert fastgru.GRU(2, 3, clip=value, dtype="float64").clip == value
        with pytest.raises(ValueError, match="config.clip: a float32 network clips at clip as a float32"):
            _core.GruF32(2, 3, 1, False, True, False, [(np.zeros((9, 2), np.float32), np.zeros((9, 3), np.float32),
                                                      None, None)], clip=value)


def test_files_and_onnx_metadata_of_unclipped_layers_leave_the_field_out(tmp_path):
    """So that readers from before clip existed read every file that does not clip."""
    for layer, has_field in ((fastgru.GRU(3, 4, seed=1), False), (fastgru.GRU(3, 4, seed=1, clip=2.0), True)):
        layer.save(tmp_path / "gru.safetensors")
        raw = (tmp_path / "gru.safetensors").read_bytes()
        header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
        assert ("clip" in json.loads(header["__metadata__"]["config"])) == has_field
        layer.to_onnx(tmp_path / "gru.onnx")
        props = {p.key: p.value for p in onnx.load(tmp_path / "gru.onnx").metadata_props}
        assert ("clip" in json.loads(props["fastgru_config"])) == has_field
        assert fastgru.GRU.from_onnx(tmp_path / "gru.onnx").clip == layer.clip


def test_from_onnx_refuses_clips_it_cannot_read(tmp_path):
    model = _onnx_clipped_gru("forward", 1, 0.75, 3, 5)
    for value, kind in ((2, onnx.AttributeProto.INT), (b"abc", onnx.AttributeProto.STRING),
                        (float("inf"), onnx.AttributeProto.FLOAT), (0.0, onnx.AttributeProto.FLOAT)):
        bad = onnx.ModelProto()
        bad.CopyFrom(model)
        (attribute,) = [a for a in bad.graph.node[0].attribute if a.name == "clip"]
        attribute.Clear()
        attribute.CopyFrom(helper.make_attribute("clip", value))
        assert attribute.type == kind
        onnx.save(bad, tmp_path / "bad.onnx")
        with pytest.raises(ValueError, match=r"GRU node 0 has clip=.*: expected a finite FLOAT > 0"):
            fastgru.GRU.from_onnx(tmp_path / "bad.onnx")
    # A stack whose nodes clip differently is not one layer.
    layer = fastgru.GRU(3, 5, num_layers=2, seed=1, clip=0.5)
    layer.to_onnx(tmp_path / "stack.onnx")
    save_with_second_node_changed(tmp_path / "stack.onnx", tmp_path / "stack.onnx", clip=0.25)
    with pytest.raises(ValueError, match=r"GRU node 1: its clip gives clip=0\.25, but the layer has clip=0\.5"):
        fastgru.GRU.from_onnx(tmp_path / "stack.onnx")


def test_a_clipped_model_exports_to_onnx_as_it_predicts(tmp_path):
    model = fastgru.Model(_scaled_layer(3, 6, batch_first=True, bidirectional=True, seed=4, clip=0.4), outputs=2,
                          seed=4)
    X = (2 * np.random.default_rng(5).standard_normal((4, 7, 3))).astype(np.float32)
    lengths = np.array([7, 3, 5, 1])
    model.to_onnx(tmp_path / "model.onnx", lengths=True)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {"x": X, "lengths": lengths})
    assert normalised_error(outputs, model.predict(X, lengths=lengths)) <= 1e-5
