"""Anomaly detection in a series by forecast residuals: :func:`anomaly_scores`.

A GRU learns to forecast each value of the series from the ``lookback`` values before it (with
the Huber loss, so that the few anomalies it trains on pull little); a point's score is how far
its value lies from its forecast, in robust standard deviations of all the residuals (the median
absolute deviation times 1.4826). A value that breaks the series' pattern also spoils the
windows after it: the forecasts are made a second time from the series with its flagged values
replaced by their forecasts, so that an anomaly is scored once, not echoed by its neighbours
(repeated while new suspects appear).

:func:`rolling_zscore` is the usual baseline: each value's distance from the mean of the
``window`` values before it, in their standard deviations.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._arguments import positive_int, real_number
from .timeseries import make_windows

__all__ = ["AnomalyScores", "anomaly_scores", "rolling_zscore", "roc_auc", "precision_at_k"]

# MAD times this estimates the standard deviation of normally distributed residuals.
_MAD_TO_STD = 1.4826
# At most this many rounds of forecasting again from the cleaned series.
_CLEANING_PASSES = 5


def _as_series(series, name="series", minimum=2):
    values = np.asarray(series)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    if values.ndim != 1 or len(values) < minimum:
        raise ValueError(f"{name}: expected a (T,) series of at least {minimum} values, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf (fill or drop them first)")
    return values


@dataclass
class AnomalyScores:
    """What :func:`anomaly_scores` found, each array (T,) in the series' order.

    Attributes:
        values: the series (float64).
        forecasts: each value's forecast from the ``lookback`` values before it (NaN for the
            first ``lookback``, which have no full window).
        scores: |value - forecast| in robust standard deviations of the residuals (0 for the
            first ``lookback`` values: not scored).
        threshold: the score above which a value is an anomaly.
        lookback: the window the forecasts read.
    """

    values: np.ndarray
    forecasts: np.ndarray
    scores: np.ndarray
    threshold: float
    lookback: int

    @property
    def anomalies(self) -> np.ndarray:
        """Indices (int64) of the values scored above the threshold, in order."""
        return np.flatnonzero(self.scores > self.threshold)

    def plot(self, axes, label: str = "series") -> None:
        """Draws the series, its forecasts and the anomalies on matplotlib ``axes``."""
        steps = np.arange(len(self.values))
        axes.plot(steps, self.values, color="0.3", linewidth=1, label=label)
        axes.plot(steps, self.forecasts, color="tab:blue", linewidth=0.8, alpha=0.8, label="GRU forecast")
        flagged = self.anomalies
        axes.scatter(flagged, self.values[flagged], color="tab:red", zorder=3,
                     label=f"anomaly (score > {self.threshold:g})")
        axes.set_xlabel("step")


def _robust_scale(residuals):
    centre = np.median(residuals)
    spread = _MAD_TO_STD * np.median(np.abs(residuals - centre))
    return centre, spread if spread > 0 else max(float(np.std(residuals)), 1e-12)


def anomaly_scores(series, lookback: int = 24, threshold: float = 5.0, hidden: int = 32, epochs: int = 60,
                   seed: Optional[int] = 0) -> AnomalyScores:
    """Scores every value of a series by its one-step forecast residual.

    Args:
        series: (T,) real values in time order, T > lookback + 1.
        lookback: how many values before a point its forecast reads.
        threshold: the score (robust standard deviations) above which a value is an anomaly.
        hidden: the GRU's hidden size.
        epochs: training passes over the series' windows.
        seed: the GRU's initialisation and shuffling (None: a fresh one each call).
    Returns:
        an :class:`AnomalyScores` (scores (T,) float64, forecasts, the anomalies' indices, plot).
    """
    from .layers import GRU
    from .training import Adam, Huber, Model

    lookback = positive_int(lookback, "lookback")
    threshold = real_number(threshold, "threshold", "a number > 0", lambda value: value > 0)
    hidden, epochs = positive_int(hidden, "hidden"), positive_int(epochs, "epochs")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed: expected None or an int >= 0, got {seed!r}")
    values = _as_series(series, minimum=lookback + 2)
    # Robust scaling: the anomalies themselves must not set the scale.
    centre = np.median(values)
    spread = np.percentile(values, 75) - np.percentile(values, 25)
    scaled = (values - centre) / (spread if spread > 0 else 1.0)
    # Each window relative to its last value, and the step from there: free of the level, so
    # that a trend does not take the model out of the range it trained on.
    X, y = make_windows(scaled, lookback)
    model = Model(GRU(1, hidden, batch_first=True, seed=seed), outputs=1, loss=Huber(0.1),
                  optimizer=Adam(3e-3), clip_grad_norm=1.0, seed=seed)
    model.fit(X - X[:, -1:], y - X[:, -1], epochs=epochs, batch_size=32, verbose=0)

    def residual_scores(inputs):
        windows, _ = make_windows(inputs, lookback)
        forecasts = windows[:, -1, 0] + model.predict(windows - windows[:, -1:])[:, 0].astype(np.float64)
        residuals = scaled[lookback:] - forecasts
        middle, scale = _robust_scale(residuals)
        return forecasts, np.abs(residuals - middle) / scale

    forecasts, scores = residual_scores(scaled)
    # Again from the series with its suspect values (above half the threshold) replaced by their
    # forecasts, until no new one appears (see the module's docstring).
    cleaned, replaced = scaled.copy(), np.zeros(len(values), bool)
    for _ in range(_CLEANING_PASSES):
        suspect = np.flatnonzero(scores > threshold / 2) + lookback
        suspect = suspect[~replaced[suspect]]
        if not len(suspect):
            break
        cleaned[suspect], replaced[suspect] = forecasts[suspect - lookback], True
        forecasts, scores = residual_scores(cleaned)
    full_forecasts = np.full(len(values), np.nan)
    full_forecasts[lookback:] = forecasts * (spread if spread > 0 else 1.0) + centre
    full_scores = np.zeros(len(values))
    full_scores[lookback:] = scores
    return AnomalyScores(values, full_forecasts, full_scores, threshold, lookback)


def rolling_zscore(series, window: int = 50) -> np.ndarray:
    """The baseline: |x_t - mean| / std over the ``window`` values before t (fewer at the
    start; 0 for the first two values and where the std is 0). Returns (T,) float64."""
    values = _as_series(series)
    window = positive_int(window, "window")
    scores = np.zeros(len(values))
    # Each mean and std from its window's values (not running sums, which cancel badly when the
    # level is large against the spread): the first full windows at once, the shorter ones first.
    for t in range(2, min(window, len(values))):
        scores[t] = _distance(values[t], values[:t])
    if len(values) > window:
        history = np.lib.stride_tricks.sliding_window_view(values[:-1], window)
        mean, std = history.mean(axis=1), history.std(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores[window:] = np.where(std > 0, np.abs(values[window:] - mean) / std, 0.0)
    return scores


def _distance(value, history):
    std = history.std()
    return abs(value - history.mean()) / std if std > 0 else 0.0


def _labels_and_scores(labels, scores):
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels: expected the shape of scores {scores.shape}, got {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels: expected 0 (normal) and 1 (anomaly) only")
    return labels.astype(bool), scores


def roc_auc(labels, scores) -> float:
    """The area under the ROC curve: the chance that an anomaly outscores a normal value
    (ties count half). labels (T,) 0/1, scores (T,)."""
    labels, scores = _labels_and_scores(labels, scores)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("labels: expected both anomalies (1) and normal values (0)")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks of ties (1-based), as the Mann-Whitney statistic needs.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def precision_at_k(labels, scores, k: Optional[int] = None) -> float:
    """The share of anomalies among the ``k`` highest scores (default: k = the number of
    anomalies)."""
    labels, scores = _labels_and_scores(labels, scores)
    k = int(labels.sum()) if k is None else positive_int(k, "k")
    if not 1 <= k <= len(scores):
        raise ValueError(f"k: expected an int in 1..{len(scores)}, got {k}")
    top = np.argsort(-scores, kind="mergesort")[:k]
    return float(labels[top].mean())
