#!/usr/bin/env python
"""GRUClassifier with its defaults against two baselines on every UCR/UEA classification set
that sktime 1.2.0 ships (read from its .ts files by fastgru.datasets.load_ucr; sktime is
never imported), each on its canonical train/test split.

    PYTHONPATH=python python bench/ucr.py [--sets GunPoint,ArrowHead] [--seeds 0,1,2] [--param NAME=VALUE ...]
                                          [--out bench/results/ucr.md]

Columns: the set, training and test samples, series length T (min..max for variable-length
sets), channels, classes, test accuracy of GRUClassifier() (random_state=seed, every other
argument its default unless --param sets it, e.g. --param validation_fraction=0.2), of
1-nearest-neighbour with Euclidean distance and of a 100-tree random
forest (random_state=seed), the last two on the raw series flattened; and GRUClassifier's
fit seconds (wall clock). With several --seeds, the GRU's and the forest's accuracies are the
mean over the seeds with their range (min-max), the fit seconds the mean; 1-NN draws nothing. Multivariate series are flattened channel after channel;
variable-length series are padded with zeros at the end to the longest series of both splits
before flattening (for the baselines only: GRUClassifier takes them as a list). Prints a
markdown table, and writes it to --out when given.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier

from fastgru.datasets import load_ucr, ucr_classification_sets
from fastgru.estimators import GRUClassifier


def flattened(X, steps):
    """(N, steps * channels) float64: each series zero-padded at the end to ``steps``, its
    channels one after the other."""
    rows = []
    for series in X:
        series = np.asarray(series, dtype=np.float64)
        series = series[:, None] if series.ndim == 1 else series
        padded = np.zeros((steps, series.shape[1]))
        padded[: len(series)] = series
        rows.append(padded.T.reshape(-1))
    return np.stack(rows)


def lengths(X):
    return [len(series) for series in X]


def run_set(name, seeds, params):
    X_train, y_train, classes = load_ucr(name, "train")
    X_test, y_test, _ = load_ucr(name, "test")
    all_lengths = lengths(X_train) + lengths(X_test)
    steps = max(all_lengths)
    first = np.asarray(X_train[0])
    channels = 1 if first.ndim == 1 else first.shape[1]
    F_train, F_test = flattened(X_train, steps), flattened(X_test, steps)
    nearest = KNeighborsClassifier(n_neighbors=1).fit(F_train, y_train).score(F_test, y_test)
    gru, forest, seconds, messages = [], [], [], []
    for seed in seeds:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            started = time.perf_counter()
            model = GRUClassifier(random_state=seed, **params).fit(X_train, y_train)
            seconds.append(time.perf_counter() - started)
        messages += [f"seed {seed}: {w.message}" for w in caught if issubclass(w.category, UserWarning)]
        gru.append(model.score(X_test, y_test))
        trees = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1).fit(F_train, y_train)
        forest.append(trees.score(F_test, y_test))
    shortest = min(all_lengths)
    return {"set": name, "train": len(y_train), "test": len(y_test),
            "T": str(steps) if shortest == steps else f"{shortest}..{steps}", "channels": channels,
            "classes": len(classes), "gru": gru, "1nn": [nearest], "rf": forest, "seconds": seconds,
            "warnings": messages}


def accuracy_cell(values, best):
    """The mean (bold when it is the row's best), with the range when there are several."""
    mean = float(np.mean(values))
    text = f"**{mean:.3f}**" if mean == best else f"{mean:.3f}"
    return text if len(values) == 1 else f"{text} ({min(values):.3f}–{max(values):.3f})"


def table(rows):
    lines = ["| set | train | test | T | channels | classes | GRUClassifier() | 1-NN Euclidean | random forest (100) "
             "| GRU fit (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        best = max(float(np.mean(r[k])) for k in ("gru", "1nn", "rf"))
        cells = [accuracy_cell(r[k], best) for k in ("gru", "1nn", "rf")]
        lines.append(f"| {r['set']} | {r['train']} | {r['test']} | {r['T']} | {r['channels']} | {r['classes']} | "
                     f"{' | '.join(cells)} | {np.mean(r['seconds']):.1f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", help="comma-separated set names (default: every classification set sktime ships)")
    parser.add_argument("--seeds", default="0", help="comma-separated random_state values (default: 0)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a GRUClassifier argument other than its default (VALUE a Python literal); repeatable")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) to this file")
    args = parser.parse_args()
    available = ucr_classification_sets()
    names = available if args.sets is None else args.sets.split(",")
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"--sets: expected names among {available}, got {unknown}")
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parser.error(f"--param: expected NAME=VALUE with VALUE a Python literal (0.2, 'series', None), got {item!r}")
    rows = []
    for name in names:
        rows.append(run_set(name, seeds, params))
        r = rows[-1]
        print(f"{name}: GRU {' '.join(f'{a:.3f}' for a in r['gru'])} 1-NN {r['1nn'][0]:.3f} RF "
              f"{' '.join(f'{a:.3f}' for a in r['rf'])} ({' '.join(f'{t:.1f}' for t in r['seconds'])} s)", flush=True)
        for message in r["warnings"]:
            print(f"  warning: {message}", flush=True)
    wins = sum(np.mean(r["gru"]) >= max(np.mean(r["1nn"]), np.mean(r["rf"])) for r in rows)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    summary = (f"GRUClassifier() at least matches both baselines on {wins} of {len(rows)} sets"
               f"{' (means over the seeds)' if len(seeds) > 1 else ''}. "
               f"Host: {platform.machine()}, {os.cpu_count()} CPUs, load average at the end "
               f"{' '.join(f'{v:.2f}' for v in load) if load else 'n/a'}; seeds {args.seeds}"
               f"{'; GRUClassifier arguments ' + repr(params) if params else ''}.")
    text = table(rows) + "\n\n" + summary + "\n"
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
