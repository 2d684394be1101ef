"""The one-node ONNX GRU model that ONNX Runtime and OpenVINO run."""

from __future__ import annotations

import numpy as np


def onnx_gru_model(I, H, d, linear_before_reset):
    """An ONNX model of one GRU node: inputs X (T, B, I) and initial_h (1, B, H), T and B dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H3 = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)  # PyTorch blocks r, z, n

    def zrh(a):  # ONNX gate order z, r, h
        return np.concatenate([a[H3[1]], a[H3[0]], a[H3[2]]], axis=0)

    W = zrh(d["w_ih"])[np.newaxis]
    R = zrh(d["w_hh"])[np.newaxis]
    B = np.concatenate([zrh(d["b_ih"]), zrh(d["b_hh"])])[np.newaxis]
    node = helper.make_node("GRU", ["X", "W", "R", "B", "", "initial_h"], ["Y", "Y_h"], hidden_size=H,
                            linear_before_reset=int(linear_before_reset))
    graph = helper.make_graph(
        [node], "gru",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I]),
         helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, "B", H])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 1, "B", H]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, "B", H])],
        initializer=[numpy_helper.from_array(W.astype(np.float32), "W"),
                     numpy_helper.from_array(R.astype(np.float32), "R"),
                     numpy_helper.from_array(B.astype(np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model.SerializeToString()

