"""Weights that move: the model file, PyTorch and ONNX round trips, the update-gate conversion."""

import itertools
import json
import struct

import numpy as np
import pytest

import fastgru
from fastgru import reference
from fastgru.model_file import FORMAT_VERSION

from .helpers import normalised_error

LAYOUTS = list(itertools.product([1, 2], [False, True], [False, True]))  # layers, bidirectional, batch_first


def sample_input(layer, T=6, B=3, seed=0):
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    return np.random.default_rng(seed).standard_normal(shape).astype(layer.dtype)


# ----------------------------------------------------------------------------- model file
@pytest.mark.parametrize("layers, bidirectional, batch_first", LAYOUTS, ids=str)
@pytest.mark.parametrize("reset_after", [True, False])
def test_save_and_load_reproduce_the_layer(tmp_path, layers, bidirectional, batch_first, reset_after):
    layer = fastgru.GRU(4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                        reset_after=reset_after, seed=2, zoneout=0.1)
    path = tmp_path / "model.safetensors"
    layer.save(path)
    loaded = fastgru.load(path)
    assert type(loaded) is fastgru.GRU and loaded.config() == layer.config()
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    x = sample_input(layer)
    for a, b in zip(layer(x), loaded(x)):
        np.testing.assert_array_equal(a, b)


def test_model_file_is_standard_safetensors(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    layer = fastgru.GRU(3, 5, num_layers=2, bias=False, dtype="float64", seed=1)
    path = tmp_path / "model.safetensors"
    layer.save(path)
    tensors = safetensors_numpy.load_file(str(path))
    assert set(tensors) == set(layer.state_dict())
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(tensors[name], value)
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata()
    assert metadata["format"] == "fastgru" and metadata["class"] == "GRU"
    assert json.loads(metadata["config"])["num_layers"] == 2


def write_raw(path, header, data=b""):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize("case", ["empty", "truncated_header", "not_json", "foreign", "newer", "truncated_data", "bad_class"])
def test_bad_model_files_are_refused_clearly(tmp_path, case):
    path = tmp_path / "bad.safetensors"
    good = tmp_path / "good.safetensors"
    fastgru.GRU(2, 3, seed=0).save(good)
    content = good.read_bytes()
    meta = {"format": "fastgru", "format_version": str(FORMAT_VERSION), "class": "GRU",
            "config": json.dumps(fastgru.GRU(2, 3).config())}
    expected = {
        "empty": "at least 8 bytes", "truncated_header": "does not fit", "not_json": "not JSON",
        "foreign": "no fastgru metadata", "newer": "newer than this fastgru",
        "truncated_data": "truncated", "bad_class": "layer class",
    }[case]
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated_header":
        path.write_bytes(content[:20])
    elif case == "not_json":
        path.write_bytes(struct.pack("<Q", 8) + b'{"a" 1 }')
    elif case == "foreign":
        write_raw(path, {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    elif case == "newer":
        write_raw(path, {"__metadata__": {**meta, "format_version": str(FORMAT_VERSION + 1)}})
    elif case == "truncated_data":
        path.write_bytes(content[:-10])
    elif case == "bad_class":
        write_raw(path, {"__metadata__": {**meta, "class": "os.system"}})
    with pytest.raises(ValueError, match=expected):
        fastgru.load(path)


# ----------------------------------------------------------------------------- PyTorch
@pytest.mark.parametrize("layers, bidirectional, batch_first", LAYOUTS, ids=str)
def test_torch_round_trips(layers, bidirectional, batch_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(layers)
    module = torch.nn.GRU(4, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    layer = fastgru.GRU.from_torch(module)
    x = sample_input(layer)
    with torch.no_grad():
        expected = module(torch.from_numpy(x))
    for ours, theirs in zip(layer(x), expected):
        assert normalised_error(ours, theirs.numpy()) <= 1e-6
    back = layer.to_torch()
    assert back.num_layers == layers and back.bidirectional == bidirectional and back.batch_first == batch_first
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name].numpy(), value.numpy())


def test_to_torch_refuses_what_torch_cannot_express():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="reset_after=False"):
        fastgru.GRU(2, 3, reset_after=False).to_torch()
    with pytest.raises(TypeError, match="torch.nn.GRU"):
        fastgru.GRU.from_torch(object())


# ----------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("layers, bidirectional, batch_first", LAYOUTS, ids=str)
@pytest.mark.parametrize("reset_after", [True, False])
def test_onnx_export_runs_in_onnxruntime_like_the_layer(tmp_path, layers, bidirectional, batch_first, reset_after):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    layer = fastgru.GRU(4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                        reset_after=reset_after, seed=3)
    path = str(tmp_path / "model.onnx")
    layer.to_onnx(path, initial_state=True, lengths=True)
    x = sample_input(layer, T=7, B=4)
    h0 = np.random.default_rng(1).standard_normal((layers * layer.num_directions, 4, 6)).astype(np.float32)
    lengths = np.array([7, 3, 5, 1])
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y, h_n = session.run(None, {"x": x, "h0": h0, "lengths": lengths})
    y_ours, h_ours = layer(x, h0, lengths=lengths)
    assert y.shape == y_ours.shape
    assert normalised_error(y, y_ours) <= 1e-5
    assert normalised_error(h_n, h_ours) <= 1e-5

    again = fastgru.GRU.from_onnx(path)
    assert again.config() == layer.config()
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], value)


def test_onnx_export_without_optional_inputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    layer = fastgru.GRU(3, 4, bias=False, seed=4)
    path = str(tmp_path / "plain.onnx")
    layer.to_onnx(path)
    x = sample_input(layer)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    y, h_n = session.run(None, {"x": x})
    assert normalised_error(y, layer(x)[0]) <= 1e-5
    assert fastgru.GRU.from_onnx(path).bias is False


# ----------------------------------------------------------------------------- update-gate form
def test_flip_update_gate_turns_one_form_into_the_other():
    layer = fastgru.GRU(3, 4, dtype="float64", seed=5)
    flipped = fastgru.flip_update_gate(layer.state_dict())
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    # The other form, written out: h' = (1 - z) * h + z * n with the flipped weights.
    p = flipped
    h = np.zeros((2, 4))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(5):
        gi = x[t] @ p["weight_ih_l0"].T + p["bias_ih_l0"]
        gh = h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
        r, z = sig(gi[:, :4] + gh[:, :4]), sig(gi[:, 4:8] + gh[:, 4:8])
        n = np.tanh(gi[:, 8:] + r * gh[:, 8:])
        h = (1 - z) * h + z * n
    assert normalised_error(layer(x)[1][0], h) <= 1e-12
    back = fastgru.flip_update_gate(flipped)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(back[name], value)
    assert reference  # the NumPy reference stays the definition of the first form
