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


# ------------------------------------------------------------------ batch-major nodes (layout=1)
# ONNX Runtime's CPU GRU refuses layout=1, so these models are checked two ways: run by ONNX's
# reference implementation (onnx.reference, whose GRU honours layout but ignores sequence_lens),
# and by ONNX Runtime once each layout=1 node is rewritten as the layout=0 node between Transposes
# that the ONNX specification says it equals.
def time_major_equivalent(model):
    """A copy of ``model`` with every layout=1 GRU node replaced by a layout=0 one whose X and
    initial_h are transposed in, and Y and Y_h out."""
    equivalent = onnx.ModelProto()
    equivalent.CopyFrom(model)
    nodes = []
    for node in model.graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "GRU" or attributes.get("layout", 0) == 0:
            nodes.append(node)
            continue
        del attributes["layout"]
        prefix = f"{node.output[-1]}_time_major"
        inputs = list(node.input) + [""] * (6 - len(node.input))
        nodes.append(helper.make_node("Transpose", [inputs[0]], [f"{prefix}_x"], perm=[1, 0, 2]))
        inputs[0] = f"{prefix}_x"
        if inputs[5]:
            nodes.append(helper.make_node("Transpose", [inputs[5]], [f"{prefix}_h0"], perm=[1, 0, 2]))
            inputs[5] = f"{prefix}_h0"
        while inputs[-1] == "":
            inputs.pop()
        outputs = [f"{prefix}_{name}" if name else "" for name in node.output]
        nodes.append(helper.make_node("GRU", inputs, outputs, **attributes))
        for name, time_major, perm in zip(node.output, outputs, ([2, 0, 1, 3], [1, 0, 2])):
            if name:  # Y (T, D, B, H) -> (B, T, D, H); Y_h (D, B, H) -> (B, D, H)
                nodes.append(helper.make_node("Transpose", [time_major], [name], perm=perm))
    del equivalent.graph.node[:]
    equivalent.graph.node.extend(nodes)
    onnx.checker.check_model(equivalent)
    return equivalent


def save_with_second_node_changed(source, target, **attributes):
    """Copies the ONNX model at ``source`` to ``target`` without its metadata (so that from_onnx
    reads the nodes alone), with ``attributes`` set on its second GRU node."""
    model = onnx.load(source)
    del model.metadata_props[:]
    second = [node for node in model.graph.node if node.op_type == "GRU"][1]
    kept = [attribute for attribute in second.attribute if attribute.name not in attributes]
    del second.attribute[:]
    second.attribute.extend(kept + [helper.make_attribute(name, value) for name, value in attributes.items()])
    onnx.save(model, target)


def onnxruntime_outputs(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def reference_outputs(model, feeds):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


def batch_major_gru_model(direction, linear_before_reset, lengths, initial_h, I=3, H=5, seed=0, **attributes):
    """One plain layout=1 GRU node: X (B, T, I), [sequence_lens (B,) int32], [initial_h (B, D, H)]."""
    D = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(seed)
    initializers = [numpy_helper.from_array((0.5 * rng.standard_normal(shape)).astype(np.float32), name)
                    for name, shape in (("W", (D, 3 * H, I)), ("R", (D, 3 * H, H)), ("B", (D, 6 * H)))]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["B", "T", I])]
    node_inputs = ["X", "W", "R", "B", "", ""]
    if lengths:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]))
        node_inputs[4] = "sequence_lens"
    if initial_h:
        inputs.append(helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, ["B", D, H]))
        node_inputs[5] = "initial_h"
    while node_inputs[-1] == "":
        node_inputs.pop()
    node = helper.make_node("GRU", node_inputs, ["Y", "Y_h"], hidden_size=H, direction=direction, layout=1,
                            linear_before_reset=linear_before_reset, **attributes)
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["B", "T", D, H]),
               helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, ["B", D, H])]
    model = helper.make_model(helper.make_graph([node], "batch_major_gru", inputs, outputs, initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = min(model.ir_version, 9)
    return model


@pytest.mark.parametrize("initial_h", [False, True], ids=["h0-none", "initial_h"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "sequence_lens"])
@pytest.mark.parametrize("direction,linear_before_reset", [
    ("forward", 1), ("reverse", 0), ("bidirectional", 1), ("bidirectional", 0)])
def test_from_onnx_reads_batch_major_nodes(tmp_path, direction, linear_before_reset, lengths, initial_h):
    B, T, I, H = 4, 6, 3, 5
    D = 2 if direction == "bidirectional" else 1
    model = batch_major_gru_model(direction, linear_before_reset, lengths, initial_h, I, H)
    onnx.checker.check_model(model)
    path = tmp_path / "batch_major.onnx"
    onnx.save(model, path)
    layer = fastgru.GRU.from_onnx(path)
    assert layer.batch_first and layer.bidirectional == (D == 2) and layer.reverse == (direction == "reverse")
    assert layer.reset_after == bool(linear_before_reset)

    rng = np.random.default_rng(1)
    feeds = {"X": rng.standard_normal((B, T, I)).astype(np.float32)}
    steps = np.array([6, 2, 5, 1])
    if lengths:
        feeds["sequence_lens"] = steps.astype(np.int32)
    if initial_h:
        feeds["initial_h"] = (0.5 * rng.standard_normal((B, D, H))).astype(np.float32)
    y, h_n = layer(feeds["X"], feeds["initial_h"].transpose(1, 0, 2) if initial_h else None,
                   lengths=steps if lengths else None)
    Y, Y_h = onnxruntime_outputs(time_major_equivalent(model), feeds)
    assert Y.shape == (B, T, D, H) and Y_h.shape == (B, D, H)
    assert_close("y against ONNX Runtime", y, Y.reshape(B, T, D * H))
    assert_close("h_n against ONNX Runtime", h_n, Y_h.transpose(1, 0, 2))
    if not lengths:  # the reference ignores sequence_lens
        Y_reference, Y_h_reference = reference_outputs(model, feeds)
        assert_close("y against onnx.reference", y, Y_reference.reshape(B, T, D * H))
        assert_close("h_n against onnx.reference", h_n, Y_h_reference.transpose(1, 0, 2))


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_major"])
@pytest.mark.parametrize("config", [dict(), dict(num_layers=2, reverse=True, reset_after=False),
                                    dict(num_layers=2, bidirectional=True)],
                         ids=["forward", "reverse", "bidirectional"])
def test_to_onnx_writes_batch_major_nodes(tmp_path, config, batch_first):
    B, T, I, H = 3, 6, 4, 5
    layer = fastgru.GRU(I, H, batch_first=batch_first, seed=3, **config)
    path = tmp_path / "layout1.onnx"
    layer.to_onnx(path, initial_state=True, lengths=True, layout=1)
    model = onnx.load(path)
    grus = [node for node in model.graph.node if node.op_type == "GRU"]
    assert len(grus) == layer.num_layers
    assert all({a.name: helper.get_attribute_value(a) for a in node.attribute}["layout"] == 1 for node in grus)

    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((layer.num_layers * layer.num_directions, B, H)).astype(np.float32)
    lengths = np.array([6, 2, 4])
    y, h_n = layer(x, h0, lengths=lengths)
    y_ort, h_ort = onnxruntime_outputs(time_major_equivalent(model), {"x": x, "h0": h0, "lengths": lengths})
    assert_close("y against ONNX Runtime", y, y_ort)
    assert_close("h_n against ONNX Runtime", h_n, h_ort)
    full = np.full(B, T)  # the reference ignores sequence_lens
    y_full, h_full = layer(x, h0, lengths=full)
    y_reference, h_reference = reference_outputs(model, {"x": x, "h0": h0, "lengths": full})
    assert_close("y against onnx.reference", y_full, y_reference)
    assert_close("h_n against onnx.reference", h_full, h_reference)

    back = fastgru.GRU.from_onnx(path)
    assert back.config() == layer.config()
    for name, value in layer.state_dict().items():
        assert np.array_equal(back.state_dict()[name], value), name


@pytest.mark.parametrize("head,merge_mode", [("last", "concat"), ("sequence", "ave")])
def test_model_to_onnx_writes_batch_major_nodes(tmp_path, head, merge_mode):
    layer = fastgru.GRU(3, 6, bidirectional=True, merge_mode=merge_mode, batch_first=True, seed=5)
    model = fastgru.Model(layer, outputs=2, head=head, seed=5)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((4, 7, 3)).astype(np.float32)
    lengths = np.array([7, 3, 5, 1])
    expected = model.predict(X, lengths=lengths)
    for layout in (0, 1):
        path = tmp_path / f"model{layout}.onnx"
        model.to_onnx(path, lengths=True, layout=layout)
        exported = onnx.load(path)
        assert not layout or not any(n.op_type == "Transpose" and n.input[0] == "x" for n in exported.graph.node)
        (outputs,) = onnxruntime_outputs(time_major_equivalent(exported), {"x": X, "lengths": lengths})
        assert_close(f"Model outputs, layout={layout}", outputs, expected)


def test_batch_major_refusals(tmp_path):
    path = tmp_path / "clip.onnx"
    onnx.save(batch_major_gru_model("forward", 1, False, False, clip=-3.0), path)
    with pytest.raises(ValueError, match=r"GRU node 0 has clip=-3\.0: expected a finite FLOAT > 0"):
        fastgru.GRU.from_onnx(path)
    layer = fastgru.GRU(2, 3, num_layers=2, seed=0)
    for layout in (2, True, "1", None):
        with pytest.raises(ValueError, match=rf"layout: expected 0 .* or 1 .*got {layout!r}"):
            layer.to_onnx(tmp_path / "bad.onnx", layout=layout)
    with pytest.raises(ValueError, match="layout: expected 0"):
        fastgru.Model(layer).to_onnx(tmp_path / "bad.onnx", layout=-1)
    # a stack whose nodes disagree on the layout
    layer.to_onnx(tmp_path / "stack.onnx", layout=1)
    save_with_second_node_changed(tmp_path / "stack.onnx", tmp_path / "mixed.onnx", layout=0)
    with pytest.raises(ValueError, match="GRU node 1 has layout=0, but GRU node 0 has layout=1"):
        fastgru.GRU.from_onnx(tmp_path / "mixed.onnx")
