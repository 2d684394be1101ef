"""fastgru against ONNX Runtime's GRU operator (both reset conventions)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fastgru  # noqa: E402

from .helpers import normalised_error as rel_err  # noqa: E402

OPSET = 14
TOL = 1e-5

# (T, B, I, H); H=13, 33 and 1 are not multiples of 8
SHAPES = [
    pytest.param(1, 1, 1, 1, id="T1-B1-I1-H1"),
    pytest.param(5, 1, 4, 13, id="T5-B1-I4-H13"),
    pytest.param(7, 3, 5, 13, id="T7-B3-I5-H13"),
    pytest.param(12, 6, 9, 33, id="T12-B6-I9-H33"),
    pytest.param(4, 2, 8, 16, id="T4-B2-I8-H16"),
]


def assert_close(name, actual, expected, tol=TOL):
    err = rel_err(actual, expected)
    assert np.isfinite(err) and err <= tol, f"{name}: normalised error {err:.3e} > {tol:.0e}"


def rzn_to_zrh(a, H):
    """Reorders the leading axis from fastgru's (r, z, n) row blocks to ONNX's (z, r, h)."""
    r, z, n = a[:H], a[H : 2 * H], a[2 * H :]
    return np.concatenate([z, r, n], axis=0)


def onnx_weights(layer):
    H = layer.hidden_size
    sd = layer.state_dict()
    W = rzn_to_zrh(sd["weight_ih_l0"], H)[np.newaxis]
    R = rzn_to_zrh(sd["weight_hh_l0"], H)[np.newaxis]
    if layer.bias:
        B = np.concatenate([rzn_to_zrh(sd["bias_ih_l0"], H), rzn_to_zrh(sd["bias_hh_l0"], H)])
    else:
        B = np.zeros(6 * H, dtype=np.float32)
    return (
        np.ascontiguousarray(W, dtype=np.float32),
        np.ascontiguousarray(R, dtype=np.float32),
        np.ascontiguousarray(B[np.newaxis], dtype=np.float32),
    )


def onnx_session(layer, linear_before_reset):
    H, I = layer.hidden_size, layer.input_size
    W, R, B = onnx_weights(layer)
    node = helper.make_node(
        "GRU",
        inputs=["X", "W", "R", "B", "", "initial_h"],
        outputs=["Y", "Y_h"],
        hidden_size=H,
        linear_before_reset=linear_before_reset,
        direction="forward",
    )
    graph = helper.make_graph(
        [node],
        "gru",
        inputs=[
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I]),
            helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, "B", H]),
        ],
        outputs=[
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 1, "B", H]),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, "B", H]),
        ],
        initializer=[
            numpy_helper.from_array(W, "W"),
            numpy_helper.from_array(R, "R"),
            numpy_helper.from_array(B, "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_onnx(sess, x, h0):
    Y, Y_h = sess.run(["Y", "Y_h"], {"X": x, "initial_h": h0})
    return Y, Y_h


def make_data(T, B, I, H, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((1, B, H))).astype(np.float32)
    return x, h0


@pytest.mark.parametrize("reset_after", [True, False], ids=["lbr1", "lbr0"])
@pytest.mark.parametrize("T,B,I,H", SHAPES)
def test_matches_onnxruntime(T, B, I, H, reset_after):
    layer = fastgru.GRU(I, H, reset_after=reset_after, dtype="float32", seed=T * 31 + H)
    sess = onnx_session(layer, linear_before_reset=int(reset_after))
    x, h0 = make_data(T, B, I, H, seed=T + B + H)

    Y, Y_h = run_onnx(sess, x, h0)
    assert Y.shape == (T, 1, B, H) and Y_h.shape == (1, B, H)

    y, h_n = layer(x, h0)
    assert_close("Y", y, Y[:, 0], TOL)
    assert_close("Y_h", h_n, Y_h, TOL)

    # The training forward agrees too.
    y_tr, hn_tr = layer.forward(x, h0, train=True)
    assert_close("Y (train)", y_tr, Y[:, 0], TOL)
    assert_close("Y_h (train)", hn_tr, Y_h, TOL)

    # Zero initial state (fastgru h0=None).
    zeros = np.zeros((1, B, H), np.float32)
    Y0, Y_h0 = run_onnx(sess, x, zeros)
    y0, h_n0 = layer(x)
    assert_close("Y (h0=0)", y0, Y0[:, 0], TOL)
    assert_close("Y_h (h0=0)", h_n0, Y_h0, TOL)


@pytest.mark.parametrize("reset_after", [True, False], ids=["lbr1", "lbr0"])
def test_matches_onnxruntime_without_bias(reset_after):
    T, B, I, H = 6, 3, 5, 11
    layer = fastgru.GRU(I, H, bias=False, reset_after=reset_after, seed=2)
    sess = onnx_session(layer, linear_before_reset=int(reset_after))
    x, h0 = make_data(T, B, I, H, seed=3)
    Y, Y_h = run_onnx(sess, x, h0)
    y, h_n = layer(x, h0)
    assert_close("Y", y, Y[:, 0])
    assert_close("Y_h", h_n, Y_h)


def test_conventions_differ():
    """Guards the test itself: the two conventions must give different results, so that a
    layer ignoring reset_after would fail one of the comparisons above."""
    T, B, I, H = 6, 3, 5, 11
    x, h0 = make_data(T, B, I, H, seed=4)
    a = fastgru.GRU(I, H, reset_after=True, seed=9)
    b = fastgru.GRU(I, H, reset_after=False, seed=9)
    b.load_state_dict(a.state_dict())
    ya, _ = a(x, h0)
    yb, _ = b(x, h0)
    assert rel_err(ya, yb) > 1e-3
    sess0 = onnx_session(a, linear_before_reset=0)
    Y, _ = run_onnx(sess0, x, h0)
    assert rel_err(ya, Y[:, 0]) > 1e-3


@pytest.mark.parametrize("reset_after", [True, False], ids=["lbr1", "lbr0"])
def test_reverse_layers_match_onnxruntime_both_ways(tmp_path, reset_after):
    """direction="reverse": to_onnx writes it, ONNX Runtime runs it (with sequence_lens and
    initial_h) to fastgru's outputs, and from_onnx reads it back."""
    layer = fastgru.GRU(3, 5, num_layers=2, reverse=True, reset_after=reset_after, seed=4)
    path = tmp_path / "reverse.onnx"
    layer.to_onnx(path, initial_state=True, lengths=True)
    x, _ = make_data(6, 3, 3, 5, seed=5)
    h0 = np.random.default_rng(6).standard_normal((2, 3, 5)).astype(np.float32)
    lengths = np.array([6, 2, 4])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y_ort, h_ort = session.run(None, {"x": x, "h0": h0, "lengths": lengths.astype(np.int64)})
    y, h_n = layer(x, h0, lengths=lengths)
    assert_close("y", y, y_ort, TOL)
    assert_close("h_n", h_n, h_ort, TOL)
    back = fastgru.GRU.from_onnx(path)
    assert back.reverse and back.config() == layer.config()


def test_rows_of_no_steps_match_onnxruntime(tmp_path):
    layer = fastgru.GRU(3, 4, bidirectional=True, seed=20)
    path = tmp_path / "lengths.onnx"
    layer.to_onnx(path, initial_state=True, lengths=True)
    x, _ = make_data(5, 3, 3, 4, seed=21)
    h0 = np.random.default_rng(22).standard_normal((2, 3, 4)).astype(np.float32)
    lengths = np.array([3, 0, 5])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y_ort, h_ort = session.run(None, {"x": x, "h0": h0, "lengths": lengths.astype(np.int64)})
    y, h_n = layer(x, h0, lengths=lengths)
    assert_close("y", y, y_ort, TOL)
    assert_close("h_n of the rows with steps", h_n[:, [0, 2]], h_ort[:, [0, 2]], TOL)
    # A row of no steps: ONNX Runtime gives a zero final state; fastgru keeps h0, as a row whose
    # every step is masked keeps it in Keras (README, "Variable lengths").
    assert np.all(h_ort[:, 1] == 0) and np.array_equal(h_n[:, 1], h0[:, 1])
