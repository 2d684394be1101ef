"""``fastgru forecast FILE.csv --column NAME --horizon N``: train on a user's series and
forecast the N steps after its end.

The column is scaled to 0..1, cut into windows of ``--lookback`` steps, and a GRU trained to
predict the next N values at once (a direct multi-step forecast; the last 10% of the windows
are held out for early stopping). Writes the forecast as CSV and, with matplotlib, a plot.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..layers import GRU
from ..timeseries import Scaler, forecast_direct, make_windows
from ..training import Adam, EarlyStopping, Model
from . import png_axes


def read_column(path, column):
    """The named column of a CSV file with a header row, as float64 (rows in file order)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FILE: no such file {str(path)!r}")
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ValueError(f"FILE: {path} is empty; expected a header row naming the columns")
        header = [name.strip() for name in header]
        if column not in header:
            raise ValueError(f"--column: expected one of {header}, got {column!r}")
        index = header.index(column)
        values = []
        for line_number, row in enumerate(reader, 2):
            if not row:
                continue
            try:
                values.append(float(row[index]))
            except (IndexError, ValueError):
                cell = row[index] if index < len(row) else "<missing>"
                raise ValueError(f"{path}:{line_number}: column {column!r} holds {cell!r}, expected a number") from None
    values = np.array(values)
    if not np.isfinite(values).all():
        raise ValueError(f"{path}: column {column!r} holds NaN or inf values; fill or drop them first")
    return values


def run(path, column, horizon, lookback=24, epochs=200, hidden=32, seed=0, output=None, plot_path=None,
        save=None, verbose="auto", out=sys.stdout):
    values = read_column(path, column)
    if len(values) < lookback + horizon + 10:
        raise ValueError(f"FILE: column {column!r} has {len(values)} values; with --lookback {lookback} and "
                         f"--horizon {horizon} at least {lookback + horizon + 10} are needed")
    scaler = Scaler("minmax").fit(values)
    X, y = make_windows(scaler.transform(values), lookback, horizon)
    held_out = max(1, len(X) // 10)
    model = Model(GRU(1, hidden, batch_first=True, seed=seed), outputs=horizon, optimizer=Adam(3e-3), seed=seed)
    print(f"{column}: {len(values)} values, {len(X)} windows of {lookback} steps; training a GRU "
          f"(hidden {hidden}) to forecast {horizon} steps", file=out, flush=True)
    started = time.perf_counter()
    history = model.fit(X[:-held_out], y[:-held_out], epochs=epochs, batch_size=32, verbose=verbose,
                        validation_data=(X[-held_out:], y[-held_out:]), callbacks=[EarlyStopping(patience=20)])
    best = min(history.history["val_loss"])
    print(f"Trained {len(history.epochs)} epochs in {time.perf_counter() - started:.2f} s; "
          f"held-out MSE (scaled) {best:.5f}", file=out)
    prediction = scaler.inverse_transform(forecast_direct(model, scaler.transform(values), lookback))
    output = Path(output or Path(path).with_name(f"{Path(path).stem}_forecast.csv"))
    with atomic_write(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", column])
        for step, value in enumerate(prediction, 1):
            writer.writerow([step, f"{value:.6g}"])
    print(f"Forecast: {output}", file=out)
    if save:
        model.save(save, metadata={"column": column, "lookback": lookback, "horizon": horizon,
                                   "scaler": {"kind": "minmax", "low": float(values.min()), "high": float(values.max())}})
        print(f"Model: {save} (inputs scaled to 0..1 from {values.min():g}..{values.max():g}; see its metadata)", file=out)
    if plot_path == "":
        return prediction
    if plot_path is None:
        plot_path = output.with_suffix(".png")
    with png_axes(plot_path, out) as axes:
        if axes is not None:
            axes.plot(np.arange(len(values)), values, color="0.3", label=column)
            axes.plot(np.arange(len(values), len(values) + horizon), prediction, color="tab:red", label="forecast")
            axes.set_xlabel("step")
    return prediction
