"""``fastgru bench``: fastgru alone on the benchmark's grid, float32 (and its bf16 and int8
inference, ``GRU.quantize``), timed by the benchmark's rule.

The comparison with the peers (PyTorch, ONNX Runtime, oneDNN, OpenVINO, PyTorch's dynamic int8),
the streaming step and the contention measure need the peers' libraries and workers, which the
installed package does not carry: they are ``python bench/run.py`` in a checkout of fastgru's
source (bench/README.md). This command times what an installed fastgru holds, on the same shapes
(bench/shapes.json's sets; a test keeps the two equal), checking each cell against the float64
reference first.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time

import numpy as np

from .. import reference
from ..layers import GRU
from ..runtime import info, set_num_threads

# (T, B, I, H): T steps, batch B, I input features, H hidden units.
GRID = {
    "full": ((100, 1, 128, 128), (100, 1, 512, 512), (100, 8, 256, 256), (100, 32, 256, 256),
             (50, 64, 512, 512), (25, 128, 1024, 1024)),
    "quick": ((10, 1, 64, 64), (10, 4, 96, 128)),
}
# The benchmark's rule (bench/harness/timing.py): at least this many seconds of untimed runs, and
# at least 2 runs (1 when a run takes over a second), before the timed runs.
WARMUP_SECONDS = 0.25
# A cell counts as correct when max |y - reference| / max |reference| (or the same for dx) is below this.
CHECK_TOLERANCE = 1e-3
# A bf16 or int8 cell computes the same function when its outputs stay this close to float32's
# (bf16 keeps 8 significant bits, int8 a 1/127 step: their errors are 1e-3 to 1e-2).
QUANTIZED_CHECK_TOLERANCE = 0.05
PEERS_NOTE = ("The peers (PyTorch, ONNX Runtime, oneDNN, OpenVINO float32 and bf16, PyTorch dynamic int8), "
              "the streaming step and the runs under contention are not in the installed package: run "
              "`python bench/run.py` in a checkout of fastgru's source (see bench/README.md there).")


def timed_runs(t_run, min_repeats, target_seconds, cell_budget):
    """How many timed runs a cell whose run takes t_run seconds gets: enough for target_seconds and
    at least min_repeats, unless min_repeats runs would exceed cell_budget (then as many as fit)."""
    n = min(max(min_repeats, math.ceil(target_seconds / max(t_run, 1e-9))), 100000)
    if min_repeats * t_run > cell_budget:
        n = max(1, int(cell_budget / t_run))
    return n


def measure(run, min_repeats, target_seconds, cell_budget):
    """Warm-up, then timed runs each timed on its own with garbage collection paused; returns the
    first warm-up run's result and the times in seconds."""
    gc.collect()
    gc.disable()
    try:
        warm, spent, t_last, first = 0, 0.0, 0.0, None
        while warm < 1 or (warm < 2 and t_last < 1.0) or spent < WARMUP_SECONDS:
            start = time.perf_counter()
            out = run()
            t_last = time.perf_counter() - start
            spent += t_last
            if warm == 0:
                first = out
            del out
            warm += 1
        times = []
        for _ in range(timed_runs(t_last, min_repeats, target_seconds, cell_budget)):
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
            del out
    finally:
        gc.enable()
    return first, times


def relative_error(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    difference = np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected))
    return float(difference / max(float(np.max(np.abs(expected))), 1e-12))


def problem(T, B, I, H, seed):
    """The inputs and parameters of one shape, drawn as bench/run.py draws them (PyTorch's
    initialisation range for the parameters)."""
    rng = np.random.default_rng([seed, T, B, I, H])
    bound = 1.0 / math.sqrt(H)
    arrays = {"x": rng.uniform(-1, 1, (T, B, I)), "h0": rng.uniform(-1, 1, (B, H)),
              "dy": rng.standard_normal((T, B, H)), "w_ih": rng.uniform(-bound, bound, (3 * H, I)),
              "w_hh": rng.uniform(-bound, bound, (3 * H, H)), "b_ih": rng.uniform(-bound, bound, (3 * H,)),
              "b_hh": rng.uniform(-bound, bound, (3 * H,))}
    return {name: a.astype(np.float32) for name, a in arrays.items()}


def time_shape(shape, reset_after, d, policy):
    """(mode, median seconds, relative error) for inference (of y against the float64 reference),
    bf16 and int8 inference (of y against float32's) and training (of dx)."""
    T, B, I, H = shape
    layer = GRU(I, H, reset_after=reset_after, dtype="float32")
    layer.load_state_dict({"weight_ih_l0": d["w_ih"], "weight_hh_l0": d["w_hh"], "bias_ih_l0": d["b_ih"],
                           "bias_hh_l0": d["b_hh"]})
    p = {name: a.astype(np.float64) for name, a in d.items()}
    y_ref, _, cache = reference.gru_forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                            reset_after=reset_after)
    dx_ref = reference.gru_backward(cache, p["dy"])["dx"]
    del cache
    x, h0, dy = d["x"], d["h0"][np.newaxis], d["dy"]
    first, times = measure(lambda: layer(x, h0), *policy)
    rows = [("inference", statistics.median(times), relative_error(first[0], y_ref))]
    y_float = first[0]
    for mode in ("bf16", "int8"):
        quantized = layer.quantize(mode)
        first, times = measure(lambda: quantized(x, h0), *policy)
        rows.append((f"{mode} inference", statistics.median(times), relative_error(first[0], y_float)))

    def train():
        layer.forward(x, h0, train=True)
        return layer.backward(dy)

    layer.zero_grad()  # then the parameter gradients accumulate over the runs, as in bench/run.py
    first, times = measure(train, *policy)
    rows.append(("train", statistics.median(times), relative_error(first[0], dx_ref)))
    return rows


def thread_counts(text):
    counts = []
    for part in text.split(","):
        try:
            count = int(part)
        except ValueError:
            count = 0
        if count < 1:
            raise argparse.ArgumentTypeError(f"expected comma-separated thread counts >= 1, got {text!r}")
        counts.append(count)
    return counts


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv=None, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="fastgru bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the two small shapes of the 'quick' set (a smoke run)")
    parser.add_argument("--threads", type=thread_counts, default=None,
                        help="comma-separated thread counts (default: 1 and the usable cores)")
    parser.add_argument("--min-repeats", type=int, default=5, help="least timed runs per cell (default %(default)s)")
    parser.add_argument("--target-seconds", type=float, default=0.5,
                        help="aimed-for timed seconds per cell (default %(default)s)")
    parser.add_argument("--cell-budget", type=float, default=20.0,
                        help="seconds of timed runs a cell may take before it gets fewer than --min-repeats "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("min_repeats", "target_seconds", "cell_budget"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')}: expected a number > 0, got {getattr(args, name)}")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads_list = args.threads or sorted({1, usable})
    policy = (args.min_repeats, args.target_seconds, args.cell_budget)
    shapes = GRID["quick" if args.quick else "full"]
    facts = info()
    print(f"fastgru {facts['version']} alone, float32, bf16 and int8 — {cpu_name()}, {usable} usable cores, instruction set "
          f"{facts['isa']}; set '{'quick' if args.quick else 'full'}'; median of timed runs after "
          f"{WARMUP_SECONDS:g} s of warm-up; GFLOP/s from the nominal count 2·T·B·3H·(I+H) per forward, "
          f"×3 for train; the check of bf16 and int8 inference is against float32's y.\n", file=out)
    failed = False
    try:
        for threads in threads_list:
            set_num_threads(threads)
            print(f"### {threads} thread{'s' if threads > 1 else ''}\n", file=out)
            print("| T | B | I | H | conv | mode | ms | GFLOP/s | check |", file=out)
            print("|---:|---:|---:|---:|---|---|---:|---:|---|", file=out, flush=True)
            for shape in shapes:
                T, B, I, H = shape
                d = problem(*shape, args.seed)
                flop = 2.0 * T * B * 3 * H * (I + H)
                for reset_after in (True, False):
                    for mode, seconds, error in time_shape(shape, reset_after, d, policy):
                        gflop = flop * (3 if mode == "train" else 1) / 1e9
                        ok = error <= (CHECK_TOLERANCE if mode in ("inference", "train") else QUANTIZED_CHECK_TOLERANCE)
                        failed = failed or not ok
                        print(f"| {T} | {B} | {I} | {H} | {'after' if reset_after else 'before'} | {mode} | "
                              f"{seconds * 1e3:.3g} | {gflop / seconds:.1f} | "
                              f"{'ok' if ok else f'FAIL ({error:.1e})'} |", file=out, flush=True)
            print("", file=out)
    finally:
        set_num_threads(0)
    print(PEERS_NOTE, file=out)
    return 1 if failed else 0
