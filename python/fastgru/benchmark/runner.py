#!/usr/bin/env python
"""fastgru benchmark: fastgru against PyTorch, ONNX Runtime and oneDNN on the same inputs.

    fastgru bench [--quick] [--threads 1,2] [--out DIR]     (or: python bench/run.py ...)

See bench/README.md for what each column means. In short:
  * every (implementation, thread count) runs in its own subprocess with OMP_NUM_THREADS (and the
    BLAS thread variables) set to the thread count, so no two libraries' thread pools share a
    process; oneDNN runs as a compiled C++ program (bench/peers/onednn_gru.cpp);
  * every implementation gets the same arrays (x, h0, dy and the parameters, written once to a
    temporary directory), and the output of its first warm-up run is checked against the NumPy
    reference (fastgru.reference, float64) before its timings are reported;
  * each cell: untimed warm-up runs (at least 0.25 s of them, and at least 2 runs, or 1 when a run
    takes over 1 s), then timed runs, each timed on its own, the last warm-up run's time setting
    their count; the reported figure is the median. Timed runs: max(min_repeats, enough for
    target_seconds), unless min_repeats runs would exceed --cell-budget seconds, in which case as
    many as fit (at least 1); such cells are marked with their run count in the table;
  * --contention: one busy process per usable CPU runs beside every cell's warm-up and timed runs
    (a shared server), a "default" thread setting joins the explicit counts, and the report ends
    with the ratios that say how fastgru's default setting copes (see "Under contention" there).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__:
    from .spinners import busy_cpus
else:  # a worker runs this file as a script: its directory is on sys.path, fastgru stays unimported
    from spinners import busy_cpus

HERE = Path(__file__).resolve().parent  # the shape sets and the oneDNN peer's source lie here
CONVENTIONS = ("reset_after", "reset_before")
MODES = ("inference", "train")
IMPLS = ("fastgru", "torch", "onnxruntime", "onednn")
LABELS = {"fastgru": "fastgru", "torch": "PyTorch", "onnxruntime": "ONNX Runtime", "onednn": "oneDNN"}
# A peer's output counts as "the same function" when its largest deviation from the float64
# reference, relative to the reference's largest magnitude, is below this.
CHECK_TOLERANCE = 1e-3
# A cell is marked (†) when other processes or the hypervisor used more than this share of the
# machine's CPUs while its timed runs ran: its time is then suspect (measured, not corrected).
BUSY_THRESHOLD = 0.10
# Warm-up: at least this many seconds of untimed runs per cell (and at least 2 runs, or 1 when a
# run takes over a second): caches, allocator, thread pools and clock frequency settle first.
WARMUP_SECONDS = 0.25
# A thread setting beside the explicit counts: nothing configured, each library left to its
# default (what a user gets), with no thread variables in the worker's environment.
DEFAULT_THREADS = "default"
# Issue 17's claim, read off a --contention run: fastgru at its default thread setting takes at most
# this multiple of its 1-thread time under contention.
CONTENTION_TARGET = 1.15


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


# --------------------------------------------------------------------------------- timing
class Policy:
    def __init__(self, min_repeats=5, target_seconds=0.5, cell_budget=20.0, busy_retries=1, spinners=0):
        self.min_repeats = int(min_repeats)
        self.target_seconds = float(target_seconds)
        self.cell_budget = float(cell_budget)
        self.busy_retries = int(busy_retries)
        self.spinners = int(spinners)  # busy processes beside each cell (--contention); not in as_dict

    def repeats(self, t_run):
        """Timed runs for a cell whose run takes t_run seconds (the same rule as onednn_gru.cpp)."""
        n = max(self.min_repeats, math.ceil(self.target_seconds / max(t_run, 1e-9)))
        n = min(n, 100000)
        if self.min_repeats * t_run > self.cell_budget:
            n = max(1, int(self.cell_budget / t_run))
        return n

    def as_dict(self):
        return {"min_repeats": self.min_repeats, "target_seconds": self.target_seconds,
                "cell_budget_seconds": self.cell_budget, "busy_retries": self.busy_retries}


def cpu_snapshot(spinners=None):
    """(machine busy seconds, steal seconds, this process's CPU seconds, its spinners' CPU seconds),
    from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq (guest is inside user)
    steal = v[7] if len(v) > 7 else 0
    return busy / tick, steal / tick, time.process_time(), spinners.cpu_seconds() if spinners else 0.0


def contention(before, after, wall, spinners=0):
    """Share of the machine's CPUs that others (other processes, the hypervisor) used meanwhile.
    The spinners of a --contention run are not others: their own share is reported apart."""
    if before is None or after is None or wall <= 0:
        return {}
    ncpu = os.cpu_count() or 1
    spun = after[3] - before[3]
    foreign = max(0.0, (after[0] - before[0]) - (after[2] - before[2]) - spun)
    share = {"foreign_cpu_share": foreign / (wall * ncpu), "steal_share": (after[1] - before[1]) / (wall * ncpu)}
    if spinners:
        share.update(spinners=spinners, spinner_cpu_share=spun / (wall * ncpu))
    return share


def measure(run, policy, prep=None, before_first=None, after_first=None):
    """Times run(); returns times in seconds of the timed runs and warm-up facts.

    prep() runs before every call, outside the timer. The first warm-up call's result goes to
    after_first (the correctness check). Results are released only after the timer stopped.
    policy.spinners busy processes run beside, from before the first warm-up run to after the last
    timed run.
    """
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with busy_cpus(policy.spinners) as spinners:  # none unless --contention
            warm, spent, t_last = 0, 0.0, 0.0
            while warm < 1 or (warm < 2 and t_last < 1.0) or spent < WARMUP_SECONDS:
                if warm == 0 and before_first is not None:
                    before_first()
                if prep is not None:
                    prep()
                t0 = time.perf_counter()
                out = run()
                t_last = time.perf_counter() - t0
                spent += t_last
                if warm == 0 and after_first is not None:
                    after_first(out)
                del out
                warm += 1
            n = policy.repeats(t_last)
            best = None
            for attempt in range(1 + max(0, policy.busy_retries)):
                # The timed runs; redone (up to busy_retries times) when others used more than
                # BUSY_THRESHOLD of the CPUs meanwhile, keeping the least disturbed attempt. The
                # choice looks only at the contention measure, never at the times.
                times = []
                snap0, w0 = cpu_snapshot(spinners), time.perf_counter()
                for _ in range(n):
                    if prep is not None:
                        prep()
                    t0 = time.perf_counter()
                    out = run()
                    t1 = time.perf_counter()
                    del out
                    times.append(t1 - t0)
                busy = contention(snap0, cpu_snapshot(spinners), time.perf_counter() - w0,
                                  policy.spinners)
                share = busy.get("foreign_cpu_share", 0.0) + busy.get("steal_share", 0.0)
                if best is None or share < best[0]:
                    best = (share, times, busy)
                if share <= BUSY_THRESHOLD:
                    break
            busy = dict(best[2], attempts=attempt + 1)
            times = best[1]
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"times_s": times, "warmup_runs": warm, "warmup_s": spent, "contention": busy}


def rel_err(a, ref):
    a = np.asarray(a, dtype=np.float64).reshape(np.shape(ref))
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(a - ref)) / max(float(np.max(np.abs(ref))), 1e-12))


# --------------------------------------------------------------------------------- data
def shape_id(s):
    return f"T{s['T']}_B{s['B']}_I{s['I']}_H{s['H']}"


def flop_forward(s):
    return 2.0 * s["T"] * s["B"] * 3 * s["H"] * (s["I"] + s["H"])


def make_data(directory: Path, T, B, I, H, seed, with_backward=True):
    """Writes one problem's arrays (raw float32) and the float64 reference results."""
    from fastgru import reference

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, T, B, I, H])
    bound = 1.0 / math.sqrt(H)
    arrays = {
        "x": rng.uniform(-1, 1, (T, B, I)),
        "h0": rng.uniform(-1, 1, (B, H)),
        "dy": rng.standard_normal((T, B, H)),
        "w_ih": rng.uniform(-bound, bound, (3 * H, I)),
        "w_hh": rng.uniform(-bound, bound, (3 * H, H)),
        "b_ih": rng.uniform(-bound, bound, (3 * H,)),
        "b_hh": rng.uniform(-bound, bound, (3 * H,)),
    }
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    for name, a in arrays.items():
        a.tofile(directory / f"{name}.f32")
    a64 = {k: v.astype(np.float64) for k, v in arrays.items()}
    for conv in CONVENTIONS:
        y, _, cache = reference.gru_forward(a64["x"], a64["h0"], a64["w_ih"], a64["w_hh"], a64["b_ih"],
                                            a64["b_hh"], reset_after=(conv == "reset_after"))
        np.save(directory / f"ref_y_{conv}.npy", y.astype(np.float32))
        if with_backward:
            g = reference.gru_backward(cache, a64["dy"])
            for key, name in (("dx", "dx"), ("dh0", "dh0"), ("weight_hh", "dw_hh")):
                np.save(directory / f"ref_{name}_{conv}.npy", g[key].astype(np.float32))
        del cache


def load_data(directory: Path, T, B, I, H):
    shapes = {"x": (T, B, I), "h0": (B, H), "dy": (T, B, H), "w_ih": (3 * H, I), "w_hh": (3 * H, H),
              "b_ih": (3 * H,), "b_hh": (3 * H,)}
    return {k: np.fromfile(directory / f"{k}.f32", dtype=np.float32).reshape(v) for k, v in shapes.items()}


def load_ref(directory: Path, name, conv):
    return np.load(directory / f"ref_{name}_{conv}.npy")


def torch_state(d):
    return {"weight_ih_l0": d["w_ih"], "weight_hh_l0": d["w_hh"], "bias_ih_l0": d["b_ih"], "bias_hh_l0": d["b_hh"]}


# --------------------------------------------------------------------------------- workers
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


def cell_record(impl, threads, s, conv, mode, m, check):
    return {"impl": impl, "threads": threads, **{k: s[k] for k in "TBIH"}, "convention": conv, "mode": mode,
            "times_ms": [t * 1e3 for t in m["times_s"]], "median_ms": statistics.median(m["times_s"]) * 1e3,
            "repeats": len(m["times_s"]), "warmup_runs": m["warmup_runs"], "warmup_ms": m["warmup_s"] * 1e3,
            "contention": m.get("contention", {}), "check": check}


def report_cell(rec):
    n = rec["repeats"]
    errs = ", ".join(f"{k} {v:.1e}" for k, v in rec["check"].items())
    busy = rec["contention"].get("foreign_cpu_share")
    busy = f"; others used {100 * busy:.0f}% of the CPUs" if busy is not None and busy > BUSY_THRESHOLD else ""
    log(f"  [{rec['threads']} thr] {rec['impl']:<11} {rec['T']}x{rec['B']}x{rec['I']}x{rec['H']} "
        f"{rec['convention']:<12} {rec['mode']:<9} {rec['median_ms']:10.3f} ms  (n={n}; check {errs}{busy})")


def worker_fastgru(plan, threads, policy):
    fastgru = import_fastgru()
    info = {"version": getattr(fastgru, "__version__", None), "file": fastgru.__file__,
            "has_set_num_threads": hasattr(fastgru, "set_num_threads"), "build": fastgru_build_id(fastgru)}
    if hasattr(fastgru, "set_num_threads"):
        fastgru.set_num_threads(0 if threads == DEFAULT_THREADS else threads)  # 0: the usable CPUs, capped by OpenMP's setting
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
            layer = fastgru.GRU(s["I"], s["H"], reset_after=(conv == "reset_after"), dtype="float32")
            layer.load_state_dict(torch_state(d))
            check = {}

            def check_inf(out, conv=conv):
                check["y"] = rel_err(out[0], load_ref(ddir, "y", conv))

            m = measure(lambda: layer(x, h0), policy, after_first=check_inf)
            cells.append(cell_record("fastgru", threads, s, conv, "inference", m, dict(check)))
            report_cell(cells[-1])

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


def worker_torch(plan, threads, policy):
    import torch

    if threads != DEFAULT_THREADS:
        torch.set_num_threads(threads)
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


def ort_session(model_bytes, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 0 if threads == DEFAULT_THREADS else threads  # 0: ORT's default
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def worker_onnxruntime(plan, threads, policy):
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


def worker_matmul(plan, threads, policy):
    """float32 square matrix-product rates at this thread count: NumPy's BLAS and PyTorch's GEMM,
    for each size in plan["matmul_sizes"] (oneDNN's sgemm is timed by the C++ peer)."""
    rng = np.random.default_rng(0)
    out = {"rates": []}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        limiter = threadpool_limits(limits=None if threads == DEFAULT_THREADS else threads)
        out["blas"] = threadpool_info()
    except ImportError:
        limiter = None
        out["blas"] = "threadpoolctl not installed; OMP/OPENBLAS/MKL_NUM_THREADS set in the environment"

    def rate(lib, n, fn):
        m = measure(fn, policy)
        med = statistics.median(m["times_s"])
        out["rates"].append({"lib": lib, "n": n, "median_ms": med * 1e3, "gflops": 2.0 * n**3 / med / 1e9,
                             "repeats": len(m["times_s"]), "times_ms": [t * 1e3 for t in m["times_s"]],
                             "contention": m["contention"]})
        log(f"  [{threads} thr] matmul {n}^3 float32 {lib:<6} {out['rates'][-1]['gflops']:7.1f} GFLOP/s")

    mats = {n: (rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32))
            for n in plan["matmul_sizes"]}
    for n, (a, b) in mats.items():
        rate("numpy", n, lambda: a @ b)
    if limiter is not None:
        limiter.restore_original_limits()
    try:
        import torch

        if threads != DEFAULT_THREADS:
            torch.set_num_threads(threads)
        for n, (a, b) in mats.items():
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            rate("torch", n, lambda: ta @ tb)
    except ImportError:
        pass
    return out


def run_onednn_gemm(build, plan, threads, policy, env):
    rates = []
    for n in plan["matmul_sizes"]:
        cmd = [build["exe"], "--gemm", str(n), "--threads", onednn_threads(threads),
               "--min-repeats", str(policy.min_repeats),
               "--target-seconds", str(policy.target_seconds), "--cell-budget", str(policy.cell_budget),
               "--busy-retries", str(policy.busy_retries), "--busy-threshold", str(BUSY_THRESHOLD)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            log(f"  oneDNN sgemm {n} failed: {r.stderr.strip()}")
            continue
        g = json.loads(r.stdout)
        rates.append({"lib": "onednn", "n": n, "median_ms": g["median_ms"], "gflops": g["gflops"],
                      "repeats": g["repeats"], "contention": g["contention"]})
        log(f"  [{threads} thr] matmul {n}^3 float32 onednn {g['gflops']:7.1f} GFLOP/s")
    return rates


def matmul_basis(mm, basis):
    """The rate the % column divides by: the best measured (default) or NumPy's at 1024^3."""
    rates = mm.get("rates", [])
    if basis == "numpy1024":
        rates = [r for r in rates if r["lib"] == "numpy" and r["n"] == 1024]
    return max(rates, key=lambda r: r["gflops"]) if rates else None


# ---- the streaming step: one step at a time from Python, B=1, steps chained through h
def stream_check(h_last, ddir, conv):
    return rel_err(np.asarray(h_last).reshape(-1), load_ref(ddir, "y", conv)[-1].reshape(-1))


def stream_measure(step, xs, h_init, policy, ddir, conv):
    """Times blocks of len(xs) chained steps; returns µs per step (block time / steps) per block."""
    K = len(xs)

    def block():
        h = h_init
        for t in range(K):
            h = step(xs[t], h)
        return h

    check = {}

    def after_first(h):
        check["h_last"] = stream_check(h, ddir, conv)

    m = measure(block, policy, after_first=after_first)
    per_step = [t / K * 1e6 for t in m["times_s"]]
    return {"times_us": per_step, "median_us": statistics.median(per_step), "blocks": len(per_step),
            "steps_per_block": K, "warmup_runs": m["warmup_runs"], "contention": m["contention"], "check": check}


def fastgru_step_function(layer, xs, h0, ddir, conv):
    """The fastest honest way to run one step with this fastgru: GRU.step if it exists (trying
    the plausible call forms and keeping the first that reproduces the reference), else layer()
    with T=1. Returns (step, xs_in_its_form, h0_in_its_form, description)."""
    B, I = xs.shape[1], xs.shape[2]
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
            if err > CHECK_TOLERANCE:
                notes.append(f"{desc}: relative error {err:.2e}")
                continue
            return step, xin, hin, desc, notes
        except Exception as e:  # noqa: BLE001 - try the next form
            notes.append(f"{desc}: {type(e).__name__}: {e}")
    raise RuntimeError("no working fastgru step form: " + "; ".join(notes))


def worker_stream(plan, threads, policy, impl):
    st = plan["stream"]
    ddir = Path(plan["data"]) / "stream"
    K, B, I, H = st["steps_per_block"], st["B"], st["I"], st["H"]
    d = load_data(ddir, K, B, I, H)
    xs, h0 = d["x"], d["h0"]
    results, info = [], {}
    if impl == "fastgru":
        fastgru = import_fastgru()
        if hasattr(fastgru, "set_num_threads"):
            fastgru.set_num_threads(0 if threads == DEFAULT_THREADS else threads)
        for conv in CONVENTIONS:
            layer = fastgru.GRU(I, H, reset_after=(conv == "reset_after"), dtype="float32")
            layer.load_state_dict(torch_state(d))
            step, xin, hin, desc, notes = fastgru_step_function(layer, xs, h0, ddir, conv)
            r = stream_measure(step, xin, hin, policy, ddir, conv)
            results.append({"impl": impl, "convention": conv, "api": desc, "api_notes": notes, **r})
    elif impl == "torch":
        import torch

        if threads != DEFAULT_THREADS:
            torch.set_num_threads(threads)
        info["version"] = torch.__version__
        cell = torch.nn.GRUCell(I, H)
        cell.load_state_dict({k[:-3]: torch.from_numpy(v.copy()) for k, v in torch_state(d).items()})
        txs = [torch.from_numpy(xs[t]) for t in range(K)]
        with torch.inference_mode():
            r = stream_measure(lambda x, h: cell(x, h), txs, torch.from_numpy(h0.copy()), policy, ddir,
                               "reset_after")
        results.append({"impl": impl, "convention": "reset_after", "api": "torch.nn.GRUCell(x_t, h) under "
                        "torch.inference_mode", **r})
    elif impl == "onnxruntime":
        import onnxruntime as ort

        info["version"] = ort.__version__
        for conv in CONVENTIONS:
            sess = ort_session(onnx_gru_model(I, H, d, conv == "reset_after"), threads)
            xin = [np.ascontiguousarray(xs[t:t + 1]) for t in range(K)]
            r = stream_measure(lambda x, h: sess.run(["Y_h"], {"X": x, "initial_h": h})[0], xin,
                               h0[np.newaxis].copy(), policy, ddir, conv)
            results.append({"impl": impl, "convention": conv, "api": "InferenceSession.run with T=1", **r})
            del sess
            gc.collect()
    for r in results:
        log(f"  [{threads} thr] stream {r['impl']:<11} {r['convention']:<12} {r['median_us']:9.2f} us/step "
            f"(blocks={r['blocks']}x{r['steps_per_block']}; check {r['check']['h_last']:.1e})")
    return {"stream": results, "impl_info": info}


def worker_main(args):
    plan = json.loads(Path(args.plan).read_text())
    pol = plan["policy"]
    # The matrix-product rates are the quiet machine's, the basis of % mm: no spinners beside them.
    spinners = 0 if args.worker == "matmul" else plan["spinners"]
    policy = Policy(pol["min_repeats"], pol["target_seconds"], pol["cell_budget_seconds"], pol["busy_retries"],
                    spinners)
    threads = args.threads_one
    if args.worker == "matmul":
        out = worker_matmul(plan, threads, policy)
    elif args.worker.startswith("stream-"):
        out = worker_stream(plan, threads, policy, args.worker[len("stream-"):])
    else:
        out = {"fastgru": worker_fastgru, "torch": worker_torch, "onnxruntime": worker_onnxruntime}[args.worker](
            plan, threads, policy)
    Path(args.result).write_text(json.dumps(out))


# --------------------------------------------------------------------------------- oneDNN
def find_onednn():
    """(include_dir, lib_dir) of a oneDNN with dnnl.hpp and libdnnl.so, or None."""
    prefixes = [os.environ.get("DNNL_ROOT"), sys.prefix, os.environ.get("VIRTUAL_ENV"), "/usr/local", "/usr"]
    for p in prefixes:
        if not p:
            continue
        inc = Path(p) / "include"
        if not (inc / "oneapi" / "dnnl" / "dnnl.hpp").is_file():
            continue
        for lib in ("lib", "lib64", "lib/x86_64-linux-gnu"):
            if (Path(p) / lib / "libdnnl.so").exists():
                return str(inc), str(Path(p) / lib)
    return None


def build_onednn(out_dir: Path):
    found = find_onednn()
    if found is None:
        return None, ("oneDNN skipped: no include/oneapi/dnnl/dnnl.hpp + lib/libdnnl.so under $DNNL_ROOT, "
                      f"{sys.prefix}, /usr/local or /usr (pip install onednn-cpu-gomp==2023.2.0 "
                      "onednn-devel-cpu-gomp==2023.2.0)")
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return None, f"oneDNN skipped: no C++ compiler ({cxx})"
    inc, lib = found
    src = HERE / "onednn_gru.cpp"
    exe = out_dir / "onednn_gru"
    cmd = [cxx, "-O2", "-std=c++17", "-fopenmp", f"-I{inc}", str(src), "-o", str(exe), f"-L{lib}", "-ldnnl",
           f"-Wl,-rpath,{lib}"]
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        log("compiling oneDNN peer: " + " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return None, "oneDNN skipped: compile failed:\n" + r.stderr[-3000:]
    return {"exe": str(exe), "include": inc, "lib": lib, "compile": " ".join(cmd)}, None


def onednn_threads(threads):
    return "0" if threads == DEFAULT_THREADS else str(threads)  # 0: the program leaves OpenMP's default


def run_onednn(build, plan, threads, policy, env):
    cells, info = [], {}
    for s in plan["sequences"]:
        ddir = Path(plan["data"]) / shape_id(s)
        # The program times four cells; under --contention the spinners run beside all of it.
        with tempfile.TemporaryDirectory(prefix="onednn_dump_") as dump, busy_cpus(policy.spinners) as spinners:
            cmd = [build["exe"], "--T", str(s["T"]), "--B", str(s["B"]), "--I", str(s["I"]), "--H", str(s["H"]),
                   "--threads", onednn_threads(threads), "--data", str(ddir), "--dump", dump,
                   "--min-repeats", str(policy.min_repeats), "--target-seconds", str(policy.target_seconds),
                   "--cell-budget", str(policy.cell_budget), "--busy-retries", str(policy.busy_retries),
                   "--busy-threshold", str(BUSY_THRESHOLD)]
            if spinners.pids:
                cmd += ["--spinner-pids", ",".join(str(pid) for pid in spinners.pids)]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                log(f"  oneDNN failed for {shape_id(s)}: {r.stderr.strip()}")
                info.setdefault("errors", []).append(f"{shape_id(s)}: {r.stderr.strip()}")
                continue
            out = json.loads(r.stdout)
            info = {k: v for k, v in out.items() if k != "cells"}
            for c in out["cells"]:
                conv, mode = c["convention"], c["mode"]
                check = {}
                T, B, I, H = s["T"], s["B"], s["I"], s["H"]
                if mode == "inference":
                    check["y"] = rel_err(np.fromfile(f"{dump}/y_{conv}.f32", np.float32),
                                         load_ref(ddir, "y", conv))
                else:
                    check["dx"] = rel_err(np.fromfile(f"{dump}/dx_{conv}.f32", np.float32), load_ref(ddir, "dx", conv))
                    check["dh0"] = rel_err(np.fromfile(f"{dump}/dh0_{conv}.f32", np.float32),
                                           load_ref(ddir, "dh0", conv))
                    check["dw_hh"] = rel_err(np.fromfile(f"{dump}/dw_hh_{conv}.f32", np.float32),
                                             load_ref(ddir, "dw_hh", conv))
                m = {"times_s": [t / 1e3 for t in c["times_ms"]], "warmup_runs": c["warmup_runs"],
                     "warmup_s": c["warmup_ms"] / 1e3, "contention": c.get("contention", {})}
                cells.append(cell_record("onednn", threads, s, conv, mode, m, check))
                report_cell(cells[-1])
    return {"cells": cells, "impl_info": info}


# --------------------------------------------------------------------------------- driver
def thread_env(threads):
    """The environment of a worker: the thread variables set to the count, or removed for the
    default setting (a user who configured nothing)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        if threads == DEFAULT_THREADS:
            env.pop(var, None)
        else:
            env[var] = str(threads)
    return env


def run_worker(name, threads, plan_path, tmp: Path, extra_path=None):
    result = tmp / f"result_{name}_{threads}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--threads-one", str(threads),
           "--plan", str(plan_path), "--result", str(result)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=thread_env(threads))
    if r.returncode != 0 or not result.exists():
        log(f"  worker {name} ({thread_label(threads)}) failed with exit status {r.returncode}")
        return None, f"{name} at {thread_label(threads)} failed (exit status {r.returncode})"
    log(f"  worker {name} ({thread_label(threads)}) done in {time.perf_counter() - t0:.1f} s")
    return json.loads(result.read_text()), None


def available(impl):
    mod = {"fastgru": "fastgru", "torch": "torch", "onnxruntime": "onnxruntime"}.get(impl)
    if mod is None:
        return True
    import importlib.util

    if impl == "onnxruntime":
        return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
    return importlib.util.find_spec(mod) is not None


def machine_info():
    info = {"platform": platform.platform(), "machine": platform.machine(), "python": sys.version.split()[0],
            "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["isa_flags"] = sorted(f for f in flags if f.startswith(("avx", "fma", "sse4", "amx")))
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total"] = line.split(":", 1)[1].strip()
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    try:
        info["git_head"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                          text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        info["git_dirty"] = bool(dirty)
    except OSError:
        pass
    info["numpy"] = np.__version__
    return info


def busy(rec):
    c = rec.get("contention") or {}
    return c.get("foreign_cpu_share", 0.0) > BUSY_THRESHOLD or c.get("steal_share", 0.0) > BUSY_THRESHOLD


def fmt_ms(v):
    if v is None:
        return "—"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def build_tables(results):
    """The report as Markdown: one sequence table per thread setting, then the streaming step, then
    (--contention) the contention section."""
    cells = results["cells"]
    by_key = {(c["impl"], c["threads"], c["T"], c["B"], c["I"], c["H"], c["convention"], c["mode"]): c for c in cells}
    peers = [p for p in ("torch", "onnxruntime", "onednn") if any(c["impl"] == p for c in cells)]
    contended = "contention" in results["settings"]
    under = ", under contention" if contended else ""
    besides = " besides the spinners" if contended else ""
    lines = []
    budget_note = busy_note = False
    for threads in results["settings"]["threads"]:
        mm = results["matmul"].get(str(threads), {})
        base = matmul_basis(mm, results["settings"]["matmul_basis"])
        lines.append(f"### {thread_label(threads)}{under}")
        lines.append("")
        if base:
            all_rates = ", ".join(f"{LABELS.get(r['lib'], r['lib']) if r['lib'] != 'numpy' else 'NumPy'} "
                                  f"{r['n']}³ {r['gflops']:.0f}{'†' if busy(r) else ''}"
                                  for r in mm.get("rates", []))
            busy_note = busy_note or any(busy(r) for r in mm.get("rates", []))
            lines.append(f"float32 matrix product, GFLOP/s: {all_rates}. "
                         f"**% mm divides by {base['gflops']:.0f} GFLOP/s** "
                         f"({'NumPy' if base['lib'] == 'numpy' else LABELS[base['lib']]} {base['n']}³)"
                         f"{' (measured without spinners)' if contended else ''}.")
        lines.append("")
        head = ["T", "B", "I", "H", "conv", "mode", "fastgru ms", "GFLOP/s", "% mm"]
        for p in peers:
            head += [f"{LABELS[p]} ms", "GFLOP/s", "×"]
        head.append("check")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---:" if i < 4 or (i > 5 and i < len(head) - 1) else "---"
                                    for i in range(len(head))) + "|")
        for s in results["settings"]["sequences"]:
            for conv in CONVENTIONS:
                for mode in MODES:
                    key = (threads, s["T"], s["B"], s["I"], s["H"], conv, mode)
                    fg = by_key.get(("fastgru",) + key)
                    row = [str(s[k]) for k in "TBIH"] + ["after" if conv == "reset_after" else "before", mode]
                    bad = []

                    def ms(c):
                        nonlocal budget_note, busy_note
                        if c is None:
                            return "—"
                        mark = ""
                        if busy(c):
                            mark += "†"
                            busy_note = True
                        if c["repeats"] < results["settings"]["policy"]["min_repeats"]:
                            mark += f" (n={c['repeats']})"
                            budget_note = True
                        return fmt_ms(c["median_ms"]) + mark

                    if fg:
                        row += [ms(fg), f"{fg['gflops']:.1f}",
                                f"{fg['pct_matmul']:.0f}%" if fg.get("pct_matmul") is not None else "—"]
                        if not fg["check_ok"]:
                            bad.append("fastgru")
                    else:
                        row += ["—", "—", "—"]
                    any_peer = False
                    for p in peers:
                        c = by_key.get((p,) + key)
                        if c is None:
                            row += ["—", "—", "—"]
                            continue
                        any_peer = True
                        ratio = f"{c['median_ms'] / fg['median_ms']:.2f}" if fg else "—"
                        row += [ms(c), f"{c['gflops']:.1f}", ratio]
                        if not c["check_ok"]:
                            bad.append(LABELS[p])
                    if fg is None and not any_peer:
                        continue
                    row.append("ok" if not bad else "FAIL: " + ", ".join(bad))
                    lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if busy_note:
        lines.append(f"†: while this cell's timed runs ran, other processes{besides} (or the hypervisor) used more "
                     f"than {100 * BUSY_THRESHOLD:.0f}% of the machine's CPUs; its time is suspect (share per cell in "
                     f"the JSON, `contention`). Rerun on a quiet machine.")
        lines.append("")
    if budget_note:
        lines.append(f"(n=k): only k timed runs fitted in the per-cell budget of "
                     f"{results['settings']['policy']['cell_budget_seconds']:g} s (see README).")
        lines.append("")
    st = results["settings"]["stream"]
    for threads in dict.fromkeys(r.get("threads", st["threads"]) for r in results["stream"]):
        stream = [r for r in results["stream"] if r.get("threads", st["threads"]) == threads]
        lines.append(f"### Streaming step from Python (B={st['B']}, I={st['I']}, H={st['H']}, "
                     f"{thread_label(threads)}, {st['steps_per_block']} chained steps per timed block){under}")
        lines.append("")
        lines.append("| implementation | conv | call | µs / step | × (vs fastgru, same conv) | check |")
        lines.append("|---|---|---|---:|---:|---|")
        fg = {r["convention"]: r for r in stream if r["impl"] == "fastgru"}
        busy_stream = False
        for r in stream:
            base = fg.get(r["convention"])
            ratio = f"{r['median_us'] / base['median_us']:.2f}" if base else "—"
            ok = "ok" if r["check"]["h_last"] <= CHECK_TOLERANCE else f"FAIL ({r['check']['h_last']:.1e})"
            mark = "†" if busy(r) else ""
            busy_stream = busy_stream or bool(mark)
            lines.append(f"| {LABELS[r['impl']]} | {'after' if r['convention'] == 'reset_after' else 'before'} | "
                         f"{r['api']} | {r['median_us']:.1f}{mark} | {ratio} | {ok} |")
        lines.append("")
        if busy_stream:
            lines.append(f"†: others{besides} used more than "
                         f"{100 * BUSY_THRESHOLD:.0f}% of the CPUs meanwhile; suspect.")
            lines.append("")
    if contended:
        lines += contention_section(results)
    return "\n".join(lines)


def contention_section(results):
    """Issue 17's reading of a --contention run: per cell, fastgru at its default thread setting
    against its own 1-thread time, and each peer at its default setting against fastgru's."""
    spinners = results["settings"]["contention"]["spinners"]
    explicit = [t for t in results["settings"]["threads"] if t != DEFAULT_THREADS]
    cells = {(c["impl"], c["threads"], c["T"], c["B"], c["I"], c["H"], c["convention"], c["mode"]): c
             for c in results["cells"]}
    stream = {(r["impl"], r["threads"], r["convention"]): r for r in results["stream"]}

    def peers_in(keys):
        return [p for p in ("torch", "onnxruntime", "onednn") if any(key[:2] == (p, DEFAULT_THREADS) for key in keys)]

    peers = peers_in(list(cells) + list(stream))
    within, ahead = [], {p: [] for p in peers}  # (ratio, which cell, whether a time is †) per comparison

    def timed(record, value, fmt):
        return "—" if record is None else fmt(record[value]) + ("†" if busy(record) else "")

    def row(columns, settings, peers, get, value, fmt, label):
        default = get("fastgru", DEFAULT_THREADS)
        one = get("fastgru", 1)
        columns = list(columns) + [timed(get("fastgru", t), value, fmt) for t in settings + [DEFAULT_THREADS]]
        if default and one:
            ratio = default[value] / one[value]
            within.append((ratio, label, busy(default) or busy(one)))
            columns.append(f"{ratio:.2f} {'✓' if ratio <= CONTENTION_TARGET else '✗'}")
        else:
            columns.append("—")
        for p in peers:
            peer = get(p, DEFAULT_THREADS)
            columns.append(timed(peer, value, fmt))
            if peer and default:
                ahead[p].append((peer[value] / default[value], label, busy(peer) or busy(default)))
                columns.append(f"{ahead[p][-1][0]:.2f}")
            else:
                columns.append("—")
        return "| " + " | ".join(columns) + " |"

    def head(first, settings, peers, unit):
        names = first + [f"fastgru {thread_label(t)} {unit}" for t in settings] + [f"fastgru default {unit}"]
        names.append("default / 1 thread")
        for p in peers:
            names += [f"{LABELS[p]} default {unit}", "×"]
        return ["| " + " | ".join(names) + " |",
                "|" + "|".join("---" if name in ("conv", "mode") else "---:" for name in names) + "|"]

    def default_info(impl):
        return results["impl_info"].get(impl, {}).get(DEFAULT_THREADS, {})

    resolved = [f"fastgru {default_info('fastgru').get('info', {}).get('threads', '?')} "
                f"(set_num_threads(0): the usable CPUs)"]
    if "torch" in peers:
        resolved.append(f"PyTorch {default_info('torch').get('num_threads', '?')} (torch's own default)")
    if "onnxruntime" in peers:
        resolved.append("ONNX Runtime intra_op_num_threads = 0 (its own choice)")
    if "onednn" in peers:
        resolved.append(f"oneDNN {default_info('onednn').get('omp_max_threads', '?')} (OpenMP's default)")
    lines = [f"## Under contention: {spinners} busy processes (one per usable CPU) beside every cell", "",
             f"Every cell and streaming time in this report was measured with {spinners} spinners running beside "
             f"it (the matrix-product rates without). "
             f"`default`: no thread variable in the worker's environment and no thread count set, giving "
             f"{'; '.join(resolved)}. default / 1 thread: fastgru's default time over its 1-thread time (target "
             f"≤ {CONTENTION_TARGET}, ✓); ×: the peer's default time over fastgru's default time (above 1: "
             f"fastgru faster).", ""]
    sequence_peers = peers_in(cells)
    lines += head(["T", "B", "I", "H", "conv", "mode"], explicit, sequence_peers, "ms")
    for s in results["settings"]["sequences"]:
        for conv in CONVENTIONS:
            for mode in MODES:
                key = (s["T"], s["B"], s["I"], s["H"], conv, mode)
                measured = [("fastgru", t) for t in explicit + [DEFAULT_THREADS]]
                if not any((impl, t) + key in cells
                           for impl, t in measured + [(p, DEFAULT_THREADS) for p in sequence_peers]):
                    continue
                after = "after" if conv == "reset_after" else "before"
                lines.append(row([str(s[k]) for k in "TBIH"] + [after, mode], explicit, sequence_peers,
                                 lambda impl, t, key=key: cells.get((impl, t) + key), "median_ms", fmt_ms,
                                 f"T={s['T']} B={s['B']} I={s['I']} H={s['H']} {after} {mode}"))
    lines.append("")
    stream_settings = [t for t in results["settings"]["contention"]["stream_threads"] if t != DEFAULT_THREADS]
    if stream:
        lines.append("Streaming step (B = 1, one step at a time), µs per step:")
        lines.append("")
        stream_peers = peers_in(stream)
        lines += head(["conv"], stream_settings, stream_peers, "µs")
        for conv in CONVENTIONS:
            after = "after" if conv == "reset_after" else "before"
            lines.append(row([after], stream_settings, stream_peers,
                             lambda impl, t, conv=conv: stream.get((impl, t, conv)), "median_us",
                             lambda v: f"{v:.1f}", f"streaming {after}"))
        lines.append("")

    def suspect(comparisons):
        count = sum(marked for *_, marked in comparisons)
        if not count:
            return ""
        return f"; {count} of the {len(comparisons)} comparisons {'uses' if count == 1 else 'use'} a † time"

    if within:
        worst = max(within)
        lines.append(f"- fastgru default ≤ {CONTENTION_TARGET}× its 1-thread time in "
                     f"{sum(r <= CONTENTION_TARGET for r, *_ in within)} of {len(within)} cells "
                     f"(worst {worst[0]:.2f}×: {worst[1]}{suspect(within)}).")
    for p in peers:
        if ahead[p]:
            least = min(ahead[p])
            lines.append(f"- fastgru default ahead of {LABELS[p]} default in {sum(r > 1 for r, *_ in ahead[p])} of "
                         f"{len(ahead[p])} cells (smallest ×: {least[0]:.2f}, {least[1]}{suspect(ahead[p])}).")
    shares = [r["contention"]["spinner_cpu_share"] for r in results["cells"] + results["stream"]
              if "spinner_cpu_share" in r.get("contention", {})]
    if shares:
        lines.append(f"- The spinners used {100 * statistics.median(shares):.0f}% of the machine's CPUs during the "
                     f"timed runs (median over cells; {100 * min(shares):.0f}–{100 * max(shares):.0f}%).")
    lines.append("")
    return lines


def make_plot(results, path: Path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter, NullLocator
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    cells = results["cells"]
    threads_list = results["settings"]["threads"]
    series = sorted({(c["impl"], c["convention"]) for c in cells}, key=lambda k: (IMPLS.index(k[0]), k[1]))
    colors = {"fastgru": "tab:red", "torch": "tab:orange", "onnxruntime": "tab:green", "onednn": "tab:blue"}
    markers = {"reset_after": "o", "reset_before": "s"}
    rows = [(t, m) for t in threads_list for m in MODES]
    under = ", under contention" if "contention" in results["settings"] else ""
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 3.6 * len(rows)), squeeze=False)
    for r, (threads, mode) in enumerate(rows):
        base = matmul_basis(results["matmul"].get(str(threads), {}), results["settings"]["matmul_basis"])
        rate = base["gflops"] if base else None
        for col, var in enumerate(("H", "B")):
            ax = axes[r][col]
            for impl, conv in series:
                pts = sorted((c[var], c["gflops"], c) for c in cells if c["impl"] == impl and c["convention"] == conv
                             and c["threads"] == threads and c["mode"] == mode)
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none", marker=markers[conv],
                        color=colors[impl], alpha=0.85, markerfacecolor="none" if conv == "reset_before" else None,
                        label=f"{LABELS[impl]} ({'reset after' if conv == 'reset_after' else 'reset before'})")
            if rate:
                ax.axhline(rate, color="gray", linestyle="--", linewidth=1, label="matmul rate (% mm basis)")
            ax.set_xscale("log", base=2)
            xs = sorted({s[var] for s in results["settings"]["sequences"]})
            ax.set_xticks(xs)
            ax.set_xticklabels([str(v) for v in xs])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
            ax.tick_params(axis="y", which="minor", labelsize=7)
            ax.set_xlabel(var + (" (hidden units; I varies with it)" if var == "H" else " (batch)"))
            ax.set_ylabel("GFLOP/s (nominal)")
            ax.set_title(f"{mode}, {thread_label(threads)}{under}")
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    from fastgru.files import atomic_write  # the workers run this file as a script: no relative imports

    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="fastgru bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small 'quick' shape set (a smoke run)")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread settings: counts, or 'default' for each library's own default "
                         "(default: 1,<all cores>, and 'default' with --contention)")
    ap.add_argument("--out", default="bench-results", help="output directory (default ./bench-results)")
    ap.add_argument("--shapes", default=str(HERE / "shapes.json"), help="shape sets file")
    ap.add_argument("--set", default=None, help="shape set name in the shapes file (default full, or quick)")
    ap.add_argument("--impls", default=",".join(IMPLS), help="implementations to run (default all available)")
    ap.add_argument("--no-stream", action="store_true", help="skip the streaming-step measurement")
    ap.add_argument("--min-repeats", type=int, default=5)
    ap.add_argument("--target-seconds", type=float, default=0.5, help="aimed-for timed seconds per cell")
    ap.add_argument("--cell-budget", type=float, default=20.0,
                    help="seconds of timed runs a cell may take before it gets fewer than --min-repeats runs")
    ap.add_argument("--busy-retries", type=int, default=1,
                    help="times a cell's timed runs are redone when other processes used more than "
                         f"{100 * BUSY_THRESHOLD:.0f}%% of the CPUs meanwhile")
    ap.add_argument("--mm-basis", choices=("best", "numpy1024"), default="best",
                    help="what %% mm divides by: the best float32 matrix-product rate measured (NumPy, PyTorch, "
                         "oneDNN sgemm at every size of shapes.json's matmul_sizes; default) or NumPy's at 1024^3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--contention", action="store_true",
                    help="time every cell with one busy process per usable CPU running beside it (a shared "
                         "server), add the 'default' thread setting and report how fastgru's default copes")
    # internal: a measuring subprocess
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=thread_setting, help=argparse.SUPPRESS)
    ap.add_argument("--plan", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)

    t_start = time.perf_counter()
    shapes_doc = json.loads(Path(args.shapes).read_text())
    set_name = args.set or ("quick" if args.quick else "full")
    sset = shapes_doc["sets"][set_name]
    ncores = len(os.sched_getaffinity(0))
    if args.threads:
        threads_list = [thread_setting(t) for t in args.threads.split(",")]
    else:
        threads_list = sorted({1, ncores}) + ([DEFAULT_THREADS] if args.contention else [])
    spinners = ncores if args.contention else 0  # one per usable CPU
    impls = [i for i in args.impls.split(",") if i]
    policy = Policy(args.min_repeats, args.target_seconds, args.cell_budget, args.busy_retries, spinners)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = []

    for impl in list(impls):
        if impl not in IMPLS:
            sys.exit(f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}")
        if not available(impl):
            notes.append(f"{impl} skipped: not installed")
            impls.remove(impl)
    build = None
    if "onednn" in impls:
        build, note = build_onednn(out_dir)
        if build is None:
            notes.append(note)
            impls.remove("onednn")
    for n in notes:
        log("NOTE: " + n)

    tmp = Path(tempfile.mkdtemp(prefix="fastgru_bench_"))
    try:
        log(f"writing inputs and float64 reference results to {tmp} ...")
        t0 = time.perf_counter()
        for s in sset["sequences"]:
            make_data(tmp / shape_id(s), s["T"], s["B"], s["I"], s["H"], args.seed)
        st = sset.get("stream")
        if st and not args.no_stream:
            make_data(tmp / "stream", st["steps_per_block"], st["B"], st["I"], st["H"], args.seed,
                      with_backward=False)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
        plan = {"data": str(tmp), "sequences": sset["sequences"], "stream": st, "policy": policy.as_dict(),
                "matmul_sizes": shapes_doc.get("matmul_sizes", [1024]), "spinners": spinners}
        plan_path = tmp / "plan.json"
        plan_path.write_text(json.dumps(plan))

        results = {"machine": machine_info(), "settings": {
            "set": set_name, "threads": threads_list, "impls": impls, "sequences": sset["sequences"],
            "stream": st if not args.no_stream else None, "policy": policy.as_dict(), "seed": args.seed,
            "flop_model": shapes_doc.get("flop_model"), "check_tolerance": CHECK_TOLERANCE,
            "busy_threshold": BUSY_THRESHOLD, "matmul_sizes": plan["matmul_sizes"], "matmul_basis": args.mm_basis},
            "matmul": {}, "cells": [], "stream": [], "impl_info": {}, "notes": notes}
        # Under contention the streaming case runs at the default setting too (issue 17's claim).
        stream_threads = []
        if st and not args.no_stream:
            stream_threads = [st["threads"]] + ([DEFAULT_THREADS] if args.contention else [])
        if args.contention:
            results["settings"]["contention"] = {
                "spinners": spinners, "usable_cpus": ncores, "stream_threads": stream_threads,
                "spinner": "a Python busy loop per usable CPU, started before each cell's warm-up and killed "
                           "after its timed runs; the matrix-product rates are measured without them"}
        if build:
            results["impl_info"]["onednn_build"] = build
        for threads in threads_list:
            log(f"== {threads} thread(s){' under contention' if spinners else ''} ==")
            out, err = run_worker("matmul", threads, plan_path, tmp)
            if out:
                results["matmul"][str(threads)] = out
            else:
                notes.append(err)
                out = results["matmul"][str(threads)] = {"rates": []}
            if build:
                out["rates"] += run_onednn_gemm(build, plan, threads, policy, thread_env(threads))
            for impl in impls:
                if impl == "onednn":
                    out = run_onednn(build, plan, threads, policy, thread_env(threads))
                else:
                    out, err = run_worker(impl, threads, plan_path, tmp)
                    if out is None:
                        notes.append(err)
                        continue
                results["cells"] += out["cells"]
                results["impl_info"].setdefault(impl, {})[str(threads)] = out["impl_info"]
        for threads in stream_threads:
            log(f"== streaming step, {threads} thread(s){' under contention' if spinners else ''} ==")
            for impl in impls:
                if impl == "onednn":
                    continue
                out, err = run_worker(f"stream-{impl}", threads, plan_path, tmp)
                if out is None:
                    notes.append(err)
                    continue
                if args.contention:  # the streaming case has more than one thread setting then
                    for r in out["stream"]:
                        r["threads"] = threads
                results["stream"] += out["stream"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for c in results["cells"]:
        gflop = flop_forward(c) * (3 if c["mode"] == "train" else 1) / 1e9
        c["gflop"] = gflop
        c["gflops"] = gflop / (c["median_ms"] / 1e3)
        base = matmul_basis(results["matmul"].get(str(c["threads"]), {}), args.mm_basis)
        c["pct_matmul"] = 100.0 * c["gflops"] / base["gflops"] if base else None
        c["check_ok"] = all(v <= CHECK_TOLERANCE for v in c["check"].values()) and bool(c["check"])
    results["wall_seconds"] = time.perf_counter() - t_start

    table = build_tables(results)
    plot_note = make_plot(results, out_dir / "gru_gflops.png")
    if plot_note:
        notes.append(plot_note)
    fg_info = next(iter(results["impl_info"].get("fastgru", {}).values()), {})
    fg_build = fg_info.get("build", {})
    fg_desc = (f"fastgru {fg_info.get('version')} (core sha256 {fg_build.get('sha256', '?')}, built "
               f"{fg_build.get('mtime', '?')}; {fg_info.get('info', 'no fastgru.info()')}); " if fg_info else "")
    contention_note = (f"**under contention**: {spinners} busy processes ran beside every cell (see the last "
                       f"section); " if spinners else "")
    header = (f"fastgru benchmark — {results['machine'].get('cpu', '?')}, {ncores} usable cores, "
              f"{results['machine']['date']}, git {results['machine'].get('git_head', '?')[:10]}"
              f"{' (dirty)' if results['machine'].get('git_dirty') else ''}; {fg_desc}"
              f"set '{set_name}'; {contention_note}medians of timed runs after warm-up; "
              f"× = peer time / fastgru time (> 1: fastgru faster); GFLOP/s from the nominal count "
              f"2·T·B·3H·(I+H) per forward, ×3 for train.\n")
    text = header + "\n" + table + ("\nNotes:\n" + "\n".join("- " + n for n in notes) + "\n" if notes else "")
    print(text)
    from fastgru.files import atomic_write

    for name, content in (("results.md", text), ("results.json", json.dumps(results, indent=1))):
        with atomic_write(out_dir / name, "w") as handle:
            handle.write(content)
    log(f"wrote {out_dir / 'results.json'}, {out_dir / 'results.md'}"
        + ("" if plot_note else f", {out_dir / 'gru_gflops.png'}") + f" in {results['wall_seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
