"""fastgru's workers: the sequence cells (inference and training, both conventions) and the
streaming step, in float32 and, as "fastgru-bf16" / "fastgru-int8", through GRU.quantize
(inference only)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from harness.common import (CHECK_TOLERANCE, CONVENTIONS, DEFAULT_THREADS, FASTGRU_QUANTIZED, REDUCED_CHECK_TOLERANCE,
                            cell_record, error_against, log, rel_err, report_cell)
from harness.data import load_data, load_fastgru_y, load_ref, shape_id, torch_state
from harness.stream import stream_check, stream_measure
from harness.timing import measure


def import_fastgru():
    for attempt in range(4):
        try:
            import fastgru  # noqa: F401

            return fastgru
        except ImportError as e:  # being reinstalled by someone else: wait and retry
            if attempt == 3:
                raise
            log(f"import fastgru failed ({e}); retrying in 30 s")
            for mod in [m for m in sys.modules if m.startswith("fastgru")]:
                del sys.modules[mod]
            time.sleep(30)


def fastgru_build_id(fastgru):
    """Which compiled core was measured (others may reinstall fastgru between runs)."""
    import hashlib

    try:
        path = Path(fastgru._core.__file__)
        stat = path.stat()
        return {"core": str(path), "bytes": stat.st_size,
                "mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stat.st_mtime)),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}
    except (AttributeError, OSError) as e:
        return {"error": repr(e)}


def layer_for(fastgru, impl, I, H, conv, state):
    """The layer impl times: float32, or its GRU.quantize(mode) copy."""
    layer = fastgru.GRU(I, H, reset_after=(conv == "reset_after"), dtype="float32")
    layer.load_state_dict(state)
    return layer.quantize(FASTGRU_QUANTIZED[impl]) if impl in FASTGRU_QUANTIZED else layer


def run(plan, threads, policy, impl="fastgru"):
    fastgru = import_fastgru()
    info = {"version": getattr(fastgru, "__version__", None), "file": fastgru.__file__,
            "has_set_num_threads": hasattr(fastgru, "set_num_threads"), "build": fastgru_build_id(fastgru)}
    if hasattr(fastgru, "set_num_threads"):
        # 0: the usable CPUs, capped by OpenMP's setting
        fastgru.set_num_threads(0 if threads == DEFAULT_THREADS else threads)
    if hasattr(fastgru, "info"):
        try:
            info["info"] = fastgru.info()
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            info["info"] = f"error: {e!r}"
    cells = []
    for s in plan["sequences"]:
        ddir = Path(plan["data"]) / shape_id(s)
        d = load_data(ddir, s["T"], s["B"], s["I"], s["H"])
        x, h0, dy = d["x"], d["h0"][np.newaxis], d["dy"]
        for conv in CONVENTIONS:
            layer = layer_for(fastgru, impl, s["I"], s["H"], conv, torch_state(d))
            check, error = {}, {}

            def check_inf(out, conv=conv):
                check["y"] = rel_err(out[0], load_ref(ddir, "y", conv))
                if impl in FASTGRU_QUANTIZED:
                    error.update(error_against(out[0], load_fastgru_y(ddir, conv)))

            m = measure(lambda: layer(x, h0), policy, after_first=check_inf)
            cells.append(cell_record(impl, threads, s, conv, "inference", m, dict(check),
                                     dict(error) if impl in FASTGRU_QUANTIZED else None))
            report_cell(cells[-1])
            if impl in FASTGRU_QUANTIZED:
                continue  # inference only

            check = {}

            def train():
                y, _ = layer.forward(x, h0, train=True)
                return layer.backward(dy)

            def check_train(out, conv=conv):
                check["dx"] = rel_err(out[0], load_ref(ddir, "dx", conv))
                check["dh0"] = rel_err(out[1][0], load_ref(ddir, "dh0", conv))
                check["dw_hh"] = rel_err(layer.grads["weight_hh_l0"], load_ref(ddir, "dw_hh", conv))

            m = measure(train, policy, before_first=layer.zero_grad, after_first=check_train)
            cells.append(cell_record("fastgru", threads, s, conv, "train", m, dict(check)))
            report_cell(cells[-1])
            del layer
    return {"cells": cells, "impl_info": info}


def step_function(layer, xs, h0, ddir, conv, tolerance=CHECK_TOLERANCE):
    """The fastest honest way to run one step with this fastgru: GRU.step if it exists (trying
    the plausible call forms and keeping the first that reproduces the reference), else layer()
    with T=1. Returns (step, xs_in_its_form, h0_in_its_form, description)."""
    B = xs.shape[1]
    H = h0.shape[-1]
    forms = []
    if hasattr(type(layer), "step"):
        def unpack(out):
            return out[-1] if isinstance(out, tuple) else out

        forms.append(("GRU.step(x_t (B,I), h (1,B,H))", lambda x, h: unpack(layer.step(x, h)),
                      [xs[t] for t in range(len(xs))], h0.reshape(1, B, H)))
        forms.append(("GRU.step(x_t (B,I), h (B,H))", lambda x, h: unpack(layer.step(x, h)),
                      [xs[t] for t in range(len(xs))], h0.reshape(B, H)))
        forms.append(("GRU.step(x_t (1,B,I), h (1,B,H))", lambda x, h: unpack(layer.step(x, h)),
                      [xs[t:t + 1] for t in range(len(xs))], h0.reshape(1, B, H)))
    forms.append(("layer(x (1,B,I), h0 (1,B,H)) with T=1 (no GRU.step)", lambda x, h: layer(x, h)[1],
                  [xs[t:t + 1] for t in range(len(xs))], h0.reshape(1, B, H)))
    notes = []
    for desc, step, xin, hin in forms:
        try:
            h = hin
            for x in xin:
                h = step(x, h)
            if np.shape(h) != np.shape(hin):
                notes.append(f"{desc}: returned shape {np.shape(h)}")
                continue
            err = stream_check(h, ddir, conv)
            if err > tolerance:
                notes.append(f"{desc}: relative error {err:.2e}")
                continue
            return step, xin, hin, desc, notes
        except Exception as e:  # noqa: BLE001 - try the next form
            notes.append(f"{desc}: {type(e).__name__}: {e}")
    raise RuntimeError("no working fastgru step form: " + "; ".join(notes))



def run_stream(plan, threads, policy, impl="fastgru"):
    st = plan["stream"]
    ddir = Path(plan["data"]) / "stream"
    d = load_data(ddir, st["steps_per_block"], st["B"], st["I"], st["H"])
    fastgru = import_fastgru()
    if hasattr(fastgru, "set_num_threads"):
        fastgru.set_num_threads(0 if threads == DEFAULT_THREADS else threads)
    results = []
    for conv in CONVENTIONS:
        layer = layer_for(fastgru, impl, st["I"], st["H"], conv, torch_state(d))
        tolerance = REDUCED_CHECK_TOLERANCE if impl in FASTGRU_QUANTIZED else CHECK_TOLERANCE
        step, xin, hin, desc, notes = step_function(layer, d["x"], d["h0"], ddir, conv, tolerance)
        r = stream_measure(step, xin, hin, policy, ddir, conv)
        results.append({"impl": impl, "convention": conv, "api": desc, "api_notes": notes, **r})
    return {"stream": results, "impl_info": {}}
