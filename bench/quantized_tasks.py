"""bf16 and int8 on real tasks: the sunspot demo's forecaster and a GunPoint classifier, each
trained once in float32 and then run as trained, as ``Model.quantize("bf16")`` and as
``Model.quantize("int8")`` (issue 16's accuracy targets: the demo's MSE within 3% of float32's,
GunPoint's accuracy within 1 point).

    python bench/quantized_tasks.py [--out FILE]

Trains the demo's five GRUs (``fastgru demo``'s settings) and the README's GunPoint model
(patches of 5, a bidirectional GRU of 32, AdamW and a cosine schedule, 300 epochs): about a
minute on 2 cores. Prints a Markdown table; GunPoint needs sktime==1.2.0's data files.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastgru
from fastgru.commands import demo
from fastgru.datasets import load_sunspots, load_ucr
from fastgru.training import AdamW, LearningRateScheduler, Model, cosine_decay

MODES = ("bf16", "int8")


def sunspot_rows():
    years, values = load_sunspots()
    models, scaler, _ = demo.train_forecaster(values, years, verbose=0, out=sys.stderr)
    rows = []
    for precision in ("float32",) + MODES:
        run = models if precision == "float32" else [model.quantize(precision) for model in models]
        _, predictions, truth = demo.forecast(run, scaler, values, years)
        rows.append((precision, float(np.mean((predictions - truth) ** 2))))
    return rows


def gunpoint_rows(patch=5, epochs=300):
    X_train, y_train, classes = load_ucr("GunPoint", "train")
    X_test, y_test, _ = load_ucr("GunPoint", "test")

    def patches(X):
        return X[:, : X.shape[1] // patch * patch].reshape(len(X), -1, patch)

    layer = fastgru.GRU(patch, 32, batch_first=True, bidirectional=True, seed=0)
    model = Model(layer, outputs=len(classes), loss="cross_entropy", optimizer=AdamW(3e-3), seed=0)
    model.fit(patches(X_train), y_train, epochs=epochs, batch_size=16, verbose=0,
              callbacks=[LearningRateScheduler(cosine_decay(epochs))])
    rows = []
    for precision in ("float32",) + MODES:
        run = model if precision == "float32" else model.quantize(precision)
        rows.append((precision, run.evaluate(patches(X_test), y_test)["accuracy"]))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sunspots = sunspot_rows()
    gunpoint = gunpoint_rows()
    base_mse, base_accuracy = sunspots[0][1], gunpoint[0][1]
    lines = ["| precision | sunspot MSE (1921-1987) | vs float32 | GunPoint accuracy | vs float32 |",
             "|---|---:|---:|---:|---:|"]
    for (precision, mse), (_, accuracy) in zip(sunspots, gunpoint):
        lines.append(f"| {precision} | {mse:.1f} | {100 * (mse / base_mse - 1):+.2f}% | {100 * accuracy:.2f}% | "
                     f"{100 * (accuracy - base_accuracy):+.2f} points |")
    text = "\n".join(lines) + f"\n\n({time.perf_counter() - started:.0f} s, fastgru {fastgru.info()['isa']})\n"
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    sys.exit(main())
