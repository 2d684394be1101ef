"""``fastgru forecast FILE.csv --column NAME --horizon N``: train on a user's series and
forecast the N steps after its end (or, with ``--load``, forecast again from a saved model).

The column is scaled to 0..1, cut into windows of ``--lookback`` steps, and a GRU trained to
predict the next N values at once (a direct multi-step forecast). The last ``--backtest``
forecast origins are kept out of training: the GRU's forecasts from them are compared with the
naive (last value) and seasonal-naive forecasts, in the series' own units. Of the windows left,
the last 10% are held out for early stopping. Dates (``--date-column``, or a first column of
ISO dates) are continued in the forecast CSV; see :mod:`fastgru.commands.dates`.
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
from .dates import read_dates

# Windows needed to train: 10 to fit and at least one held out for early stopping.
MIN_TRAINING_WINDOWS = 11
# Forecast origins of the backtest when --backtest is not given (fewer for a short series).
DEFAULT_BACKTEST = 10
DEFAULT_LOOKBACK = 24
# What a model saved by --save keeps in its metadata, all needed to forecast again.
_MODEL_FIELDS = ("column", "lookback", "horizon", "scaler")


def _read_rows(path):
    """The header (stripped names) and the non-empty rows of a CSV file, with their line numbers."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FILE: no such file {str(path)!r}")
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ValueError(f"FILE: {path} is empty; expected a header row naming the columns")
        rows = [(line_number, row) for line_number, row in enumerate(reader, 2) if row]
    return [name.strip() for name in header], rows


def _cells(path, rows, index, column):
    cells = []
    for line_number, row in rows:
        if index >= len(row):
            raise ValueError(f"{path}:{line_number}: column {column!r} holds '<missing>', expected a value")
        cells.append(row[index])
    return cells


def _numbers(path, header, rows, column, argument="--column"):
    if column not in header:
        raise ValueError(f"{argument}: expected one of {header}, got {column!r}")
    values = []
    for (line_number, _), cell in zip(rows, _cells(path, rows, header.index(column), column)):
        try:
            values.append(float(cell))
        except ValueError:
            raise ValueError(f"{path}:{line_number}: column {column!r} holds {cell!r}, expected a number") from None
    values = np.array(values)
    if not np.isfinite(values).all():
        raise ValueError(f"{path}: column {column!r} holds NaN or inf values; fill or drop them first")
    return values


def read_column(path, column):
    """The named column of a CSV file with a header row, as float64 (rows in file order)."""
    header, rows = _read_rows(path)
    return _numbers(path, header, rows, column)


def read_series(path, column, date_column=None):
    """The named column as float64 and its dates: ``(values, dates, note)``.

    ``date_column`` names the dates; without it the first column is taken for dates when it is not
    ``column`` and every cell is an ISO date (a column of bare 4-digit years only when its name
    contains "year"). ``dates`` is a :class:`~fastgru.commands.dates.Dates` or None; ``note``
    says where the dates came from, or why there are none.
    """
    header, rows = _read_rows(path)
    values = _numbers(path, header, rows, column)
    if date_column is not None:
        if date_column not in header:
            raise ValueError(f"--date-column: expected one of {header}, got {date_column!r}")
        if date_column == column:
            raise ValueError(f"--date-column: expected a column other than --column {column!r}, got the same")
        dates = read_dates(date_column, _cells(path, rows, header.index(date_column), date_column),
                           [line for line, _ in rows], path, required=True)
        return values, dates, f"dates from column {date_column!r}, {dates.step.describe()} apart"
    first = header[0]
    if first == column:
        return values, None, "no dates (no --date-column; the first column is the one forecast): steps are numbered"
    dates = read_dates(first, _cells(path, rows, 0, first), [line for line, _ in rows], path, required=False)
    if dates is None:
        return values, None, (f"no dates (the first column {first!r} does not hold ISO dates; --date-column names "
                              f"one): steps are numbered")
    return values, dates, f"dates from the first column {first!r}, {dates.step.describe()} apart"


def errors(forecasts, truth):
    """(MAE, RMSE) of ``forecasts`` against ``truth`` (same shape), in their units."""
    difference = np.asarray(forecasts, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.abs(difference).mean()), float(np.sqrt((difference ** 2).mean()))


def naive_forecasts(values, origins, horizon):
    """The last value before each origin, repeated over the horizon: (len(origins), horizon)."""
    origins = np.asarray(origins)
    return np.repeat(values[origins - 1][:, None], horizon, axis=1)


def seasonal_naive_forecasts(values, origins, horizon, season):
    """Each step's value one season earlier, from before its origin (two seasons earlier for
    steps beyond the first season, and so on): (len(origins), horizon)."""
    steps = np.arange(horizon)
    lags = season * (steps // season + 1)
    return values[np.asarray(origins)[:, None] + steps - lags]


def _unscale(scaler, forecasts):
    """Forecasts (windows, horizon) in the series' units (the scaler was fitted on one column)."""
    forecasts = np.asarray(forecasts, dtype=np.float64)
    return scaler.inverse_transform(forecasts.ravel()).reshape(forecasts.shape)


def _number(value):
    """A figure for the tables: 4 significant digits, without an exponent from 1000 up."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _load_model(path, column, horizon, lookback):
    """A model saved by ``--save`` and its settings (column, horizon, lookback, scaler, metadata);
    a model that is not one, or whose settings differ from those given, is refused."""
    from ..serialisation import load

    model = load(path)
    metadata = model.metadata if isinstance(model, Model) else {}
    if not isinstance(model, Model) or any(field not in metadata for field in _MODEL_FIELDS):
        found = f"metadata {sorted(metadata)}" if isinstance(model, Model) else f"a {type(model).__name__} layer"
        raise ValueError(f"--load: expected a model saved by `fastgru forecast --save` (a Model whose metadata holds "
                         f"{', '.join(_MODEL_FIELDS)}), got {found} in {path}")
    scaling = metadata["scaler"]
    saved = {"column": metadata["column"], "horizon": metadata["horizon"], "lookback": metadata["lookback"]}
    if (not isinstance(saved["column"], str) or any(type(saved[k]) is not int or saved[k] < 1 for k in ("horizon", "lookback"))
            or not isinstance(scaling, dict) or scaling.get("kind") != "minmax"
            or not all(isinstance(scaling.get(k), (int, float)) for k in ("low", "high"))
            or not scaling["low"] <= scaling["high"]):
        raise ValueError(f"--load: {path}'s metadata holds column {saved['column']!r}, horizon {saved['horizon']!r}, "
                         f"lookback {saved['lookback']!r}, scaler {scaling!r}; expected a column name, ints >= 1 "
                         f"and {{'kind': 'minmax', 'low': a number, 'high': a number >= low}}")
    if (model.recurrent.input_size != 1 or model.head != "last" or model.outputs != saved["horizon"]
            or model.vocab_size is not None):
        raise ValueError(f"--load: expected a model reading one value per step and forecasting its {saved['horizon']} "
                         f"steps at once (head 'last'), got {model!r}")
    for name, given in (("column", column), ("horizon", horizon), ("lookback", lookback)):
        if given is not None and given != saved[name]:
            raise ValueError(f"--{name}: the model {path} was trained with --{name} {saved[name]}, got {given}; "
                             f"leave --{name} out to use the model's")
    scaler = Scaler("minmax").fit(np.array([scaling["low"], scaling["high"]], dtype=np.float64))
    return model, saved["column"], saved["horizon"], saved["lookback"], scaler, metadata


def _default_backtest(windows, horizon, training):
    """--backtest's default: up to 10 origins, a tenth of the windows at most, and (when training)
    no more than leave enough windows to train on."""
    count = min(DEFAULT_BACKTEST, windows // 10)
    if training:
        count = min(count, windows - horizon + 1 - MIN_TRAINING_WINDOWS)
    return max(0, count)


def run(path, column=None, horizon=None, lookback=None, epochs=200, hidden=32, seed=0, output=None,
        plot_path=None, save=None, verbose="auto", out=sys.stdout, date_column=None, season=None, backtest=None,
        backtest_csv=False, load=None):
    """Trains (or with ``load``, loads) a model, prints its held-out errors and the backtest, and
    writes the forecast CSV (and a plot unless ``plot_path`` is ""). Returns the forecast."""
    if load is not None:
        model, column, horizon, lookback, scaler, saved = _load_model(load, column, horizon, lookback)
    elif column is None or horizon is None:
        raise ValueError(f"{'--column' if column is None else '--horizon'}: required (unless --load gives a model)")
    lookback = DEFAULT_LOOKBACK if lookback is None else lookback
    values, dates, note = read_series(path, column, date_column)
    step_text = dates.step.describe() if dates is not None else None
    if load is not None and saved.get("date_step") and step_text and saved["date_step"] != step_text:
        raise ValueError(f"--load: the model {load} was trained on dates {saved['date_step']} apart; "
                         f"{path}'s are {step_text} apart")
    print(f"{column}: {len(values)} values; {note}", file=out)
    windows = len(values) - lookback - horizon + 1
    if load is not None and windows < 0:
        raise ValueError(f"FILE: column {column!r} has {len(values)} values; the model reads --lookback {lookback}, "
                         f"so at least {lookback} are needed")
    if backtest is None:
        backtest = _default_backtest(max(windows, 0), horizon, training=load is None)
    kept_out = backtest + horizon - 1 if backtest else 0  # targets of the backtest, never trained on
    if load is None and windows - kept_out < MIN_TRAINING_WINDOWS:
        raise ValueError(f"FILE: column {column!r} has {len(values)} values; with --lookback {lookback}, --horizon "
                         f"{horizon} and --backtest {backtest} at least "
                         f"{lookback + horizon - 1 + kept_out + MIN_TRAINING_WINDOWS} are needed")
    if backtest > max(windows, 0):
        raise ValueError(f"--backtest: expected at most {max(windows, 0)} forecast origins (the windows of "
                         f"--lookback {lookback} and --horizon {horizon} in {len(values)} values), got {backtest}")
    if season is None and dates is not None:
        season = dates.step.season()
    first_origin = len(values) - horizon - backtest + 1
    if backtest and season is not None and first_origin < season:
        raise ValueError(f"--season: expected at most {first_origin} (the values before the first backtest origin), "
                         f"got {season}")
    if load is None:
        scaler = Scaler("minmax").fit(values)
    scaled = scaler.transform(values)
    if load is None:
        X, y = make_windows(scaled, lookback, horizon)
        trainable = windows - kept_out
        held_out = max(1, trainable // 10)
        X_fit, y_fit = X[:trainable - held_out], y[:trainable - held_out]
        X_val, y_val = X[trainable - held_out:trainable], y[trainable - held_out:trainable]
        model = Model(GRU(1, hidden, batch_first=True, seed=seed), outputs=horizon, optimizer=Adam(3e-3), seed=seed)
        print(f"{len(X)} windows of {lookback} steps; training a GRU (hidden {hidden}) to forecast {horizon} steps "
              f"on {len(X_fit)}, stopping early on the next {held_out}", file=out, flush=True)
        started = time.perf_counter()
        history = model.fit(X_fit, y_fit, epochs=epochs, batch_size=32, verbose=verbose,
                            validation_data=(X_val, y_val), callbacks=[EarlyStopping(patience=20)])
        truth = make_windows(values, lookback, horizon)[1][trainable - held_out:trainable]
        mae, rmse = errors(_unscale(scaler, model.predict(X_val)), truth)
        print(f"Trained {len(history.epochs)} epochs in {time.perf_counter() - started:.2f} s; held-out windows "
              f"(they stopped the training): MAE {_number(mae)}, RMSE {_number(rmse)} in {column}'s units", file=out)
    else:
        low, high = saved["scaler"]["low"], saved["scaler"]["high"]
        print(f"Model {load}: lookback {lookback}, horizon {horizon}, inputs scaled from {low:g}..{high:g} "
              f"(no training)", file=out)
        if values.min() < low or values.max() > high:
            print(f"Note: {column} spans {values.min():g}..{values.max():g} here, beyond the {low:g}..{high:g} the "
                  f"model was trained on; its forecasts extrapolate", file=out)
    output = Path(output or Path(path).with_name(f"{Path(path).stem}_forecast.csv"))
    if load is None:
        # The last value a training target reached: what --load's backtests are out of sample after.
        last_trained = trainable - 1 + lookback + horizon - 1
        trained_until = f"step {last_trained + 1}" if dates is None else dates.text(dates.values[[last_trained]])[0]
        seen = "none trained on"
    else:
        trained_until = saved.get("trained_until")
        seen = (f"the model trained on values up to {trained_until} of its series" if trained_until
                else "the model's training data unknown")
    table = _backtest(model, scaler, values, dates, column, lookback, horizon, backtest, season, seen, out)
    prediction = scaler.inverse_transform(forecast_direct(model, scaled, lookback))
    with atomic_write(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        if dates is None:
            writer.writerow(["step", column])
            writer.writerows([step, f"{value:.6g}"] for step, value in enumerate(prediction, 1))
        else:
            writer.writerow([dates.column or "date", column])  # pandas writes its index unnamed
            writer.writerows(zip(dates.text(dates.following(horizon)), (f"{value:.6g}" for value in prediction)))
    print(f"Forecast: {output}", file=out)
    if backtest_csv and not table:
        print("Backtest CSV: none written (no backtest)", file=out)
    if backtest_csv and table:
        backtest_path = output.with_name(f"{output.stem}_backtest.csv")
        with atomic_write(backtest_path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["method", "mae", "rmse", "origins", "horizon"])
            writer.writerows([name, repr(mae), repr(rmse), backtest, horizon] for name, mae, rmse in table)
        print(f"Backtest: {backtest_path}", file=out)
    if save:
        model.save(save, metadata={
            "column": column, "lookback": lookback, "horizon": horizon,
            "scaler": {"kind": "minmax", "low": float(values.min()), "high": float(values.max())},
            "date_column": None if dates is None else dates.column, "date_step": step_text,
            "trained_until": trained_until})
        print(f"Model: {save} (inputs scaled to 0..1 from {values.min():g}..{values.max():g}; see its metadata; "
              f"forecast again with --load)", file=out)
    if plot_path != "":
        _plot(plot_path or output.with_suffix(".png"), values, dates, prediction, column, horizon, out)
    return prediction


def _backtest(model, scaler, values, dates, column, lookback, horizon, count, season, seen, out):
    """Prints the backtest table and returns its rows [(method, MAE, RMSE)] (empty without one)."""
    if count == 0:
        print("Backtest: none (--backtest 0, or too few values to keep forecast origins out of training)", file=out)
        return []
    origins = np.arange(len(values) - horizon - count + 1, len(values) - horizon + 1)
    truth = values[origins[:, None] + np.arange(horizon)]
    windows = scaler.transform(values)[origins[:, None] - lookback + np.arange(lookback)][:, :, None]
    rows = [("fastgru GRU", *errors(_unscale(scaler, model.predict(windows)), truth)),
            ("naive (last value)", *errors(naive_forecasts(values, origins, horizon), truth))]
    if season is not None:
        rows.append((f"seasonal naive ({season})", *errors(seasonal_naive_forecasts(values, origins, horizon, season),
                                                            truth)))
    first, last = (dates.text(dates.values[[origins[0], origins[-1]]]) if dates is not None
                   else (f"step {origins[0] + 1}", f"step {origins[-1] + 1}"))
    print(f"Backtest: {count} forecast origins ({first} .. {last}, the first forecast value of each), {horizon} steps "
          f"each, {seen}; errors in {column}'s units:", file=out)
    width = max(len(name) for name, _, _ in rows)
    print(f"  {'method':<{width}}  {'MAE':>10}  {'RMSE':>10}", file=out)
    for name, mae, rmse in rows:
        print(f"  {name:<{width}}  {_number(mae):>10}  {_number(rmse):>10}", file=out)
    if season is None:
        print("  seasonal naive: no season (the dates do not make one obvious; --season S gives one)", file=out)
    return rows


def _plot(path, values, dates, prediction, column, horizon, out):
    with png_axes(path, out) as axes:
        if axes is None:
            return
        if dates is None:
            past, future, label = np.arange(len(values)), np.arange(len(values), len(values) + horizon), "step"
        else:  # matplotlib reads datetime64 in seconds for any calendar
            past = dates.values.astype("datetime64[s]")
            future, label = dates.following(horizon).astype("datetime64[s]"), dates.column
        axes.plot(past, values, color="0.3", label=column)
        axes.plot(future, prediction, color="tab:red", label="forecast")
        axes.set_xlabel(label)
