"""What every part of the benchmark shares: the implementations and their labels, thread
settings, the correctness measure, and one cell's record."""

from __future__ import annotations

import statistics
import sys

import numpy as np

from .timing import BUSY_THRESHOLD

CONVENTIONS = ("reset_after", "reset_before")
MODES = ("inference", "train")
IMPLS = ("fastgru", "torch", "onnxruntime", "onednn", "openvino", "openvino-bf16", "torch-int8", "fastgru-bf16",
         "fastgru-int8")
LABELS = {"fastgru": "fastgru", "torch": "PyTorch", "onnxruntime": "ONNX Runtime", "onednn": "oneDNN",
          "openvino": "OpenVINO", "openvino-bf16": "OpenVINO bf16", "torch-int8": "PyTorch int8",
          "fastgru-bf16": "fastgru bf16", "fastgru-int8": "fastgru int8"}
# fastgru's quantized layers (GRU.quantize(mode)): inference only.
FASTGRU_QUANTIZED = {"fastgru-bf16": "bf16", "fastgru-int8": "int8"}
# The implementations with a streaming-step worker (one step at a time from Python).
STREAMING = ("fastgru", "torch", "onnxruntime", "fastgru-bf16", "fastgru-int8")
# The implementations that compute in reduced precision: their rows print their error against fastgru
# float32 on the same weights and inputs, and their check against the float64 reference is the looser one.
REDUCED_PRECISION = ("openvino-bf16", "torch-int8", "fastgru-bf16", "fastgru-int8")
# A peer's output counts as "the same function" when its largest deviation from the float64
# reference, relative to the reference's largest magnitude, is below this.
CHECK_TOLERANCE = 1e-3
# The same for the reduced-precision peers: bf16 keeps 8 significant bits and int8 a 1/127 step,
# so their outputs move by 1e-3 to 1e-1 of the largest value; above this they compute something else.
REDUCED_CHECK_TOLERANCE = 0.2
# A thread setting beside the explicit counts: nothing configured, each library left to its
# default (what a user gets), with no thread variables in the worker's environment.
DEFAULT_THREADS = "default"


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def thread_label(threads):
    """'1 thread', '2 threads', or 'default threads'."""
    if threads == DEFAULT_THREADS:
        return "default threads"
    return f"{threads} thread{'s' if threads > 1 else ''}"


def thread_setting(text):
    """A thread setting from the command line: a count >= 1 or 'default'."""
    return text if text == DEFAULT_THREADS else int(text)


def error_against(a, ref):
    """The largest absolute deviation of a from ref, and that over ref's largest magnitude."""
    a = np.asarray(a, dtype=np.float64).reshape(np.shape(ref))
    ref = np.asarray(ref, dtype=np.float64)
    max_abs = float(np.max(np.abs(a - ref)))
    return {"max_abs": max_abs, "normalised": max_abs / max(float(np.max(np.abs(ref))), 1e-12)}


def rel_err(a, ref):
    """The correctness measure: max |a - ref| / max |ref|."""
    return error_against(a, ref)["normalised"]


def cell_record(impl, threads, s, conv, mode, m, check, error_vs_fastgru=None):
    """One timed cell. error_vs_fastgru: a reduced-precision peer's error_against fastgru float32."""
    record = {"impl": impl, "threads": threads, **{k: s[k] for k in "TBIH"}, "convention": conv, "mode": mode,
            "times_ms": [t * 1e3 for t in m["times_s"]], "median_ms": statistics.median(m["times_s"]) * 1e3,
            "repeats": len(m["times_s"]), "warmup_runs": m["warmup_runs"], "warmup_ms": m["warmup_s"] * 1e3,
            "contention": m.get("contention", {}), "check": check}
    if error_vs_fastgru is not None:
        record["error_vs_fastgru"] = error_vs_fastgru
    return record


def report_cell(rec):
    n = rec["repeats"]
    errs = ", ".join(f"{k} {v:.1e}" for k, v in rec["check"].items())
    busy = rec["contention"].get("foreign_cpu_share")
    busy = f"; others used {100 * busy:.0f}% of the CPUs" if busy is not None and busy > BUSY_THRESHOLD else ""
    error = rec.get("error_vs_fastgru")
    if error:
        errs += f"; against fastgru float32: max |error| {error['max_abs']:.1e}, normalised {error['normalised']:.1e}"
    log(f"  [{rec['threads']} thr] {rec['impl']:<13} {rec['T']}x{rec['B']}x{rec['I']}x{rec['H']} "
        f"{rec['convention']:<12} {rec['mode']:<9} {rec['median_ms']:10.3f} ms  (n={n}; check {errs}{busy})")

