"""Every (implementation, thread setting) runs in its own process: bench/run.py --worker NAME,
with the thread variables of its setting, writing its records as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import DEFAULT_THREADS, FASTGRU_QUANTIZED, log, thread_label
from .timing import Policy

RUN_SCRIPT = Path(__file__).resolve().parents[1] / "run.py"


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


def run_worker(name, threads, plan_path, tmp: Path):
    result = tmp / f"result_{name}_{threads}.json"
    cmd = [sys.executable, str(RUN_SCRIPT), "--worker", name, "--threads-one", str(threads),
           "--plan", str(plan_path), "--result", str(result)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=thread_env(threads))
    if r.returncode != 0 or not result.exists():
        log(f"  worker {name} ({thread_label(threads)}) failed with exit status {r.returncode}")
        return None, f"{name} at {thread_label(threads)} failed (exit status {r.returncode})"
    log(f"  worker {name} ({thread_label(threads)}) done in {time.perf_counter() - t0:.1f} s")
    return json.loads(result.read_text()), None


def available(impl):
    """Whether the Python modules impl needs are installed (oneDNN's build is checked apart)."""
    import importlib.util

    needs = {"fastgru": ["fastgru"], "fastgru-bf16": ["fastgru"], "fastgru-int8": ["fastgru"],
             "torch": ["torch"], "torch-int8": ["torch"],
             "onnxruntime": ["onnxruntime", "onnx"], "openvino": ["openvino", "onnx"],
             "openvino-bf16": ["openvino", "onnx"], "onednn": []}[impl]
    return all(importlib.util.find_spec(module) is not None for module in needs)


def worker_main(args):
    """A worker process's body: times what args.worker names and writes its records to args.result.
    Each peer module is imported here only, so a worker loads no library but its own."""
    plan = json.loads(Path(args.plan).read_text())
    pol = plan["policy"]
    # The matrix-product rates are the quiet machine's, the basis of % mm: no spinners beside them.
    spinners = 0 if args.worker == "matmul" else plan["spinners"]
    policy = Policy(pol["min_repeats"], pol["target_seconds"], pol["cell_budget_seconds"], pol["busy_retries"],
                    spinners)
    threads = args.threads_one
    name = args.worker
    if name == "matmul":
        from peers import matmul

        out = matmul.run(plan, threads, policy)
    elif name.removeprefix("stream-") in ("fastgru", *FASTGRU_QUANTIZED):
        from peers import fastgru

        impl = name.removeprefix("stream-")
        out = (fastgru.run_stream if name.startswith("stream-") else fastgru.run)(plan, threads, policy, impl)
    elif name in ("torch", "torch-int8", "stream-torch"):
        from peers import torch

        out = {"torch": torch.run, "torch-int8": torch.run_int8, "stream-torch": torch.run_stream}[name](
            plan, threads, policy)
    elif name in ("onnxruntime", "stream-onnxruntime"):
        from peers import onnxruntime

        out = (onnxruntime.run_stream if name.startswith("stream-") else onnxruntime.run)(plan, threads, policy)
    elif name in ("openvino", "openvino-bf16"):
        from peers import openvino

        out = openvino.run(plan, threads, policy, name)
    else:
        raise ValueError(f"--worker: expected a worker name, got {name!r}")
    if name.startswith("stream-"):
        for r in out["stream"]:
            log(f"  [{threads} thr] stream {r['impl']:<11} {r['convention']:<12} {r['median_us']:9.2f} us/step "
                f"(blocks={r['blocks']}x{r['steps_per_block']}; check {r['check']['h_last']:.1e})")
    Path(args.result).write_text(json.dumps(out))
