"""oneDNN: onednn_gru.cpp compiled against an installed oneDNN, run as its own program (it times
the four cells of a shape, and sgemm for the matrix-product rate)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from harness.common import DEFAULT_THREADS, cell_record, log, rel_err, report_cell
from harness.data import load_ref, shape_id
from harness.spinners import busy_cpus
from harness.timing import BUSY_THRESHOLD

HERE = Path(__file__).resolve().parent  # onednn_gru.cpp lies here


def find():
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


def build(out_dir: Path):
    found = find()
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


def run(program, plan, threads, policy, env):
    """The oneDNN cells of every shape: the compiled program (build()'s record) run once per shape."""
    cells, info = [], {}
    for s in plan["sequences"]:
        ddir = Path(plan["data"]) / shape_id(s)
        # The program times four cells; under --contention the spinners run beside all of it.
        with tempfile.TemporaryDirectory(prefix="onednn_dump_") as dump, busy_cpus(policy.spinners) as spinners:
            cmd = [program["exe"], "--T", str(s["T"]), "--B", str(s["B"]), "--I", str(s["I"]), "--H", str(s["H"]),
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


def run_gemm(program, plan, threads, policy, env):
    rates = []
    for n in plan["matmul_sizes"]:
        cmd = [program["exe"], "--gemm", str(n), "--threads", onednn_threads(threads),
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

