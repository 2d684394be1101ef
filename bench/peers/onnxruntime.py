"""ONNX Runtime's worker: the one-node GRU model, both conventions, inference and the streaming
step (T = 1)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from harness.common import CONVENTIONS, DEFAULT_THREADS, cell_record, rel_err, report_cell
from harness.data import load_data, load_ref, shape_id
from harness.stream import stream_measure
from harness.timing import measure

from .onnx_model import onnx_gru_model


def ort_session(model_bytes, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 0 if threads == DEFAULT_THREADS else threads  # 0: ORT's default
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def run(plan, threads, policy):
    import onnxruntime as ort

    info = {"version": ort.__version__}
    cells = []
    for s in plan["sequences"]:
        ddir = Path(plan["data"]) / shape_id(s)
        d = load_data(ddir, s["T"], s["B"], s["I"], s["H"])
        feeds = {"X": d["x"], "initial_h": d["h0"][np.newaxis].copy()}
        for conv in CONVENTIONS:
            sess = ort_session(onnx_gru_model(s["I"], s["H"], d, conv == "reset_after"), threads)
            check = {}

            def check_inf(out, conv=conv):
                check["y"] = rel_err(out[0][:, 0], load_ref(ddir, "y", conv))

            m = measure(lambda: sess.run(None, feeds), policy, after_first=check_inf)
            cells.append(cell_record("onnxruntime", threads, s, conv, "inference", m, dict(check)))
            report_cell(cells[-1])
            del sess  # its thread pool goes with it
            gc.collect()
    return {"cells": cells, "impl_info": info}



def run_stream(plan, threads, policy):
    import onnxruntime as ort

    st = plan["stream"]
    ddir = Path(plan["data"]) / "stream"
    d = load_data(ddir, st["steps_per_block"], st["B"], st["I"], st["H"])
    xs = [np.ascontiguousarray(d["x"][t:t + 1]) for t in range(st["steps_per_block"])]
    results = []
    for conv in CONVENTIONS:
        sess = ort_session(onnx_gru_model(st["I"], st["H"], d, conv == "reset_after"), threads)
        r = stream_measure(lambda x, h: sess.run(["Y_h"], {"X": x, "initial_h": h})[0], xs,
                           d["h0"][np.newaxis].copy(), policy, ddir, conv)
        results.append({"impl": "onnxruntime", "convention": conv, "api": "InferenceSession.run with T=1", **r})
        del sess
        gc.collect()
    return {"stream": results, "impl_info": {"version": ort.__version__}}
