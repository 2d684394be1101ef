"""The C++ streaming example (cpp/examples/stream), built against the installed package, gives
Python's outputs for a model saved from Python. CI builds it and sets FASTGRU_STREAM_EXAMPLE."""

import os
import subprocess

import numpy as np
import pytest

import fastgru

EXAMPLE = os.environ.get("FASTGRU_STREAM_EXAMPLE")
pytestmark = pytest.mark.skipif(not EXAMPLE, reason="FASTGRU_STREAM_EXAMPLE (the built example) is not set")


@pytest.mark.parametrize("cls, kwargs", [("GRU", dict(num_layers=2)), ("GRU", dict(reset_after=False)),
                                         ("MGU", dict(num_layers=2)), ("GRU", dict(dtype="float64")),
                                         ("LiGRU", dict(num_layers=2, activation="leaky_relu", negative_slope=0.1))],
                         ids=str)
def test_cpp_stream_example_matches_python(tmp_path, cls, kwargs):
    layer = getattr(fastgru, cls)(3, 5, seed=7, **kwargs)
    if cls == "LiGRU":
        # Running statistics away from their initial values, which the C++ loader must fold in.
        layer.forward(np.random.default_rng(1).standard_normal((6, 4, 3)) + 0.5)
    layer.save(tmp_path / "model.safetensors")
    x = np.random.default_rng(0).standard_normal((12, 3))
    np.savetxt(tmp_path / "input.csv", x, delimiter=",", fmt="%.9g")
    out = subprocess.run([EXAMPLE, str(tmp_path / "model.safetensors"), str(tmp_path / "input.csv")],
                         capture_output=True, text=True, check=True)
    cpp = np.loadtxt(out.stdout.splitlines(), delimiter=",")
    h, expected = None, []
    for t in range(12):
        y_t, h = layer.step(np.float32(x[t : t + 1]), h)
        expected.append(y_t[0])
    np.testing.assert_allclose(cpp, np.array(expected), rtol=0, atol=2e-6)


def test_cpp_stream_example_rejects_bad_files_clearly(tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    out = subprocess.run([EXAMPLE, str(tmp_path / "broken.safetensors")], capture_output=True, text=True, input="")
    assert out.returncode == 1 and "not a readable fastgru model file" in out.stderr
    layer = fastgru.GRU(3, 2, seed=1)
    layer.save(tmp_path / "ok.safetensors")
    out = subprocess.run([EXAMPLE, str(tmp_path / "ok.safetensors")], capture_output=True, text=True,
                         input="1,2\n")
    assert out.returncode == 1 and "expected 3 numbers, got 2" in out.stderr
