"""How a cell is timed: warm-up, then timed runs each timed on its own, their count set by the
Policy; the CPU share other processes used meanwhile (the contention measure) decides whether the
timed runs are redone. See bench/README.md, "Timing" and "Contention"."""

from __future__ import annotations

import gc
import math
import os
import time

from .spinners import busy_cpus

# A cell is marked (†) when other processes or the hypervisor used more than this share of the
# machine's CPUs while its timed runs ran: its time is then suspect (measured, not corrected).
BUSY_THRESHOLD = 0.10
# Warm-up: at least this many seconds of untimed runs per cell (and at least 2 runs, or 1 when a
# run takes over a second): caches, allocator, thread pools and clock frequency settle first.
WARMUP_SECONDS = 0.25


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

