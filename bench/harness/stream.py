"""The streaming step: one step at a time from Python, B = 1, each step's h fed to the next; a
block of steps is timed as one."""

from __future__ import annotations

import statistics

import numpy as np

from .common import rel_err
from .data import load_ref
from .timing import measure


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

