"""fastgru.timeseries: windows, scaling (ours and scikit-learn's) and forecasts."""

import numpy as np
import pytest

import fastgru
from fastgru.timeseries import Scaler, forecast_direct, forecast_recursive, inverse_scale, make_windows
from fastgru.training import Model


def test_windows_of_a_univariate_series():
    X, y = make_windows(np.arange(10.0), lookback=3, horizon=2, stride=2)
    assert X.shape == (3, 3, 1) and y.shape == (3, 2)
    assert X[1, :, 0].tolist() == [2, 3, 4] and y[1].tolist() == [5, 6]
    assert X[-1, -1, 0] == 6 and y[-1, -1] == 8  # (10 - 3 - 2) // 2 + 1 windows


def test_windows_of_a_multivariate_series_and_its_targets():
    series = np.stack([np.arange(8.0), 10 * np.arange(8.0), -np.arange(8.0)], axis=1)
    X, y = make_windows(series, lookback=4, target=1)
    assert X.shape == (4, 4, 3) and y.shape == (4, 1) and y[:, 0].tolist() == [40, 50, 60, 70]
    X, y = make_windows(series, lookback=4, horizon=2, target=[0, 2])
    assert y.shape == (3, 2, 2) and y[0].tolist() == [[4, -4], [5, -5]]


@pytest.mark.parametrize("kwargs,message", [
    (dict(series=np.arange(4.0), lookback=3, horizon=2), "at least lookback \\+ horizon = 5 steps, got 4"),
    (dict(series=np.arange(9.0), lookback=0), "lookback: expected an int >= 1, got 0"),
    (dict(series=np.ones((9, 2)), lookback=2, target=2), "target: expected column indices in 0..1"),
    (dict(series=np.array([1.0, np.nan, 2, 3]), lookback=1), "series: expected finite values"),
    (dict(series=np.ones((2, 2, 2)), lookback=1), "series: expected a \\(T,\\) or \\(T, F\\) array"),
])
def test_window_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_windows(**kwargs)


def test_scaler_matches_scikit_learn():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    data = np.random.default_rng(0).standard_normal((50, 3)) * [1, 10, 100] + [0, 5, -7]
    for ours, theirs in [(Scaler("minmax"), preprocessing.MinMaxScaler()),
                         (Scaler("minmax", (-1, 1)), preprocessing.MinMaxScaler((-1, 1))),
                         (Scaler("standard"), preprocessing.StandardScaler())]:
        assert np.allclose(ours.fit_transform(data), theirs.fit_transform(data))
        assert np.allclose(ours.inverse_transform(ours.transform(data)), data)
    series = np.arange(5.0)
    assert Scaler().fit_transform(series).tolist() == [0, 0.25, 0.5, 0.75, 1]  # (T,) stays (T,)
    with pytest.raises(RuntimeError, match="call fit first"):
        Scaler().transform(series)
    with pytest.raises(ValueError, match="expected 1 column\\(s\\) as fitted"):
        Scaler().fit(series).transform(data)


def test_inverse_scale_with_scikit_learn_scalers():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    data = np.random.default_rng(1).standard_normal((40, 3)) * [1, 10, 100]
    for scaler in (preprocessing.MinMaxScaler(), preprocessing.StandardScaler(), preprocessing.RobustScaler(), Scaler()):
        scaled = scaler.fit_transform(data)
        predictions = scaled[:, 2].reshape(8, 5)  # any shape
        assert np.allclose(inverse_scale(scaler, predictions, column=2), data[:, 2].reshape(8, 5))
    with pytest.raises(ValueError, match="column: expected an index in 0..2, got 3"):
        inverse_scale(preprocessing.MinMaxScaler().fit(data), [1.0], column=3)


def test_recursive_forecast_feeds_predictions_back():
    model = Model(fastgru.GRU(1, 4, batch_first=True, dtype="float64", seed=0), outputs=1, seed=0)
    history = np.sin(np.arange(30) / 3)
    forecast = forecast_recursive(model, history, steps=4, lookback=8)
    window = list(history[-8:])
    for value in forecast:
        expected = model.predict(np.array(window)[None, :, None])[0, 0]
        assert value == pytest.approx(expected, rel=1e-12)
        window = window[1:] + [value]
    with pytest.raises(ValueError, match="history: expected at least lookback = 8 steps, got 5"):
        forecast_recursive(model, history[:5], steps=2, lookback=8)


def test_direct_forecast_learns_a_periodic_series():
    series = np.sin(np.arange(400) * 2 * np.pi / 25)
    X, y = make_windows(series, lookback=30, horizon=5)
    model = Model(fastgru.GRU(1, 16, batch_first=True, seed=0), outputs=5, learning_rate=1e-2, seed=0)
    model.fit(X, y, epochs=20, batch_size=32, verbose=0)
    forecast = forecast_direct(model, series, lookback=30)
    truth = np.sin(np.arange(400, 405) * 2 * np.pi / 25)
    assert forecast.shape == (5,) and np.abs(forecast - truth).max() < 0.1


def test_more_argument_errors():
    with pytest.raises(ValueError, match="target: expected at least one column index, got none"):
        make_windows(np.ones((9, 2)), lookback=2, target=[])
    with pytest.raises(ValueError, match="feature_range: expected \\(low, high\\)"):
        Scaler(feature_range=5)
    with pytest.raises(RuntimeError, match="scaler: call fit first"):
        inverse_scale(Scaler(), [1.0])
