"""The streaming examples, C++ (cpp/examples/stream) and C (cpp/examples/c_stream, the C API),
built against the installed package, give Python's outputs for a model saved from Python. CI
builds them and sets FASTGRU_STREAM_EXAMPLE and FASTGRU_C_STREAM_EXAMPLE."""

import os
import subprocess

import numpy as np
import pytest

import fastgru

EXAMPLE_VARIABLES = ["FASTGRU_STREAM_EXAMPLE", "FASTGRU_C_STREAM_EXAMPLE"]


@pytest.fixture(params=EXAMPLE_VARIABLES)
def example(request):
    path = os.environ.get(request.param)
    if not path:
        pytest.skip(f"{request.param} (the built example) is not set")
    return path


@pytest.mark.parametrize("cls, kwargs", [("GRU", dict(num_layers=2)), ("GRU", dict(reset_after=False)),
                                         ("MGU", dict(num_layers=2)), ("GRU", dict(dtype="float64")),
                                         ("LiGRU", dict(num_layers=2, activation="leaky_relu", negative_slope=0.1)),
                                         ("LiGRU", dict(activation="softplus")), ("LiBRU", dict(num_layers=2))],
                         ids=str)
def test_stream_example_matches_python(example, tmp_path, cls, kwargs):
    layer = getattr(fastgru, cls)(3, 5, seed=7, **kwargs)
    if cls in ("LiGRU", "LiBRU"):
        # Running statistics away from their initial values, which the C++ loader must fold in.
        layer.forward(np.random.default_rng(1).standard_normal((6, 4, 3)) + 0.5)
    layer.save(tmp_path / "model.safetensors")
    x = np.random.default_rng(0).standard_normal((12, 3))
    np.savetxt(tmp_path / "input.csv", x, delimiter=",", fmt="%.9g")
    out = subprocess.run([example, str(tmp_path / "model.safetensors"), str(tmp_path / "input.csv")],
                         capture_output=True, text=True, check=True)
    cpp = np.loadtxt(out.stdout.splitlines(), delimiter=",")
    h, expected = None, []
    for t in range(12):
        y_t, h = layer.step(np.float32(x[t : t + 1]), h)
        expected.append(y_t[0])
    np.testing.assert_allclose(cpp, np.array(expected), rtol=0, atol=2e-6)


@pytest.mark.parametrize("mode", ["int8", "bf16"])
@pytest.mark.parametrize("cls", ["GRU", "MGU", "LiGRU"])
def test_stream_example_runs_a_quantized_model_file(example, tmp_path, mode, cls):
    # The file holds the weights quantized (a LiGRU's W_ih with its batch normalisation folded
    # in); the examples load it in float32 and step as Python does.
    layer = getattr(fastgru, cls)(3, 5, num_layers=2, seed=7)
    if cls == "LiGRU":
        layer.forward(np.random.default_rng(1).standard_normal((6, 4, 3)) + 0.5, train=True)
    layer = layer.quantize(mode)
    layer.save(tmp_path / "model.safetensors")
    x = np.random.default_rng(0).standard_normal((12, 3))
    np.savetxt(tmp_path / "input.csv", x, delimiter=",", fmt="%.9g")
    out = subprocess.run([example, str(tmp_path / "model.safetensors"), str(tmp_path / "input.csv")],
                         capture_output=True, text=True, check=True)
    cpp = np.loadtxt(out.stdout.splitlines(), delimiter=",")
    h, expected = None, []
    for t in range(12):
        y_t, h = layer.step(np.float32(x[t : t + 1]), h)
        expected.append(y_t[0])
    np.testing.assert_allclose(cpp, np.array(expected), rtol=0, atol=2e-6)


def test_stream_example_rejects_bad_input_clearly(example, tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    out = subprocess.run([example, str(tmp_path / "broken.safetensors")], capture_output=True, text=True, input="")
    assert out.returncode == 1 and "not a readable fastgru model file" in out.stderr
    layer = fastgru.GRU(3, 2, seed=1)
    layer.save(tmp_path / "ok.safetensors")
    out = subprocess.run([example, str(tmp_path / "ok.safetensors")], capture_output=True, text=True,
                         input="1,2\n")
    assert out.returncode == 1 and "expected 3 numbers, got 2" in out.stderr


@pytest.fixture
def c_example():
    path = os.environ.get("FASTGRU_C_STREAM_EXAMPLE")
    if not path:
        pytest.skip("FASTGRU_C_STREAM_EXAMPLE (the built C example) is not set")
    return path


@pytest.mark.parametrize("kind", ["regression", "classifier_tokens", "regression_int8"])
def test_c_stream_example_runs_a_whole_model_as_python_predicts(c_example, tmp_path, kind):
    # The head's outputs per step: values in the targets' units (output scaling), or a token
    # classifier's probabilities, equal to predict / predict_proba with head="sequence"; also
    # with the recurrent layer in int8 (its file holds the int8 weights).
    rng = np.random.default_rng(2)
    if kind.startswith("regression"):
        model = fastgru.Model(fastgru.GRU(3, 5, num_layers=2, seed=3), outputs=2, head="sequence", seed=3)
        model.set_output_scaling([25.0, 0.5], [300.0, -1.0])
        if kind == "regression_int8":
            model = model.quantize("int8")
        inputs = rng.standard_normal((12, 3))
        expected = model.predict(np.float32(inputs))
        np.savetxt(tmp_path / "input.csv", inputs, delimiter=",", fmt="%.9g")
    else:
        model = fastgru.Model(fastgru.LiGRU(4, 5, seed=3), outputs=3, head="sequence", loss="cross_entropy", seed=3,
                              vocab_size=7, padding_id=0)
        inputs = rng.integers(0, 7, 12)
        expected = model.predict_proba(inputs)
        np.savetxt(tmp_path / "input.csv", inputs, fmt="%d")
    model.save(tmp_path / "model.safetensors")
    out = subprocess.run([c_example, str(tmp_path / "model.safetensors"), str(tmp_path / "input.csv")],
                         capture_output=True, text=True, check=True)
    c_outputs = np.loadtxt(out.stdout.splitlines(), delimiter=",", ndmin=2)
    np.testing.assert_allclose(c_outputs, expected, rtol=1e-5, atol=2e-6)


def test_c_stream_example_refuses_bad_token_ids_clearly(c_example, tmp_path):
    model = fastgru.Model(fastgru.GRU(2, 3, seed=1), outputs=2, loss="cross_entropy", vocab_size=5)
    model.save(tmp_path / "model.safetensors")
    for line, message in [("7\n", "expected token ids in 0..4 (vocab_size=5), got 7"),
                          ("1.5\n", "expected one integer token id, got '1.5'")]:
        out = subprocess.run([c_example, str(tmp_path / "model.safetensors")], capture_output=True, text=True,
                             input=line)
        assert out.returncode == 1 and message in out.stderr
