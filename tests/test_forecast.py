"""`fastgru forecast` as a forecaster uses it: dates continued, errors in the series' units, the
backtest against naive and seasonal-naive forecasts, and forecasting again with --load."""

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastgru
from fastgru.commands import forecast

pytestmark = pytest.mark.best_isa_only

SUNSPOTS = Path(fastgru.__file__).parent / "datasets" / "sunspots.csv"


def fastgru_command(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastgru", *arguments], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def write_series(path, dates, values, date_header="date", value_header="value"):
    path.write_text(f"{date_header},{value_header}\n" + "".join(f"{d},{float(v)!r}\n" for d, v in zip(dates, values)))
    return path


def seasonal_series(count, season=12, seed=0):
    steps = np.arange(count)
    noise = np.random.default_rng(seed).normal(0, 1, count)
    return np.round(100 + 10 * np.sin(2 * np.pi * steps / season) + 0.05 * steps + noise, 3)


def run_quietly(path, **settings):
    """forecast.run in this process, small and fast; (the forecast CSV's rows, the printed text)."""
    out = io.StringIO()
    settings = {"epochs": 2, "hidden": 4, "plot_path": "", "verbose": 0, "out": out, **settings}
    forecast.run(path, **settings)
    output = Path(settings.get("output") or path.with_name(f"{path.stem}_forecast.csv"))
    with open(output, newline="") as handle:
        return list(csv.reader(handle)), out.getvalue()


def test_daily_dates_continue_by_days(tmp_path):
    days = np.arange(np.datetime64("2023-12-01"), np.datetime64("2024-03-01"))  # through a leap day
    path = write_series(tmp_path / "daily.csv", days, seasonal_series(len(days), 7))
    rows, text = run_quietly(path, column="value", horizon=3, lookback=14)
    assert rows == [["date", "value"]] + [[day, rows[i + 1][1]] for i, day in
                                          enumerate(["2024-03-01", "2024-03-02", "2024-03-03"])]
    assert "dates from the first column 'date', 1 day apart" in text
    assert "seasonal naive (7)" in text  # a weekly season for daily dates


def test_month_start_dates_continue_by_calendar_months(tmp_path):
    months = np.arange(np.datetime64("2019-01"), np.datetime64("2023-11")).astype("datetime64[D]")
    path = write_series(tmp_path / "monthly.csv", months, seasonal_series(len(months)))
    rows, text = run_quietly(path, column="value", horizon=4, lookback=12)
    assert [row[0] for row in rows] == ["date", "2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"]
    assert "1 month apart" in text and "seasonal naive (12)" in text


def test_an_unnamed_index_of_dates_is_used(tmp_path):
    """pandas' DataFrame.to_csv writes a date index as a first column without a name."""
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-03-01"))
    path = write_series(tmp_path / "pandas.csv", days, seasonal_series(len(days), 7), date_header="")
    rows, text = run_quietly(path, column="value", horizon=2, lookback=7)
    assert [row[0] for row in rows] == ["date", "2024-03-01", "2024-03-02"] and "1 day apart" in text


def test_month_end_and_month_resolution_dates_continue(tmp_path):
    ends = (np.arange(np.datetime64("2019-02"), np.datetime64("2023-12")) + 1).astype("datetime64[D]") - 1
    path = write_series(tmp_path / "ends.csv", ends, seasonal_series(len(ends)))
    rows, _ = run_quietly(path, column="value", horizon=3, lookback=12)
    assert [row[0] for row in rows[1:]] == ["2023-12-31", "2024-01-31", "2024-02-29"]
    quarters = np.arange(np.datetime64("2010-01"), np.datetime64("2024-01"), 3)
    path = write_series(tmp_path / "quarters.csv", quarters, seasonal_series(len(quarters), 4))
    rows, text = run_quietly(path, column="value", horizon=2, lookback=8)
    assert [row[0] for row in rows[1:]] == ["2024-01", "2024-04"] and "3 months apart" in text
    assert "seasonal naive (4)" in text


def test_yearly_sunspots_continue_their_years(tmp_path):
    path = tmp_path / "sunspots.csv"
    path.write_bytes(SUNSPOTS.read_bytes())
    rows, text = run_quietly(path, column="SUNACTIVITY", horizon=3)
    assert [row[0] for row in rows] == ["YEAR", "2009", "2010", "2011"] and rows[0][1] == "SUNACTIVITY"
    assert "1 year apart" in text and "seasonal naive: no season" in text


def test_hours_keep_their_form_and_a_named_date_column_is_used(tmp_path):
    hours = np.arange(np.datetime64("2024-01-01T00:00"), np.datetime64("2024-01-05T00:00"), np.timedelta64(1, "h"))
    stamps = [str(hour).replace("T", " ") for hour in hours]
    path = tmp_path / "hourly.csv"
    path.write_text("load,when\n" + "".join(f"{v},{s}\n" for v, s in zip(seasonal_series(len(stamps), 24), stamps)))
    rows, text = run_quietly(path, column="load", horizon=2, lookback=24, date_column="when")
    assert rows == [["when", "load"], ["2024-01-05 00:00", rows[1][1]], ["2024-01-05 01:00", rows[2][1]]]
    assert "seasonal naive (24)" in text


def test_without_dates_the_steps_are_numbered(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("t,value\n" + "".join(f"{i},{v}\n" for i, v in enumerate(seasonal_series(80))))
    rows, text = run_quietly(path, column="value", horizon=2, lookback=12)
    assert [row[0] for row in rows] == ["step", "1", "2"]
    assert "the first column 't' does not hold ISO dates" in text and "seasonal naive: no season" in text
    # Bare 4-digit numbers are years only in a column named for years, or named by --date-column.
    path.write_text("id,value\n" + "".join(f"{1000 + i},{v}\n" for i, v in enumerate(seasonal_series(80))))
    assert [row[0] for row in run_quietly(path, column="value", horizon=1, lookback=12)[0]] == ["step", "1"]
    rows, _ = run_quietly(path, column="value", horizon=1, lookback=12, date_column="id")
    assert rows[1][0] == "1080"


@pytest.mark.parametrize("dates, message", [
    (["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"],
     "irregular.csv:4: date 2024-01-04 comes 2 days after 2024-01-02; expected the dates of column 'date' evenly "
     "spaced, 1 day apart as most are"),
    (["2024-01-01", "2024-02-01", "2024-03-15", "2024-04-01"],
     "irregular.csv:4: date 2024-03-15 is not at the start of its month as most dates of column 'date' are"),
    (["2024-01-01", "2024-02-01", "2024-04-01", "2024-05-01"],
     "irregular.csv:4: date 2024-04-01 comes 2 months after 2024-02-01"),
    (["2024-01-02", "2024-01-01", "2024-01-03", "2024-01-04"],
     "irregular.csv:3: date 2024-01-01 comes before 2024-01-02; expected the dates of column 'date' in increasing"),
    (["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 01:00", "2024-01-01 02:00"],
     "irregular.csv:4: date 2024-01-01T01:00 repeats 2024-01-01T01:00"),
])
def test_irregular_dates_are_refused_naming_the_first_gap(tmp_path, dates, message):
    path = write_series(tmp_path / "irregular.csv", dates, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError) as error:
        forecast.read_series(path, "value")
    assert message in str(error.value)


def test_a_named_date_column_must_hold_dates(tmp_path):
    path = write_series(tmp_path / "s.csv", ["2024-01-01", "2024-01-02", "soon"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"s.csv:4: --date-column 'date' holds 'soon', expected an ISO date"):
        forecast.read_series(path, "value", "date")
    with pytest.raises(ValueError, match=r"--date-column: expected one of \['date', 'value'\], got 'day'"):
        forecast.read_series(path, "value", "day")
    with pytest.raises(ValueError, match="--date-column: expected a column other than --column 'value'"):
        forecast.read_series(path, "value", "value")


def test_backtest_equals_a_hand_computation_in_the_series_units(tmp_path):
    values = seasonal_series(120, 12, seed=3)
    months = np.arange(np.datetime64("2010-01"), np.datetime64("2020-01"))
    path = write_series(tmp_path / "m.csv", months, values)
    model_path = tmp_path / "m.safetensors"
    rows, text = run_quietly(path, column="value", horizon=3, lookback=12, backtest=4, backtest_csv=True,
                             save=model_path)
    with open(tmp_path / "m_forecast_backtest.csv", newline="") as handle:
        table = {row["method"]: row for row in csv.DictReader(handle)}
    assert set(table) == {"fastgru GRU", "naive (last value)", "seasonal naive (12)"}
    naive, seasonal, gru, truth = [], [], [], []
    model = fastgru.load(model_path)
    low, high = model.metadata["scaler"]["low"], model.metadata["scaler"]["high"]
    assert (low, high) == (values.min(), values.max())
    for origin in range(120 - 3 - 4 + 1, 120 - 3 + 1):  # the last 4 origins with 3 known values after them
        window = (values[origin - 12:origin] - low) / (high - low)
        gru.extend(low + (high - low) * model.predict(window[None, :, None])[0].astype(np.float64))
        for step in range(3):
            truth.append(values[origin + step])
            naive.append(values[origin - 1])
            seasonal.append(values[origin + step - 12])
    for name, predicted in (("naive (last value)", naive), ("seasonal naive (12)", seasonal), ("fastgru GRU", gru)):
        difference = np.array(predicted) - np.array(truth)
        assert float(table[name]["mae"]) == pytest.approx(np.abs(difference).mean(), rel=1e-6), name
        assert float(table[name]["rmse"]) == pytest.approx(np.sqrt((difference ** 2).mean()), rel=1e-6), name
        assert table[name]["origins"] == "4" and table[name]["horizon"] == "3"
    assert "Backtest: 4 forecast origins (2019-07 .. 2019-10" in text and "none trained on" in text
    assert model.metadata["trained_until"] == "2019-06"  # the last target before the first backtest origin


def test_seasonal_naive_reaches_back_whole_seasons_beyond_the_first(tmp_path):
    values = np.arange(40, dtype=np.float64) ** 2
    origins = np.array([30, 31])
    by_hand = [[values[o + s - 4 * (s // 4 + 1)] for s in range(6)] for o in origins]
    assert forecast.seasonal_naive_forecasts(values, origins, 6, 4).tolist() == by_hand
    assert by_hand[0] == [values[26], values[27], values[28], values[29], values[26], values[27]]


def test_errors_are_in_the_series_units(tmp_path):
    """The same series in units 1000 times larger: the same scaled training, errors 1000 times larger."""
    values = seasonal_series(100, 12, seed=5)
    reported = []
    for factor in (1, 1000):
        path = write_series(tmp_path / f"x{factor}.csv", range(100), values * factor, "t")
        _, text = run_quietly(path, column="value", horizon=2, lookback=12, epochs=5)
        line = next(line for line in text.splitlines() if "held-out windows" in line)
        assert "in value's units" in line
        naive_row = next(line for line in text.splitlines() if "naive (last value)" in line)
        reported.append((float(line.split("MAE ")[1].split(",")[0]), float(naive_row.split()[-2])))
    (mae, naive), (mae_k, naive_k) = reported
    assert mae_k == pytest.approx(1000 * mae, rel=2e-3) and naive_k == pytest.approx(1000 * naive, rel=2e-3)


def test_load_forecasts_again_exactly_and_refuses_what_does_not_fit(tmp_path):
    months = np.arange(np.datetime64("2015-01"), np.datetime64("2021-01")).astype("datetime64[D]")
    path = write_series(tmp_path / "sales.csv", months, seasonal_series(len(months), 12, seed=1), value_header="sales")
    model = tmp_path / "sales.safetensors"
    trained = fastgru_command("forecast", str(path), "--column", "sales", "--horizon", "4", "--lookback", "12",
                              "--epochs", "5", "--hidden", "8", "--save", str(model), "--plot", "", "--quiet")
    assert trained.returncode == 0, trained.stderr
    first = (tmp_path / "sales_forecast.csv").read_text()
    again = fastgru_command("forecast", str(path), "--load", str(model), "--output", str(tmp_path / "again.csv"),
                            "--plot", "")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.csv").read_text() == first and first.startswith("date,sales\n2021-01-01,")
    assert "no training" in again.stdout and "Trained" not in again.stdout
    backtest = lambda output: [line for line in output.splitlines() if line.startswith("  ")]  # noqa: E731
    assert backtest(again.stdout) == backtest(trained.stdout)  # the same model and data: the same table

    larger = write_series(tmp_path / "larger.csv", months, 2 * seasonal_series(len(months), 12, seed=1),
                          value_header="sales")
    result = fastgru_command("forecast", str(larger), "--load", str(model), "--plot", "")
    assert result.returncode == 0 and "beyond the" in result.stdout and "its forecasts extrapolate" in result.stdout

    refusals = [
        (["--horizon", "6"], "--horizon: the model", "was trained with --horizon 4, got 6"),
        (["--lookback", "24"], "--lookback: the model", "was trained with --lookback 12, got 24"),
        (["--column", "other"], "--column: the model", "was trained with --column sales, got other"),
    ]
    for extra, *messages in refusals:
        result = fastgru_command("forecast", str(path), "--load", str(model), "--plot", "", *extra)
        assert result.returncode == 2 and all(message in result.stderr for message in messages), result.stderr
    result = fastgru_command("forecast", str(path), "--load", str(model), "--epochs", "3", "--save", "x")
    assert result.returncode == 2 and "--epochs, --save: options of training, and --load trains nothing" in result.stderr
    renamed = write_series(tmp_path / "renamed.csv", months, np.ones(len(months)), value_header="revenue")
    result = fastgru_command("forecast", str(renamed), "--load", str(model), "--plot", "")
    assert result.returncode == 2 and "--column: expected one of ['date', 'revenue'], got 'sales'" in result.stderr
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-03-01"))
    daily = write_series(tmp_path / "daily.csv", days, np.ones(len(days)), value_header="sales")
    result = fastgru_command("forecast", str(daily), "--load", str(model), "--plot", "")
    assert result.returncode == 2 and "trained on dates 1 month apart; " in result.stderr and "1 day apart" in result.stderr
    short = write_series(tmp_path / "short.csv", months[:8], np.ones(8), value_header="sales")
    result = fastgru_command("forecast", str(short), "--load", str(model), "--plot", "")
    assert result.returncode == 2 and "the model reads --lookback 12, so at least 12 are needed" in result.stderr
    plain = tmp_path / "plain.safetensors"
    fastgru.Model(fastgru.GRU(1, 4, batch_first=True), outputs=4).save(plain)
    result = fastgru_command("forecast", str(path), "--load", str(plain), "--plot", "")
    assert result.returncode == 2 and "--load: expected a model saved by `fastgru forecast --save`" in result.stderr


def test_forecast_options_are_checked(tmp_path):
    path = write_series(tmp_path / "s.csv", range(60), seasonal_series(60), "t")
    for arguments, message in [
        (["--column", "value"], "--horizon: required to train (or --load MODEL.safetensors)"),
        (["--column", "value", "--horizon", "2", "--backtest", "-1"], "--backtest: expected an int >= 0, got -1"),
        (["--column", "value", "--horizon", "2", "--season", "1"], "--season: expected an int >= 2"),
        (["--column", "value", "--horizon", "2", "--backtest", "40"], "--backtest 40 at least"),
        (["--column", "value", "--horizon", "2", "--season", "57", "--epochs", "1"],
         "--season: expected at most 56 (the values before the first backtest origin), got 57"),
    ]:
        result = fastgru_command("forecast", str(path), "--plot", "", *arguments)
        assert result.returncode == 2 and message in result.stderr, (arguments, result.stderr)
