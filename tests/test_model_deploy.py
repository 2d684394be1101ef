"""Deploying a whole Model: its output scaling (Python, the file), the C++ loader
(fastgru::load_model, through the _core hook) predicting and streaming what Python's Model does,
the C tests' data files, and Model.to_onnx in ONNX Runtime."""

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

import fastgru
from fastgru import _core
from fastgru.model_file import ModelFileError, read_model_file
from fastgru.timeseries import Scaler
from fastgru.training import Model

from . import model_deploy_data


def regression(head="last", layer=None, outputs=2, seed=0, **kwargs):
    layer = layer or fastgru.GRU(3, 4, num_layers=2, batch_first=True, dtype="float64", seed=seed)
    return Model(layer, outputs=outputs, head=head, seed=seed, **kwargs)


# ----------------------------------------------------------------------------- output scaling
def test_predictions_are_the_head_scaled_and_shifted_per_output():
    model = regression()
    x = np.random.default_rng(0).standard_normal((5, 4, 3))
    raw = model.predict(x)
    model.set_output_scaling([10.0, -2.0], [100.0, 0.5])
    np.testing.assert_allclose(model.predict(x), raw * [10.0, -2.0] + [100.0, 0.5], rtol=1e-12)
    model.set_output_scaling(3.0)  # one number for every output, offset 0
    np.testing.assert_allclose(model.predict(x), raw * 3.0, rtol=1e-12)
    model.set_output_scaling(None)
    np.testing.assert_array_equal(model.predict(x), raw)


def test_fit_and_evaluate_take_targets_in_their_own_units_and_train_on_scaled_ones():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 5, 3))
    scaled_targets = rng.standard_normal((12, 2))
    scale, offset = np.array([50.0, 0.1]), np.array([1000.0, -3.0])
    plain, scaled = regression(seed=4), regression(seed=4)
    scaled.set_output_scaling(scale, offset)
    history_plain = plain.fit(x, scaled_targets, epochs=2, batch_size=4, verbose=0)
    history_scaled = scaled.fit(x, scaled_targets * scale + offset, epochs=2, batch_size=4, verbose=0)
    # the same training: the loss sees (y - offset) / scale
    np.testing.assert_allclose(history_scaled.history["loss"], history_plain.history["loss"], rtol=1e-9)
    np.testing.assert_allclose(scaled.head_weight, plain.head_weight, rtol=1e-9)
    assert scaled.evaluate(x, scaled_targets * scale + offset)["loss"] == pytest.approx(
        plain.evaluate(x, scaled_targets)["loss"], rel=1e-9)
    np.testing.assert_allclose(scaled.predict(x), plain.predict(x) * scale + offset, rtol=1e-9)


def test_a_fitted_scaler_gives_its_inverse():
    series = np.random.default_rng(2).uniform(200, 300, (40, 2))
    scaler = Scaler("standard").fit(series)
    model = regression()
    model.set_output_scaling(scaler)
    x = np.random.default_rng(3).standard_normal((4, 3, 3))
    raw = regression().predict(x)
    np.testing.assert_allclose(model.predict(x), scaler.inverse_transform(raw), rtol=1e-12)
    with pytest.raises(ValueError, match=r"scale: expected one number or shape \(2,\)"):
        model.set_output_scaling(Scaler().fit(series[:, :1]))
    with pytest.raises(ValueError, match="not fitted"):
        model.set_output_scaling(Scaler())
    with pytest.raises(ValueError, match="a Scaler gives the offset too"):
        model.set_output_scaling(scaler, 1.0)


@pytest.mark.parametrize("scale, offset, match", [
    ([1.0, 0.0], None, "scale: expected non-zero numbers"),
    ([1.0, np.nan], None, "scale: expected finite values"),
    ([1.0, 2.0, 3.0], None, r"scale: expected one number or shape \(2,\)"),
    ([1.0, 2.0], [np.inf, 0], "offset: expected finite values"),
    (None, 1.0, "offset: expected None when removing"),
    ("big", None, "scale: expected real numbers"),
])
def test_bad_scalings_are_refused(scale, offset, match):
    model = regression()
    with pytest.raises((ValueError, TypeError), match=match):
        model.set_output_scaling(scale, offset)
    assert model.output_scale is None


def test_a_classifier_has_no_output_scaling():
    model = Model(fastgru.GRU(2, 3), outputs=3, loss="cross_entropy")
    with pytest.raises(ValueError, match="logits; output scaling is for regression"):
        model.set_output_scaling(2.0)


def test_scaling_round_trips_through_the_file_and_older_files_have_no_field(tmp_path):
    model = regression(head="sequence")
    model.save(tmp_path / "plain.safetensors")
    tensors, metadata = read_model_file(tmp_path / "plain.safetensors")
    assert "output_scaling" not in json.loads(metadata["config"]) and "output.scale" not in tensors
    model.set_output_scaling([2.0, 3.0], [-1.0, 7.0])
    model.save(tmp_path / "scaled.safetensors")
    tensors, metadata = read_model_file(tmp_path / "scaled.safetensors")
    assert json.loads(metadata["config"])["output_scaling"] is True
    np.testing.assert_array_equal(tensors["output.scale"], [2.0, 3.0])
    np.testing.assert_array_equal(tensors["output.offset"], [-1.0, 7.0])
    loaded = fastgru.load(tmp_path / "scaled.safetensors")
    x = np.random.default_rng(4).standard_normal((3, 5, 3))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert fastgru.load(tmp_path / "plain.safetensors").output_scale is None
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x), model.predict(x))
    weights = model.get_weights()
    assert set(weights) >= {"output.scale", "output.offset"}
    other = regression(head="sequence", seed=9)
    other.set_weights(weights)
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_step_is_scaled_and_generate_refuses_to_mix_units():
    model = regression(head="sequence", layer=fastgru.GRU(2, 4, dtype="float64", seed=1), outputs=2)
    model.set_output_scaling([5.0, 6.0], [1.0, 2.0])
    x = np.random.default_rng(5).standard_normal((2, 4, 2))
    expected = model.predict(x)
    state = None
    for t in range(4):
        out, state = model.step(x[:, t], state)
        np.testing.assert_allclose(out, expected[:, t], rtol=1e-10)
    with pytest.raises(ValueError, match="outputs are scaled"):
        model.generate(x[0], 3)


def with_header(path, edit):
    """Rewrites the file at ``path`` with ``edit(header, data)`` applied to its header."""
    content = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", content[:8])
    header, data = json.loads(content[8:8 + n]), bytearray(content[8 + n:])
    edit(header, data)
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + bytes(data))


def set_tensor(header, data, name, values):
    begin, _ = header[name]["data_offsets"]
    raw = np.asarray(values, np.float64).tobytes()
    data[begin:begin + len(raw)] = raw


@pytest.mark.parametrize("edit, match", [
    (lambda h, d: set_tensor(h, d, "head.weight", [np.nan]), "head.weight: expected finite values"),
    (lambda h, d: set_tensor(h, d, "head.bias", [np.inf]), "head.bias: expected finite values"),
    (lambda h, d: set_tensor(h, d, "output.scale", [0.0]), "scale: expected non-zero"),
    (lambda h, d: set_tensor(h, d, "output.offset", [np.nan]), "offset: expected finite"),
    (lambda h, d: set_tensor(h, d, "embedding.weight", [np.inf]), "embedding.weight: expected finite"),
    (lambda h, d: h["__metadata__"].update(config=h["__metadata__"]["config"].replace("true", "false")),
     "output_scaling: expected true"),
    (lambda h, d: h["__metadata__"].update(config=h["__metadata__"]["config"].replace(', "output_scaling": true', "")),
     "unexpected"),
    (lambda h, d: h["__metadata__"].update(config=h["__metadata__"]["config"].replace('"mse"', '"cross_entropy"')),
     "output scaling is for regression"),
    (lambda h, d: h["__metadata__"].update(recurrent_class="Model"), "recurrent_class"),
    (lambda h, d: h["__metadata__"].update(user_metadata="[1]"), "user_metadata: expected a JSON object"),
])
def test_both_readers_refuse_what_a_model_cannot_hold(tmp_path, edit, match):
    model = regression(vocab_size=4)
    model.set_output_scaling([2.0, 3.0], [0.0, 1.0])
    path = tmp_path / "model.safetensors"
    model.save(path)
    with_header(path, edit)
    with pytest.raises(ModelFileError, match=match):
        fastgru.load(path)
    with pytest.raises(_core.CoreArgumentError, match="not a readable fastgru model file"):
        _core.load_whole_model_file_f64(str(path))


def test_each_cpp_loader_refuses_the_other_kind_of_file_and_says_which_reads_it(tmp_path):
    regression().save(tmp_path / "model.safetensors")
    fastgru.GRU(2, 3).save(tmp_path / "layer.safetensors")
    with pytest.raises(_core.CoreArgumentError, match="fastgru::load_model"):
        _core.load_model_file_f64(str(tmp_path / "model.safetensors"))
    with pytest.raises(_core.CoreArgumentError, match="got class 'GRU' .*fastgru::load_network"):
        _core.load_whole_model_file_f64(str(tmp_path / "layer.safetensors"))


# ----------------------------------------------------------------------------- C++ equals Python
CASES = {
    "regression": dict(outputs=2, scaling=([30.0, -0.5], [500.0, 2.0])),
    "regression_tokens": dict(outputs=1, vocab_size=7, padding_id=0, scaling=(4.0, -1.0)),
    "classifier": dict(outputs=3, loss="cross_entropy"),
    "classifier_tokens": dict(outputs=4, loss="cross_entropy", vocab_size=9),
}


def built(case, head, layer):
    options = dict(CASES[case])
    scaling = options.pop("scaling", None)
    model = Model(layer, head=head, seed=3, **options)
    if scaling:
        model.set_output_scaling(*scaling)
    return model


def inputs(model, rows=4, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    if model.vocab_size is not None:
        return rng.integers(0, model.vocab_size, (rows, steps))
    return rng.standard_normal((rows, steps, model.recurrent.input_size))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("head", ["last", "sequence"])
@pytest.mark.parametrize("layer", ["gru2", "bi_ligru", "mgu_time_major", "reverse_gru", "bi_gru_ave"])
def test_cpp_predicts_what_python_predicts(tmp_path, case, head, layer):
    layer = {"gru2": lambda: fastgru.GRU(3, 4, num_layers=2, batch_first=True, dtype="float64", seed=1),
             "bi_ligru": lambda: fastgru.LiGRU(3, 4, bidirectional=True, dtype="float64", seed=2),
             "mgu_time_major": lambda: fastgru.MGU(3, 5, dtype="float64", seed=3),
             "reverse_gru": lambda: fastgru.GRU(3, 4, reverse=True, dtype="float64", seed=4),
             "bi_gru_ave": lambda: fastgru.GRU(3, 4, bidirectional=True, merge_mode="ave", dtype="float64",
                                               seed=5)}[layer]()
    model = built(case, head, layer)
    x = inputs(model)
    y = np.zeros((4,) + ((6,) if head == "sequence" else ()), int) if model.loss.classification else \
        np.random.default_rng(1).standard_normal((4,) + ((6,) if head == "sequence" else ()) + (model.outputs,))
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)  # weights away from their initial values
    model.save(tmp_path / "model.safetensors")
    cpp = _core.load_whole_model_file_f64(str(tmp_path / "model.safetensors"))
    lengths = np.array([6, 2, 5, 1])
    for given in (None, lengths):
        np.testing.assert_allclose(cpp.predict(x, given, False), model.predict(x, lengths=given), rtol=1e-6, atol=1e-9)
        if model.loss.classification:
            np.testing.assert_allclose(cpp.predict(x, given, True), model.predict_proba(x, lengths=given),
                                       rtol=1e-6, atol=1e-9)
    assert cpp.config() == {"outputs": model.outputs, "head": head, "classifier": model.loss.classification,
                            "vocab_size": model.vocab_size or 0,
                            "padding_id": -1 if model.padding_id is None else model.padding_id,
                            "output_scaling": model.output_scale is not None}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cpp_streams_what_python_predicts_with_head_sequence(tmp_path, case):
    model = built(case, "sequence", fastgru.GRU(3, 4, num_layers=2, dtype="float64", seed=5))
    model.save(tmp_path / "model.safetensors")
    cpp = _core.load_whole_model_file_f64(str(tmp_path / "model.safetensors"))
    x = inputs(model, rows=3, steps=5, seed=2)
    expected = model.predict_proba(x) if model.loss.classification else model.predict(x)
    state = np.zeros((2, 3, 4))
    for t in range(5):
        out = cpp.step(np.ascontiguousarray(x[:, t]), state, model.loss.classification)
        np.testing.assert_allclose(out, expected[:, t], rtol=1e-6, atol=1e-9)


def test_cpp_refuses_bad_ids_and_requests_as_python_does(tmp_path):
    model = built("classifier_tokens", "last", fastgru.GRU(3, 4, bidirectional=True, dtype="float64", seed=5))
    model.save(tmp_path / "model.safetensors")
    cpp = _core.load_whole_model_file_f64(str(tmp_path / "model.safetensors"))
    ids = np.array([[1, 2, 9]])
    with pytest.raises(ValueError, match=r"token ids in 0..8 \(vocab_size=9\)"):
        model.predict(ids)
    with pytest.raises(_core.CoreArgumentError, match=r"ids: expected token ids in 0..8 \(vocab_size=9\), got 9"):
        cpp.predict(ids, None, False)
    with pytest.raises(_core.CoreArgumentError, match="forward-in-time network for streaming, got a bidirectional"):
        cpp.step(np.array([1]), np.zeros((1, 1, 4)), False)
    with pytest.raises(_core.CoreArgumentError, match=r"lengths\[1\]: expected 1..3, got 0"):
        cpp.predict(np.array([[1, 2, 3], [1, 2, 3]]), np.array([3, 0]), False)
    regression_model = regression()
    regression_model.save(tmp_path / "regression.safetensors")
    cpp = _core.load_whole_model_file_f64(str(tmp_path / "regression.safetensors"))
    with pytest.raises(_core.CoreArgumentError, match="probabilities are a classifier's"):
        cpp.predict(np.zeros((1, 2, 3)), None, True)


def test_a_model_whose_directions_stay_apart_is_refused_by_both_readers(tmp_path):
    model = regression(head="sequence", layer=fastgru.GRU(3, 4, bidirectional=True, merge_mode="concat"))
    model.save(tmp_path / "model.safetensors")
    with_header(tmp_path / "model.safetensors", lambda h, d: h["__metadata__"].update(
        recurrent_config=h["__metadata__"]["recurrent_config"].replace('"merge_mode": "concat"', '"merge_mode": null')))
    with pytest.raises(ModelFileError, match="merge_mode"):
        fastgru.load(tmp_path / "model.safetensors")
    with pytest.raises(_core.CoreArgumentError, match="merge_mode: null"):
        _core.load_whole_model_file_f64(str(tmp_path / "model.safetensors"))


def test_a_float32_model_reads_the_same_in_cpp(tmp_path):
    model = built("regression", "sequence", fastgru.GRU(3, 4, seed=6))
    model.save(tmp_path / "model.safetensors")
    cpp = _core.load_whole_model_file_f64(str(tmp_path / "model.safetensors"))
    x = inputs(model)
    np.testing.assert_allclose(cpp.predict(x, None, False), model.predict(np.float32(x)), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode", ["bf16", "int8"])
@pytest.mark.parametrize("case", ["regression", "classifier_tokens"])
def test_a_quantized_model_reads_the_same_in_cpp(tmp_path, mode, case):
    # The recurrent layer in bf16 or int8 (its weights stored so), the head and embedding float32.
    kind = dict(outputs=2, head="sequence") if case == "regression" else dict(
        outputs=3, loss="cross_entropy", vocab_size=6, padding_id=0)
    model = fastgru.Model(fastgru.GRU(3, 4, num_layers=2, seed=6), seed=6, **kind)
    if case == "regression":
        model.set_output_scaling([2.0, 0.5], [100.0, -1.0])
    quantized = model.quantize(mode)
    quantized.save(tmp_path / "model.safetensors")
    cpp = _core.load_whole_model_file_f32(str(tmp_path / "model.safetensors"))
    rng = np.random.default_rng(7)
    x = rng.integers(0, 6, (4, 5)) if case != "regression" else rng.standard_normal((4, 5, 3)).astype(np.float32)
    lengths = np.array([5, 2, 4, 1])
    np.testing.assert_allclose(cpp.predict(x, lengths, False), quantized.predict(x, lengths=lengths),
                               rtol=1e-5, atol=1e-6)
    if case != "regression":
        np.testing.assert_allclose(cpp.predict(x, lengths, True), quantized.predict_proba(x, lengths=lengths),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(_core.CoreArgumentError, match=f"{mode} model computes in float32"):
        _core.load_whole_model_file_f64(str(tmp_path / "model.safetensors"))


def test_the_c_tests_model_files_agree_with_python():
    # cpp/tests/data/model_*.safetensors and the predictions beside them (tests/model_deploy_data.py)
    for name in model_deploy_data.NAMES:
        model = fastgru.load(model_deploy_data.DATA / f"{name}.safetensors")
        x, lengths, values, probabilities = model_deploy_data.read_expected(
            model_deploy_data.DATA / f"{name}.expected.txt")
        np.testing.assert_allclose(model.predict(x, lengths=lengths), values, rtol=1e-12, atol=1e-14)
        if probabilities is not None:
            np.testing.assert_allclose(model.predict_proba(x, lengths=lengths), probabilities, rtol=1e-12, atol=1e-14)
    for name in model_deploy_data.QUANTIZED_NAMES:  # float32, quantized: to float32's rounding
        model = fastgru.load(model_deploy_data.DATA / f"{name}.safetensors")
        assert model.recurrent.precision == name.rsplit("_", 1)[1]
        x, lengths, values, probabilities = model_deploy_data.read_expected(
            model_deploy_data.DATA / f"{name}.expected.txt")
        np.testing.assert_allclose(model.predict(x, lengths=lengths), values, rtol=1e-5, atol=1e-6)
        if probabilities is not None:
            np.testing.assert_allclose(model.predict_proba(x, lengths=lengths), probabilities, rtol=1e-5, atol=1e-6)
    x = np.random.default_rng(4).standard_normal((7, 3, 3)).astype(np.float32)
    for name, mode in model_deploy_data.QUANTIZED_LAYERS.items():  # gru2_f32's layer, quantized
        path = model_deploy_data.DATA / f"{name}.safetensors"
        layer = fastgru.load(path)
        expected = fastgru.load(model_deploy_data.DATA / "gru2_f32.safetensors").quantize(mode)(x)[0]
        assert layer.precision == mode
        np.testing.assert_allclose(layer(x)[0], expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(_core.load_model_file_f32(str(path)).forward(x, None, None, False, None, 0)[0],
                                   expected, rtol=1e-6, atol=1e-7)
    regression_model = fastgru.load(model_deploy_data.DATA / "model_regression.safetensors")
    assert regression_model.output_scale is not None and regression_model.vocab_size is None
    assert fastgru.load(model_deploy_data.DATA / "model_classifier_tokens.safetensors").vocab_size == 11


# ----------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("head", ["last", "sequence"])
@pytest.mark.parametrize("directions", [dict(), dict(bidirectional=True, reset_after=False),
                                        dict(bidirectional=True, merge_mode="sum"),
                                        dict(bidirectional=True, merge_mode="mul"),
                                        dict(bidirectional=True, merge_mode="ave"), dict(reverse=True)], ids=str)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_to_onnx_runs_in_onnx_runtime_as_predict(tmp_path, case, head, directions, with_lengths):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    layer = fastgru.GRU(3, 4, num_layers=2, seed=7, **directions)
    model = built(case, head, layer)
    model.to_onnx(tmp_path / "model.onnx", lengths=with_lengths)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    x = inputs(model, seed=8)
    x = x if model.vocab_size is not None else x.astype(np.float32)
    lengths = np.array([6, 2, 5, 1]) if with_lengths else None
    feeds = {"ids" if model.vocab_size is not None else "x": x}
    if with_lengths:
        feeds["lengths"] = lengths
    names = [output.name for output in session.get_outputs()]
    results = dict(zip(names, session.run(None, feeds)))
    assert names == (["outputs", "probabilities"] if model.loss.classification else ["outputs"])
    np.testing.assert_allclose(results["outputs"], model.predict(x, lengths=lengths), rtol=1e-5, atol=1e-6)
    if model.loss.classification:
        np.testing.assert_allclose(results["probabilities"], model.predict_proba(x, lengths=lengths), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("layer, match", [
    (lambda: fastgru.MGU(3, 4), "ONNX has a GRU operator but none for the MGU"),
    (lambda: fastgru.LiGRU(3, 4), "none for the LiGRU"),
    (lambda: fastgru.LiBRU(3, 4), "none for the LiBRU"),
    (lambda: fastgru.GRU(3, 4, gates="hidden"), "gates='full'"),
    (lambda: fastgru.GRU(3, 4, zoneout=0.1), "no recurrent_dropout or zoneout"),
])
def test_to_onnx_refuses_what_onnx_cannot_compute(tmp_path, layer, match):
    pytest.importorskip("onnx")
    with pytest.raises((ValueError, TypeError), match=match):
        Model(layer()).to_onnx(tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
