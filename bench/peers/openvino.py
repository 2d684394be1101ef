"""OpenVINO's worker: the one-node GRU model that ONNX Runtime runs, compiled for the CPU with one
stream and n inference threads, in float32 or with the bf16 precision hint; inference only.

A precision hint is a request: on a CPU without bf16 instructions OpenVINO runs float32 instead.
So the worker reads back what was compiled (the compiled model's INFERENCE_PRECISION_HINT and the
runtime precision of its GRU node in the execution graph) and records it; the report prints it."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from harness.common import CONVENTIONS, DEFAULT_THREADS, cell_record, error_against, rel_err, report_cell
from harness.data import load_data, load_fastgru_y, load_ref, shape_id
from harness.timing import measure

from .onnx_model import onnx_gru_model

PRECISIONS = {"openvino": "f32", "openvino-bf16": "bf16"}


def compile_gru(core, model_bytes, threads, precision):
    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": precision}
    if threads != DEFAULT_THREADS:
        config["INFERENCE_NUM_THREADS"] = threads
    return core.compile_model(core.read_model(model_bytes), "CPU", config)


def compiled_precision(compiled):
    """What the compiled model computes in: its precision hint as OpenVINO resolved it, and the
    runtime precision of its recurrent node(s) (layer type RNNSeq) in the execution graph."""
    nodes = sorted({op.get_rt_info()["runtimePrecision"].astype(str)
                    for op in compiled.get_runtime_model().get_ordered_ops()
                    if op.get_rt_info()["layerType"].astype(str) == "RNNSeq"})
    return {"inference_precision_hint": compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "gru_runtime_precision": ",".join(nodes) or "no RNNSeq node"}


def run(plan, threads, policy, impl):
    import openvino as ov

    precision = PRECISIONS[impl]
    core = ov.Core()
    info = {"version": ov.__version__, "requested_precision": precision,
            "cpu_capabilities": core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")}
    cells = []
    for s in plan["sequences"]:
        ddir = Path(plan["data"]) / shape_id(s)
        d = load_data(ddir, s["T"], s["B"], s["I"], s["H"])
        feeds = {"X": d["x"], "initial_h": d["h0"][np.newaxis].copy()}
        for conv in CONVENTIONS:
            compiled = compile_gru(core, onnx_gru_model(s["I"], s["H"], d, conv == "reset_after"), threads,
                                   precision)
            info.update(compiled_precision(compiled), num_streams=int(compiled.get_property("NUM_STREAMS")),
                        inference_num_threads=int(compiled.get_property("INFERENCE_NUM_THREADS")))
            request = compiled.create_infer_request()
            output_y = compiled.output("Y")
            check, error = {}, {}

            def check_inf(out, conv=conv):
                y = out[output_y][:, 0]
                check["y"] = rel_err(y, load_ref(ddir, "y", conv))
                if precision != "f32":
                    error.update(error_against(y, load_fastgru_y(ddir, conv)))

            m = measure(lambda: request.infer(feeds), policy, after_first=check_inf)
            cells.append(cell_record(impl, threads, s, conv, "inference", m, dict(check), dict(error) or None))
            report_cell(cells[-1])
            del request, compiled  # its threads go with it
            gc.collect()
    return {"cells": cells, "impl_info": info}
