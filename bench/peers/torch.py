"""PyTorch's workers: torch.nn.GRU (inference and training, reset after only), its dynamic int8
quantization, and torch.nn.GRUCell for the streaming step."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from harness.common import DEFAULT_THREADS, cell_record, error_against, rel_err, report_cell
from harness.data import load_data, load_fastgru_y, load_ref, shape_id, torch_state
from harness.stream import stream_measure
from harness.timing import measure


def import_torch(threads):
    import torch

    if threads != DEFAULT_THREADS:
        torch.set_num_threads(threads)
    return torch


def run(plan, threads, policy):
    torch = import_torch(threads)
    info = {"version": torch.__version__, "num_threads": torch.get_num_threads(),
            "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
            "parallel_info": torch.__config__.parallel_info()}
    cells = []
    conv = "reset_after"  # torch.nn.GRU has only this convention
    for s in plan["sequences"]:
        ddir = Path(plan["data"]) / shape_id(s)
        d = load_data(ddir, s["T"], s["B"], s["I"], s["H"])
        gru = torch.nn.GRU(s["I"], s["H"])
        gru.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in torch_state(d).items()})
        x = torch.from_numpy(d["x"])
        h0 = torch.from_numpy(d["h0"][np.newaxis].copy())
        dy = torch.from_numpy(d["dy"])
        check = {}

        def check_inf(out):
            check["y"] = rel_err(out[0].numpy(), load_ref(ddir, "y", conv))

        with torch.inference_mode():
            m = measure(lambda: gru(x, h0), policy, after_first=check_inf)
        cells.append(cell_record("torch", threads, s, conv, "inference", m, dict(check)))
        report_cell(cells[-1])

        check = {}
        x_req = x.clone().requires_grad_(True)
        h0_req = h0.clone().requires_grad_(True)

        def prep():  # fresh input gradients each run; parameter gradients accumulate, as in fastgru
            x_req.grad = None
            h0_req.grad = None

        def train():
            y, _ = gru(x_req, h0_req)
            y.backward(dy)  # the gradient of (y * dy).sum(), without forming the product
            return y

        def check_train(out):
            check["dx"] = rel_err(x_req.grad.numpy(), load_ref(ddir, "dx", conv))
            check["dh0"] = rel_err(h0_req.grad[0].numpy(), load_ref(ddir, "dh0", conv))
            check["dw_hh"] = rel_err(gru.weight_hh_l0.grad.numpy(), load_ref(ddir, "dw_hh", conv))

        m = measure(train, policy, prep=prep, before_first=lambda: gru.zero_grad(set_to_none=True),
                    after_first=check_train)
        cells.append(cell_record("torch", threads, s, conv, "train", m, dict(check)))
        report_cell(cells[-1])
    return {"cells": cells, "impl_info": info}



def quantized_gru(torch, gru):
    """torch.nn.GRU with dynamic int8 quantization: int8 weights, activations quantized per call.
    quantize_dynamic swaps only the children of the module it is given, so the GRU goes in a
    Sequential; the check makes sure it was swapped rather than silently left in float32."""
    with warnings.catch_warnings():  # 2.13 deprecates quantized tensors, but this is still its int8 GRU
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
        quantized = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(gru), {torch.nn.GRU},
                                                           dtype=torch.qint8)[0]
    if not isinstance(quantized, torch.ao.nn.quantized.dynamic.GRU):
        raise RuntimeError(f"quantize_dynamic left the GRU unquantized: got {type(quantized).__name__}")
    return quantized


def run_int8(plan, threads, policy):
    torch = import_torch(threads)
    info = {"version": torch.__version__, "num_threads": torch.get_num_threads(),
            "quantized_engine": torch.backends.quantized.engine,
            "module": "torch.ao.quantization.quantize_dynamic(Sequential(GRU), {GRU}, dtype=torch.qint8)"}
    cells = []
    conv = "reset_after"  # torch.nn.GRU has only this convention
    for s in plan["sequences"]:
        ddir = Path(plan["data"]) / shape_id(s)
        d = load_data(ddir, s["T"], s["B"], s["I"], s["H"])
        gru = torch.nn.GRU(s["I"], s["H"])
        gru.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in torch_state(d).items()})
        gru = quantized_gru(torch, gru)
        x = torch.from_numpy(d["x"])
        h0 = torch.from_numpy(d["h0"][np.newaxis].copy())
        check, error = {}, {}

        def check_inf(out):
            y = out[0].numpy()
            check["y"] = rel_err(y, load_ref(ddir, "y", conv))
            error.update(error_against(y, load_fastgru_y(ddir, conv)))

        with torch.inference_mode():
            m = measure(lambda: gru(x, h0), policy, after_first=check_inf)
        cells.append(cell_record("torch-int8", threads, s, conv, "inference", m, dict(check), dict(error)))
        report_cell(cells[-1])
    return {"cells": cells, "impl_info": info}


def run_stream(plan, threads, policy):
    torch = import_torch(threads)
    st = plan["stream"]
    ddir = Path(plan["data"]) / "stream"
    d = load_data(ddir, st["steps_per_block"], st["B"], st["I"], st["H"])
    cell = torch.nn.GRUCell(st["I"], st["H"])
    cell.load_state_dict({k[:-3]: torch.from_numpy(v.copy()) for k, v in torch_state(d).items()})
    xs = [torch.from_numpy(x) for x in d["x"]]
    with torch.inference_mode():
        r = stream_measure(lambda x, h: cell(x, h), xs, torch.from_numpy(d["h0"].copy()), policy, ddir,
                           "reset_after")
    return {"stream": [{"impl": "torch", "convention": "reset_after",
                        "api": "torch.nn.GRUCell(x_t, h) under torch.inference_mode", **r}],
            "impl_info": {"version": torch.__version__}}
