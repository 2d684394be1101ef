"""``fastgru anomalies FILE.csv --column NAME``: score each value of a column by how far it lies
from a GRU's one-step forecast (:func:`fastgru.anomalies.anomaly_scores`), list the anomalies,
write the scores as CSV and, with matplotlib, a plot."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from ..anomalies import anomaly_scores
from ..files import atomic_write
from . import png_axes
from .forecast import read_column


def run(path, column, lookback=24, threshold=5.0, hidden=32, epochs=60, seed=0, output=None, plot_path=None,
        out=sys.stdout):
    values = read_column(path, column)
    if len(values) < lookback + 2:
        raise ValueError(f"FILE: column {column!r} has {len(values)} values; with --lookback {lookback} at least "
                         f"{lookback + 2} are needed")
    print(f"{column}: {len(values)} values; training a GRU (hidden {hidden}) to forecast each from the "
          f"{lookback} before it", file=out, flush=True)
    result = anomaly_scores(values, lookback=lookback, threshold=threshold, hidden=hidden, epochs=epochs, seed=seed)
    flagged = result.anomalies
    print(f"{len(flagged)} anomalies (score > {threshold:g} robust standard deviations of the forecast residuals; "
          f"the first {lookback} values are not scored):", file=out)
    for index in flagged:
        print(f"  row {index + 1}: {values[index]:.6g} (forecast {result.forecasts[index]:.6g}, score "
              f"{result.scores[index]:.1f})", file=out)
    output = Path(output or Path(path).with_name(f"{Path(path).stem}_anomalies.csv"))
    with atomic_write(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", column, "forecast", "score", "anomaly"])
        for index, (value, forecast, score) in enumerate(zip(values, result.forecasts, result.scores)):
            writer.writerow([index + 1, f"{value:.6g}", "" if forecast != forecast else f"{forecast:.6g}",
                             f"{score:.4g}", int(score > threshold)])
    print(f"Scores: {output}", file=out)
    if plot_path == "":
        return result
    if plot_path is None:
        plot_path = output.with_suffix(".png")
    with png_axes(plot_path, out) as axes:
        if axes is not None:
            result.plot(axes, label=column)
    return result
