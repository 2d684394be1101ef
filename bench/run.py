#!/usr/bin/env python
"""fastgru benchmark: fastgru against PyTorch, ONNX Runtime, oneDNN and OpenVINO, in float32 and in
the peers' reduced precisions, on the same inputs.

    python bench/run.py [--quick] [--threads 1,2] [--impls fastgru,torch,...] [--out DIR]

The harness (timing, contention, data, workers, report) lies in bench/harness/, one module per
peer in bench/peers/, the shape sets in bench/shapes.json.

See bench/README.md for what each column means. In short:
  * every (implementation, thread count) runs in its own subprocess with OMP_NUM_THREADS (and the
    BLAS thread variables) set to the thread count, so no two libraries' thread pools share a
    process; oneDNN runs as a compiled C++ program (bench/peers/onednn_gru.cpp);
  * the reduced-precision peers (OpenVINO's bf16 hint, PyTorch's dynamic int8) print their error
    against fastgru float32 on the same weights and inputs beside their time;
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
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness.common import (CHECK_TOLERANCE, DEFAULT_THREADS, IMPLS, REDUCED_CHECK_TOLERANCE,
                            REDUCED_PRECISION, STREAMING, log, thread_setting)
from harness.data import flop_forward, make_data, shape_id
from harness.report import build_tables, machine_info, make_plot, matmul_basis
from harness.timing import BUSY_THRESHOLD, Policy
from harness.workers import available, run_worker, thread_env, worker_main
from peers import onednn

HERE = Path(__file__).resolve().parent  # shapes.json and results/ lie here


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small 'quick' shape set (a smoke run)")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread settings: counts, or 'default' for each library's own default "
                         "(default: 1,<all cores>, and 'default' with --contention)")
    ap.add_argument("--out", default=str(HERE / "results"), help="output directory (default bench/results)")
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
            sys.exit(f"--impls: expected names from {', '.join(IMPLS)}, got {impl!r}")
        if not available(impl):
            notes.append(f"{impl} skipped: not installed")
            impls.remove(impl)
    build = None
    if "onednn" in impls:
        build, note = onednn.build(out_dir)
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
            "reduced_precision_check_tolerance": REDUCED_CHECK_TOLERANCE,
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
                out["rates"] += onednn.run_gemm(build, plan, threads, policy, thread_env(threads))
            for impl in impls:
                if impl == "onednn":
                    out = onednn.run(build, plan, threads, policy, thread_env(threads))
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
                if impl not in STREAMING:
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
        tolerance = REDUCED_CHECK_TOLERANCE if c["impl"] in REDUCED_PRECISION else CHECK_TOLERANCE
        c["check_ok"] = all(v <= tolerance for v in c["check"].values()) and bool(c["check"])
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
