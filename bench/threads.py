"""Where a second thread starts paying: the crossovers behind fastgru's thread choice.

For each shape, float32 inference (and training with --train) at 1 thread and at N threads
forced (every region and step loop on N threads, whatever the work and the machine's load),
timed interleaved in one process; the ratio N / 1 thread against the work of one step tells where threads start to win.
The thresholds fastgru uses (cpp/src/driver/work_split.cpp) come from this table and from
bench/cpp/thread_costs.cpp (what a region start and a barrier cost).

    python bench/threads.py                     # B = 1, 4, 16 over H = 32..512, ~3 min
    python bench/threads.py --threads 2 --seconds 2 --train
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import fastgru
from fastgru import _core


def interleaved_medians(run, settings, seconds):
    """Median seconds of run() at each thread setting, alternating settings every round."""
    times = {s: [] for s in settings}
    for s in settings:  # warm-up: packing, first-touch pages, the workers' start
        fastgru.set_num_threads(s)
        run()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or min(len(v) for v in times.values()) < 5:
        for s in settings:
            fastgru.set_num_threads(s)
            start = time.perf_counter()
            run()
            times[s].append(time.perf_counter() - start)
    return {s: statistics.median(v) for s, v in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--hidden", default="32,64,96,128,192,256,384,512")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.5, help="timing per shape")
    parser.add_argument("--train", action="store_true", help="time forward + backward too")
    args = parser.parse_args(argv)
    if args.threads < 2:
        parser.error(f"--threads: expected at least 2, got {args.threads}")
    print(f"# load average {os.getloadavg()[0]:.2f}; {args.threads} threads vs 1; "
          f"ISA {_core.active_isa()}; medians of interleaved runs\n")
    print("| mode | B | H | step MFLOP | 1 thread ms | threads forced ms | forced / 1 | fastgru's choice ms | choice / 1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    modes = ["inference"] + (["train"] if args.train else [])
    rng = np.random.default_rng(0)
    for mode in modes:
        for batch in map(int, args.batches.split(",")):
            for hidden in map(int, args.hidden.split(",")):
                layer = fastgru.GRU(64, hidden, seed=0)
                x = rng.standard_normal((args.steps, batch, 64)).astype(np.float32)
                dy = rng.standard_normal((args.steps, batch, hidden)).astype(np.float32)

                def run():
                    if mode == "train":
                        layer.forward(x, train=True)
                        layer.backward(dy)
                    else:
                        layer(x)

                chosen = interleaved_medians(run, [1, args.threads], args.seconds / 2)
                _core._force_threads(True)
                try:
                    forced = interleaved_medians(run, [1, args.threads], args.seconds / 2)
                finally:
                    _core._force_threads(False)
                    fastgru.set_num_threads(0)
                step_mflop = 2 * batch * 3 * hidden * hidden / 1e6
                print(f"| {mode} | {batch} | {hidden} | {step_mflop:.3f} | {forced[1] * 1e3:.3f} | "
                      f"{forced[args.threads] * 1e3:.3f} | {forced[args.threads] / forced[1]:.2f} | "
                      f"{chosen[args.threads] * 1e3:.3f} | {chosen[args.threads] / chosen[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
