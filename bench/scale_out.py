#!/usr/bin/env python
"""Scaling out on one machine: Dask batch scoring and MPI data-parallel training, each against
its one-process baseline in the same run.

    python bench/scale_out.py [--repeats 3] [--samples 8192] [--epoch-samples 1024] [--batch 64]

Dask: a Model (GRU I=H=256 + dense head, float32) scores --samples sequences of T=100 read
from a .npy file (fastgru.dask.from_npy, 256 rows a chunk), on a LocalCluster of 2 worker
processes x 1 thread and of 1 x 1, against model.predict over the memory-mapped file in this
process with 2 threads. The workers' memory limit is set below the file's size: it streams.
MPI: one epoch of Model.fit (the same model, Adam, --epoch-samples sequences, global batch
--batch, no shuffling) on 2 ranks x 1 thread (each half the samples, batch/2) against 1 rank x 1
thread; the two runs' final weights are compared. Then the all-reduce of the gradients, timed on
loopback, and the arithmetic of when it pays for each size of the grid (README.md, "Scaling
out"). Times are medians of --repeats (after one warm-up); `uptime` is printed first and last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

STEPS, SIZE = 100, 256
# The grid's sequence shapes (bench/shapes.json, set "full"): T, B, I = H.
GRID = [(100, 1, 128), (100, 8, 256), (100, 32, 256), (50, 64, 512), (25, 128, 1024)]
NETWORK_BYTES_PER_S = 25e9 / 8


def make_model():
    import fastgru

    return fastgru.Model(fastgru.GRU(SIZE, SIZE, batch_first=True, seed=0), outputs=1, seed=1)


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def median_time(run, repeats):
    run()  # warm-up: imports, the model's first trip to the workers, page cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ----------------------------------------------------------------------------------- Dask
def bench_dask(args, directory):
    import distributed

    import fastgru
    import fastgru.dask as fastgru_dask

    rng = np.random.default_rng(0)
    path = os.path.join(directory, "X.npy")
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(args.samples, STEPS, SIZE))
    for start in range(0, args.samples, 512):
        X[start : start + 512] = rng.standard_normal(X[start : start + 512].shape, dtype=np.float32)
    X.flush()
    del X
    file_bytes = os.path.getsize(path)
    memory_limit = 384 << 20  # a worker's own Python, Dask and fastgru take about 150 MiB of it
    model = make_model()
    mapped = np.load(path, mmap_mode="r")
    fastgru.set_num_threads(2)
    expected = model.predict(mapped)
    results = {"predict, 1 process x 2 threads": median_time(lambda: model.predict(mapped), args.repeats)}
    fastgru.set_num_threads(0)
    print(f"dask: {args.samples} sequences ({file_bytes / 2**20:.0f} MiB .npy), workers' memory limit "
          f"{memory_limit / 2**20:.0f} MiB each", flush=True)
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      memory_limit=memory_limit, dashboard_address=None, silence_logs=40) as cluster, \
                distributed.Client(cluster) as client:
            lazy = fastgru_dask.predict(model, fastgru_dask.from_npy(path, rows_per_chunk=256))
            def score():  # a worker paused or killed for memory fails the run rather than hang it
                return client.compute(lazy).result(timeout=300)

            seconds = median_time(score, args.repeats)
            error = float(np.abs(score() - expected).max())
            peak = max(client.run(lambda: __import__("psutil").Process().memory_info().rss).values())
            results[f"dask, {workers} worker(s) x 1 thread"] = seconds
            print(f"  {workers} worker(s): max |difference| from predict {error:.1e}, largest worker RSS after "
                  f"{peak / 2**20:.0f} MiB", flush=True)
    baseline, one, two = (results["predict, 1 process x 2 threads"], results["dask, 1 worker(s) x 1 thread"],
                          results["dask, 2 worker(s) x 1 thread"])
    for name, seconds in results.items():
        print(f"  {name:34s} {seconds:8.3f} s  {args.samples / seconds:8.0f} sequences/s")
    print(f"  2 workers / 1 worker: {one / two:.2f}x (target >= 1.8x); 2 workers vs predict with 2 threads: "
          f"{two / baseline:.2f} of its time (target <= 1.10)", flush=True)


# ----------------------------------------------------------------------------------- MPI
def epoch_data(args):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((args.epoch_samples, STEPS, SIZE), dtype=np.float32)
    y = X[:, -5:, :1].mean(axis=1)
    return X, y


def mpi_rank(args):
    """One rank of an mpiexec run: times --repeats epochs (after a warm-up one) and the gradient
    all-reduce; rank 0 prints the result as JSON."""
    from mpi4py import MPI

    import fastgru

    fastgru.set_num_threads(1)
    communicator = MPI.COMM_WORLD
    rank, ranks = communicator.Get_rank(), communicator.Get_size()
    X, y = epoch_data(args)
    local_batch = args.batch // ranks
    rows = np.arange(len(X))
    mine = rows[(rows // local_batch) % ranks == rank]  # each global batch: every rank's local batch
    model = make_model()
    times = []
    for epoch in range(args.repeats + 1):
        communicator.Barrier()
        started = time.perf_counter()
        model.fit(X[mine], y[mine], epochs=1, batch_size=local_batch, shuffle=False, verbose=0,
                  communicator=communicator)
        communicator.Barrier()
        times.append(time.perf_counter() - started)
    parameters = sum(v.size for k, v in model.get_weights().items())
    flat = np.zeros(parameters + 3, np.float32)
    allreduce = []
    for _ in range(21):
        communicator.Barrier()
        started = time.perf_counter()
        communicator.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        allreduce.append(time.perf_counter() - started)
    if rank == 0:
        np.savez(args.weights, **model.get_weights())
        print(json.dumps({"epoch": statistics.median(times[1:]), "allreduce": statistics.median(allreduce),
                          "parameters": parameters}))


def train_step_seconds(T, B, H, repeats):
    """One training step's forward and BPTT of a grid shape on one thread (medians)."""
    import fastgru

    layer = fastgru.GRU(H, H, batch_first=True, seed=0)
    x = np.random.default_rng(0).standard_normal((B, T, H), dtype=np.float32)

    def step():
        y, _ = layer.forward(x, train=True)
        layer.backward(y)

    return median_time(step, repeats)


def bench_mpi(args, directory):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    runs = {}
    for ranks in (1, 2):
        weights = os.path.join(directory, f"weights{ranks}.npz")
        command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py", os.path.abspath(__file__), "--mpi-rank",
                   "--repeats", str(args.repeats), "--epoch-samples", str(args.epoch_samples), "--batch",
                   str(args.batch), "--weights", weights]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        runs[ranks] = json.loads(result.stdout.strip().splitlines()[-1])
        runs[ranks]["weights"] = dict(np.load(weights))
    difference = max(float(np.abs(runs[1]["weights"][k] - runs[2]["weights"][k]).max()) for k in runs[1]["weights"])
    one, two = runs[1]["epoch"], runs[2]["epoch"]
    print(f"mpi: one epoch of {args.epoch_samples} sequences (T={STEPS}, I=H={SIZE}, global batch {args.batch}), "
          f"{runs[1]['parameters']} parameters")
    print(f"  1 rank x 1 thread  (batch {args.batch})      {one:8.3f} s")
    print(f"  2 ranks x 1 thread (batch {args.batch // 2} each) {two:8.3f} s")
    print(f"  2 ranks / 1 rank: {one / two:.2f}x (target >= 1.7x); final weights' max |difference| {difference:.1e}")
    allreduce = runs[2]["allreduce"]
    steps = -(-args.epoch_samples // args.batch)
    print(f"  Allreduce of {runs[2]['parameters'] * 4 / 1e6:.2f} MB (float32 gradients) on loopback: "
          f"{allreduce * 1e3:.3f} ms, {steps} per epoch ({steps * allreduce / two:.1%} of the 2-rank epoch)")
    print("when it pays, 2 ranks: per step, a ring all-reduce moves 2(n-1)/n x parameters x 4 bytes per rank;")
    print("at 25 Gb/s against one training step's forward + BPTT on one thread (grid shapes, measured now):")
    print(f"  {'T, B, I=H':>16s} {'parameters':>11s} {'MB':>7s} {'25 Gb/s ms':>11s} {'step ms':>9s} {'ratio':>7s}")
    for T, B, H in GRID:
        parameters = 3 * H * (H + H) + 6 * H + H + 1
        megabytes = parameters * 4 / 1e6
        network = 2 * (2 - 1) / 2 * parameters * 4 / NETWORK_BYTES_PER_S
        step = train_step_seconds(T, B, H, args.repeats)
        print(f"  {f'{T}, {B}, {H}':>16s} {parameters:11d} {megabytes:7.2f} {network * 1e3:11.3f} {step * 1e3:9.2f} "
              f"{network / step:7.1%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8192, help="sequences scored by Dask")
    parser.add_argument("--epoch-samples", type=int, default=1024, help="sequences of the MPI epoch")
    parser.add_argument("--batch", type=int, default=64, help="the MPI epoch's global batch")
    parser.add_argument("--mpi-rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mpi_rank:
        return mpi_rank(args)
    print(f"uptime: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        bench_dask(args, directory)
        bench_mpi(args, directory)
    print(f"uptime: {uptime()}")


if __name__ == "__main__":
    main()
