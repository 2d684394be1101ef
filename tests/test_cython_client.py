"""The Cython client (tests/cython_client, `from fastgru cimport capi`), built against the
installed package, gives fastgru.GRU's outputs. CI builds it and sets FASTGRU_CYTHON_CLIENT to
its directory."""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastgru

CLIENT_DIR = os.environ.get("FASTGRU_CYTHON_CLIENT")
pytestmark = pytest.mark.skipif(not CLIENT_DIR, reason="FASTGRU_CYTHON_CLIENT (the built client's directory) is not set")


@pytest.fixture(scope="module")
def client():
    sys.path.insert(0, CLIENT_DIR)
    try:
        import fastgru_cython_client
    finally:
        sys.path.remove(CLIENT_DIR)
    return fastgru_cython_client


@pytest.mark.parametrize("cls, kwargs", [("GRU", dict(num_layers=2)), ("GRU", dict(bidirectional=True)),
                                         ("MGU", dict(num_layers=2))], ids=str)
def test_cython_forward_matches_python(client, tmp_path, cls, kwargs):
    layer = getattr(fastgru, cls)(3, 6, seed=2, **kwargs)
    layer.save(tmp_path / "model.safetensors")
    model = client.Model(str(tmp_path / "model.safetensors"))
    assert (model.input_size, model.hidden_size, model.directions) == (3, 6, 2 if kwargs.get("bidirectional") else 1)
    x = np.random.default_rng(1).standard_normal((9, 4, 3)).astype(np.float32)
    lengths = np.array([9, 3, 1, 6], np.int64)
    y, _ = layer(x, lengths=lengths)
    # The client links its own copy of the core (static library), which keeps its default
    # instruction set while this suite switches the Python module's: equal to rounding.
    np.testing.assert_allclose(model.forward(x, lengths), y, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.forward(x), layer(x)[0], rtol=0, atol=1e-6)
    assert np.all(model.forward(x, lengths)[3:, 1] == 0)  # past row 1's length


def test_cython_stream_matches_python_steps(client, tmp_path):
    layer = fastgru.GRU(3, 5, num_layers=2, seed=3)
    layer.save(tmp_path / "model.safetensors")
    model = client.Model(str(tmp_path / "model.safetensors"))
    x = np.random.default_rng(2).standard_normal((8, 2, 3)).astype(np.float32)
    h, expected = None, []
    for t in range(8):
        y_t, h = layer.step(x[t], h)
        expected.append(y_t)
    np.testing.assert_allclose(model.stream(x), np.stack(expected), rtol=0, atol=1e-6)


def test_cython_client_from_many_threads_without_the_gil(client, tmp_path):
    layer = fastgru.GRU(4, 16, seed=4)
    layer.save(tmp_path / "model.safetensors")
    model = client.Model(str(tmp_path / "model.safetensors"))
    x = np.random.default_rng(3).standard_normal((50, 8, 4)).astype(np.float32)
    expected = model.forward(x)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: model.forward(x), range(16)))
    for y in results:
        np.testing.assert_array_equal(y, expected)


def test_cython_client_errors_carry_the_core_message(client, tmp_path):
    with pytest.raises(ValueError, match="not a readable fastgru model file"):
        client.Model(str(tmp_path / "missing.safetensors"))
    layer = fastgru.GRU(3, 2, bidirectional=True, seed=1)
    layer.save(tmp_path / "bi.safetensors")
    with pytest.raises(ValueError, match="expected a unidirectional model for streaming"):
        client.Model(str(tmp_path / "bi.safetensors")).stream(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"lengths\[0\]: expected 0..2"):
        client.Model(str(tmp_path / "bi.safetensors")).forward(np.zeros((2, 1, 3), np.float32), np.array([5]))
    assert client.version() == fastgru.__version__
