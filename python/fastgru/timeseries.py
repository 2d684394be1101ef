"""Time-series tools: windows cut from a series, scaling, and multi-step forecasts.

The usual path: scale the series (:class:`Scaler`, or any scikit-learn scaler), cut it into
``(samples, lookback, features)`` windows with their next values (:func:`make_windows`), fit a
:class:`fastgru.Model`, forecast (:func:`forecast_recursive` or :func:`forecast_direct`) and
scale the forecast back (:meth:`Scaler.inverse_transform`, or :func:`inverse_scale` for a
scikit-learn scaler fitted on several columns).
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["make_windows", "Scaler", "inverse_scale", "forecast_recursive", "forecast_direct"]


def _as_series(series, name="series"):
    array = np.asarray(series, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise ValueError(f"{name}: expected a (T,) or (T, F) array with T >= 1, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf (fill or drop them first)")
    return array


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def make_windows(series, lookback: int, horizon: int = 1, stride: int = 1,
                 target: Union[None, int, Sequence[int]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Cuts a series into input windows and the values that follow each.

    Args:
        series: (T,) or (T, F) values, in time order.
        lookback: steps in each input window.
        horizon: following steps to predict.
        stride: steps between the starts of consecutive windows.
        target: the column(s) to predict (default: every column; a (T,) series has one).
    Returns:
        ``(X, y)``: X (N, lookback, F) float64 with F = 1 for a (T,) series; y (N, horizon)
        for one target column, else (N, horizon, targets). Window i starts at ``i * stride``;
        N = (T - lookback - horizon) // stride + 1.
    """
    values = _as_series(series)
    lookback, horizon, stride = _positive(lookback, "lookback"), _positive(horizon, "horizon"), _positive(stride, "stride")
    if values.ndim == 1:
        values = values[:, None]
    steps, features = values.shape
    if steps < lookback + horizon:
        raise ValueError(f"series: expected at least lookback + horizon = {lookback + horizon} steps, got {steps}")
    columns = list(range(features)) if target is None else np.atleast_1d(target).tolist()
    if not columns:
        raise ValueError("target: expected at least one column index, got none")
    for column in columns:
        if not isinstance(column, numbers.Integral) or not 0 <= column < features:
            raise ValueError(f"target: expected column indices in 0..{features - 1}, got {target!r}")
    starts = np.arange(0, steps - lookback - horizon + 1, stride)
    X = values[starts[:, None] + np.arange(lookback)]
    y = values[(starts + lookback)[:, None] + np.arange(horizon)][:, :, columns]
    return X, (y[:, :, 0] if len(columns) == 1 else y)


class Scaler:
    """Per-column scaling with scikit-learn's interface (fit / transform / inverse_transform).

    ``kind="minmax"`` maps each column's fitted range to ``feature_range`` (default 0..1);
    ``kind="standard"`` to zero mean and unit variance. Accepts (T,) or (T, F) arrays and
    returns arrays of the same shape (float64).
    """

    def __init__(self, kind: str = "minmax", feature_range: Tuple[float, float] = (0.0, 1.0)):
        if kind not in ("minmax", "standard"):
            raise ValueError(f"kind: expected 'minmax' or 'standard', got {kind!r}")
        if (not isinstance(feature_range, (tuple, list)) or len(feature_range) != 2
                or not all(isinstance(v, (int, float)) for v in feature_range) or not feature_range[0] < feature_range[1]):
            raise ValueError(f"feature_range: expected (low, high) with low < high, got {feature_range!r}")
        self.kind, self.feature_range = kind, tuple(float(v) for v in feature_range)
        self.offset_ = self.scale_ = None

    def fit(self, values) -> "Scaler":
        values = _as_series(values, "values")
        columns = values.reshape(values.shape[0], -1)
        if self.kind == "minmax":
            low, high = columns.min(axis=0), columns.max(axis=0)
            span = np.where(high > low, high - low, 1.0)
            self.scale_ = (self.feature_range[1] - self.feature_range[0]) / span
            self.offset_ = self.feature_range[0] - low * self.scale_
        else:
            std = columns.std(axis=0)
            self.scale_ = 1.0 / np.where(std > 0, std, 1.0)
            self.offset_ = -columns.mean(axis=0) * self.scale_
        self._width = columns.shape[1]
        return self

    def _columns(self, values, name):
        if self.scale_ is None:
            raise RuntimeError(f"{type(self).__name__}: call fit first")
        values = _as_series(values, name)
        columns = values.reshape(values.shape[0], -1)
        if columns.shape[1] != self._width:
            raise ValueError(f"{name}: expected {self._width} column(s) as fitted, got shape {values.shape}")
        return values, columns

    def transform(self, values) -> np.ndarray:
        values, columns = self._columns(values, "values")
        return (columns * self.scale_ + self.offset_).reshape(values.shape)

    def inverse_transform(self, values) -> np.ndarray:
        values, columns = self._columns(values, "values")
        return ((columns - self.offset_) / self.scale_).reshape(values.shape)

    def fit_transform(self, values) -> np.ndarray:
        return self.fit(values).transform(values)


def inverse_scale(scaler, values, column: int = 0, n_features: Optional[int] = None) -> np.ndarray:
    """Scales predictions of one column back with a scaler fitted on several columns.

    scikit-learn's scalers (MinMaxScaler, StandardScaler, RobustScaler...) and :class:`Scaler`
    invert whole rows; this places ``values`` (any shape) in ``column`` of rows of
    ``n_features`` columns (default: what the scaler was fitted on), inverts them and returns
    that column in ``values``' shape.
    """
    values = np.asarray(values, dtype=np.float64)
    if isinstance(scaler, Scaler) and scaler.scale_ is None:
        raise RuntimeError("scaler: call fit first")
    if n_features is None:
        n_features = getattr(scaler, "n_features_in_", getattr(scaler, "_width", None))
        if n_features is None:
            raise ValueError("n_features: the scaler does not say how many columns it was fitted on; pass n_features")
    if not 0 <= column < n_features:
        raise ValueError(f"column: expected an index in 0..{n_features - 1}, got {column}")
    rows = np.zeros((values.size, n_features))
    rows[:, column] = values.ravel()
    return np.asarray(scaler.inverse_transform(rows))[:, column].reshape(values.shape)


def _window_for(model, history, lookback):
    history = _as_series(history, "history")
    if history.ndim == 1:
        history = history[:, None]
    lookback = _positive(lookback, "lookback")
    if history.shape[0] < lookback:
        raise ValueError(f"history: expected at least lookback = {lookback} steps, got {history.shape[0]}")
    features = model.recurrent.input_size
    if history.shape[1] != features:
        raise ValueError(f"history: expected {features} column(s) (the model's input features), got {history.shape[1]}")
    return history[-lookback:].copy()


def forecast_recursive(model, history, steps: int, lookback: int) -> np.ndarray:
    """Forecasts ``steps`` values by feeding each one-step prediction back as input.

    The model maps a (lookback, F) window to the next step of all F columns (``outputs = F``,
    head ``"last"``). Returns (steps,) for F = 1, else (steps, F), in the model's scale.
    """
    window = _window_for(model, history, lookback)
    steps = _positive(steps, "steps")
    features = window.shape[1]
    if model.head != "last" or model.outputs != features:
        raise ValueError(f"model: a recursive forecast needs head 'last' with outputs = {features} (the input "
                         f"features), got head {model.head!r} with {model.outputs} outputs")
    out = np.empty((steps, features))
    for i in range(steps):
        out[i] = model.predict(window[None])[0]
        window = np.concatenate([window[1:], out[i : i + 1]])
    return out[:, 0] if features == 1 else out


def forecast_direct(model, history, lookback: int) -> np.ndarray:
    """Forecasts the model's whole horizon at once from the last ``lookback`` steps (a model
    trained on :func:`make_windows`' ``y`` with ``outputs = horizon``). Returns (horizon,)."""
    window = _window_for(model, history, lookback)
    if model.head != "last":
        raise ValueError(f"model: a direct forecast needs head 'last', got {model.head!r}")
    return model.predict(window[None])[0]
