#!/usr/bin/env python
"""Training speed of the whole path: fastgru.Model.fit against the same model, optimiser,
batches and epochs written in plain PyTorch (nn.GRU + nn.Linear, torch.optim), on this machine.

    python bench/training.py [--threads 1,2] [--repeats 3] [--contention]

Cases: the demo's sunspot forecaster (GRU(1, 32) + Linear, AdamW, batch 16, 209 windows of 12
years) and the GunPoint classifier of the validation tests (bidirectional GRU(5, 32) on 30
steps, cross-entropy, batch 16, 50 series). Each run trains from the same initial weights (torch
copies fastgru's) on the same batches (those fit drew); the median wall time of --repeats runs
is reported, with the last epoch's mean training loss of each side by side, as a check that both
did the same work.

--contention runs one busy process per usable CPU beside every timed training (a shared server)
and compares the thread settings 1 and "default": fastgru.set_num_threads(0) (OpenMP's default in
this process) and PyTorch's own default (its thread count when the script started).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import numpy as np


def sunspot_case():
    from fastgru.commands.demo import LOOKBACK, TRAIN_LAST
    from fastgru.datasets import load_sunspots
    from fastgru.timeseries import Scaler, make_windows

    years, values = load_sunspots()
    scaled = Scaler().fit(values[years <= TRAIN_LAST]).transform(values)
    X, y = make_windows(scaled, LOOKBACK)
    train = years[LOOKBACK:] <= TRAIN_LAST
    return dict(name="sunspots forecaster", X=X[train].astype(np.float32), y=y[train].astype(np.float32),
                inputs=1, hidden=32, bidirectional=False, outputs=1, loss="mse", epochs=100, weight_decay=0.2)


def gunpoint_case():
    rng = np.random.default_rng(0)  # GunPoint's shape (50 series of 150 values as 30 steps of 5)
    X = rng.standard_normal((50, 30, 5)).astype(np.float32)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(np.int64)
    return dict(name="GunPoint-sized classifier", X=X, y=y, inputs=5, hidden=32, bidirectional=True, outputs=2,
                loss="cross_entropy", epochs=100, weight_decay=0.01)


def train_fastgru(case):
    """Model.fit itself; returns its time, final batch loss, the initial weights and the batches
    fit drew (so that PyTorch trains on the very same ones)."""
    import fastgru
    from fastgru.training import AdamW, Callback, Model

    layer = fastgru.GRU(case["inputs"], case["hidden"], batch_first=True, bidirectional=case["bidirectional"], seed=0)
    model = Model(layer, outputs=case["outputs"], loss=case["loss"],
                  optimizer=AdamW(3e-3, weight_decay=case["weight_decay"]), seed=0)
    initial = model.get_weights()
    shuffles = copy.deepcopy(model._rng)  # fit's shuffling generator, as it is before fit
    count = len(case["X"])
    order = [np.array_split(p, range(16, count, 16)) for p in (shuffles.permutation(count) for _ in range(case["epochs"]))]

    class LastLoss(Callback):
        def on_epoch_end(self, model, epoch, logs):
            self.loss = logs["loss"]

    last = LastLoss()
    started = time.perf_counter()
    model.fit(case["X"], case["y"], epochs=case["epochs"], batch_size=16, verbose=0, callbacks=[last])
    return time.perf_counter() - started, last.loss, initial, order


def train_torch(case, order, initial):
    import torch

    gru = torch.nn.GRU(case["inputs"], case["hidden"], batch_first=True, bidirectional=case["bidirectional"])
    head = torch.nn.Linear(case["hidden"] * (2 if case["bidirectional"] else 1), case["outputs"])
    with torch.no_grad():
        for name, parameter in gru.named_parameters():
            parameter.copy_(torch.from_numpy(initial[f"recurrent.{name}"]))
        head.weight.copy_(torch.from_numpy(initial["head.weight"]))
        head.bias.copy_(torch.from_numpy(initial["head.bias"]))
    parameters = list(gru.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=3e-3, weight_decay=case["weight_decay"])
    criterion = torch.nn.MSELoss() if case["loss"] == "mse" else torch.nn.CrossEntropyLoss()
    X = torch.from_numpy(case["X"])
    y = torch.from_numpy(case["y"].reshape(len(case["y"]), -1) if case["loss"] == "mse" else case["y"])
    started = time.perf_counter()
    for epoch in order:
        total = 0.0
        for rows in epoch:
            index = torch.from_numpy(rows)
            optimizer.zero_grad()
            _, h_n = gru(X[index])
            features = torch.cat(list(h_n[-(2 if case["bidirectional"] else 1):]), dim=1)
            loss = criterion(head(features), y[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
    return time.perf_counter() - started, total / len(case["X"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=None,
                        help="comma-separated thread counts, or 'default' (default: 1,2; 1,default with --contention)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contention", action="store_true",
                        help="run one busy process per usable CPU beside every timed training")
    args = parser.parse_args()
    import fastgru
    import torch

    from harness.spinners import busy_cpus  # bench/harness: this script's directory is on sys.path

    torch_default = torch.get_num_threads()  # before this script sets any
    settings = (args.threads or ("1,default" if args.contention else "1,2")).split(",")
    spinners = len(os.sched_getaffinity(0)) if args.contention else 0
    if spinners:
        fastgru.set_num_threads(0)  # to say what the default setting resolves to
        print(f"Under contention: {spinners} busy processes beside every timed training. default: fastgru "
              f"{fastgru.get_num_threads()} threads (set_num_threads(0)), PyTorch {torch_default} (its default).\n")
    print("| case | threads | epochs | fastgru s | PyTorch s | PyTorch / fastgru | last epoch loss fastgru / PyTorch |")
    print("|---|---:|---:|---:|---:|---:|---|")
    fastgru_seconds = {}
    for threads in settings:
        fastgru.set_num_threads(0 if threads == "default" else int(threads))
        torch.set_num_threads(torch_default if threads == "default" else int(threads))
        for case in (sunspot_case(), gunpoint_case()):
            ours, theirs = [], []
            for _ in range(args.repeats):
                with busy_cpus(spinners):  # none unless --contention
                    seconds, our_loss, initial, order = train_fastgru(case)
                ours.append(seconds)
                with busy_cpus(spinners):
                    seconds, their_loss = train_torch(case, order, initial)
                theirs.append(seconds)
            a, b = statistics.median(ours), statistics.median(theirs)
            fastgru_seconds[case["name"], threads] = a
            print(f"| {case['name']} | {threads} | {case['epochs']} | {a:.3f} | {b:.3f} | {b / a:.2f}× | "
                  f"{our_loss:.5f} / {their_loss:.5f} |", flush=True)
    if spinners:
        print()
        for (name, threads), seconds in fastgru_seconds.items():
            if threads == "default" and (name, "1") in fastgru_seconds:
                print(f"{name}: fastgru default / 1 thread = {seconds / fastgru_seconds[name, '1']:.2f} "
                      f"(under contention)")


if __name__ == "__main__":
    main()
