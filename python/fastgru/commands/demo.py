"""``fastgru demo``: forecast the yearly sunspot numbers one step ahead.

Zhang (2003)'s protocol: train on 1700–1920, forecast each year of 1921–1987 from the true
values before it, score MSE and MAE. The forecaster is an average of a few small GRUs trained
from different seeds (averaging removes most of one network's seed-to-seed spread); the
baselines are persistence (next year = this year) and AR(9) fitted by least squares on the same
training years.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..datasets import load_sunspots
from ..layers import GRU
from ..timeseries import Scaler, make_windows
from ..training import AdamW, Model
from . import png_axes

TRAIN_LAST, TEST_FIRST, TEST_LAST = 1920, 1921, 1987
LOOKBACK = 12


def ar_baseline(values, years, order=9):
    """One-step AR(order) forecasts (least squares with intercept on years <= TRAIN_LAST) for
    the test years; returns (predictions, truth)."""
    X, y = make_windows(values, order)
    target_years = years[order:]
    X = np.hstack([X[:, :, 0], np.ones((len(X), 1))])
    train = target_years <= TRAIN_LAST
    test = (target_years >= TEST_FIRST) & (target_years <= TEST_LAST)
    coefficients, *_ = np.linalg.lstsq(X[train], y[train, 0], rcond=None)
    return X[test] @ coefficients, y[test, 0]


def train_forecaster(values, years, members=5, epochs=300, seed=0, verbose="auto", out=sys.stdout):
    """Trains the GRU ensemble; returns (models, scaler, training seconds)."""
    scaler = Scaler("minmax").fit(values[years <= TRAIN_LAST])
    X, y = make_windows(scaler.transform(values), LOOKBACK)
    train = years[LOOKBACK:] <= TRAIN_LAST
    models, started = [], time.perf_counter()
    for member in range(members):
        member_seed = seed + member
        model = Model(GRU(1, 32, batch_first=True, seed=member_seed), outputs=1, loss="mse",
                      optimizer=AdamW(learning_rate=3e-3, weight_decay=0.2), seed=member_seed)
        begun = time.perf_counter()
        history = model.fit(X[train], y[train], epochs=epochs, batch_size=16, verbose=verbose)
        print(f"  GRU {member + 1}/{members}: {len(history.epochs)} epochs in {time.perf_counter() - begun:.2f} s, "
              f"training loss {history.history['loss'][-1]:.5f}", file=out, flush=True)
        models.append(model)
    return models, scaler, time.perf_counter() - started


def forecast(models, scaler, values, years):
    """One-step forecasts of the test years: (years, predictions, truth)."""
    X, y = make_windows(scaler.transform(values), LOOKBACK)
    target_years = years[LOOKBACK:]
    test = (target_years >= TEST_FIRST) & (target_years <= TEST_LAST)
    scaled = np.mean([m.predict(X[test])[:, 0] for m in models], axis=0)
    return target_years[test], scaler.inverse_transform(scaled), values[LOOKBACK:][test]


def plot(axes, years, values, test_years, predictions):
    shown = years >= 1850
    axes.plot(years[shown], values[shown], color="0.3", label="sunspot number")
    axes.plot(test_years, predictions, color="tab:red", label="fastgru one-step forecast")
    axes.axvspan(TEST_FIRST, TEST_LAST, color="tab:red", alpha=0.06, label="test years")
    axes.set_xlabel("year")
    axes.set_ylabel("yearly mean sunspot number")


def run(members=5, epochs=300, seed=0, plot_path="sunspots_forecast.png", verbose="auto", out=sys.stdout) -> dict:
    """Runs the demo, prints its report and returns the scores."""
    years, values = load_sunspots()
    print(f"Sunspots {years[0]}-{years[-1]}: training on {years[0]}-{TRAIN_LAST}, forecasting "
          f"{TEST_FIRST}-{TEST_LAST} one year ahead (Zhang 2003's split)", file=out)
    print(f"Training {members} GRUs (hidden 32, lookback {LOOKBACK} years, AdamW, {epochs} epochs):", file=out, flush=True)
    models, scaler, seconds = train_forecaster(values, years, members, epochs, seed, verbose, out)
    test_years, predictions, truth = forecast(models, scaler, values, years)
    persistence = values[np.searchsorted(years, test_years) - 1]
    ar_predictions, ar_truth = ar_baseline(values, years)
    scores = {}
    rows = [("fastgru GRU", predictions, truth), ("persistence", persistence, truth), ("AR(9)", ar_predictions, ar_truth)]
    print(f"\n{'forecaster':<14}{'MSE':>9}{'MAE':>8}", file=out)
    for name, prediction, target in rows:
        error = prediction - target
        scores[name] = {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))}
        print(f"{name:<14}{scores[name]['mse']:9.1f}{scores[name]['mae']:8.2f}", file=out)
    print(f"\nTraining time: {seconds:.2f} s for {members} GRUs ({len(test_years)} test years)", file=out)
    scores["training_seconds"] = seconds
    if plot_path:
        with png_axes(plot_path, out) as axes:
            if axes is not None:
                plot(axes, years, values, test_years, predictions)
                scores["plot"] = plot_path
    return scores
