"""float32 square matrix products: the rate the % mm column divides by."""

from __future__ import annotations

import statistics

import numpy as np

from harness.common import DEFAULT_THREADS, log
from harness.timing import measure


def run(plan, threads, policy):
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

