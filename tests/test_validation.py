"""Validation on real data with fixed seeds: the sunspot demo, the estimators' defaults, and
UCR/UEA classification sets (their canonical train/test splits, read from sktime's package
data)."""

import time

import numpy as np
import pytest

import fastgru
from fastgru.commands import demo
from fastgru.datasets import load_sunspots, load_ucr
from fastgru.training import AdamW, LearningRateScheduler, Model, cosine_decay

pytestmark = pytest.mark.best_isa_only


def test_sunspots_data_is_the_yearly_series():
    years, values = load_sunspots()
    assert years[0] == 1700 and years[-1] == 2008 and len(values) == 309
    assert values[years == 1957][0] == pytest.approx(190.2)  # the record year


def test_demo_beats_ar9_on_sunspots(tmp_path):
    scores = demo.run(plot_path=None, verbose=0)
    assert scores["AR(9)"]["mse"] == pytest.approx(305.2, abs=0.1)  # the baseline the issue quotes
    assert scores["AR(9)"]["mae"] == pytest.approx(12.75, abs=0.01)
    assert scores["fastgru GRU"]["mse"] < 305
    assert scores["fastgru GRU"]["mse"] < scores["persistence"]["mse"] / 3
    assert scores["training_seconds"] < 120


def test_quantized_demo_forecasters_keep_their_accuracy():
    years, values = load_sunspots()
    models, scaler, _ = demo.train_forecaster(values, years, members=2, verbose=0)
    _, predictions, truth = demo.forecast(models, scaler, values, years)
    mse = np.mean((predictions - truth) ** 2)
    for mode in ("bf16", "int8"):
        _, quantized, _ = demo.forecast([m.quantize(mode) for m in models], scaler, values, years)
        assert abs(np.mean((quantized - truth) ** 2) / mse - 1) <= 0.03, mode


def patches(X, size):
    """(N, T) series as (N, T / size, size): `size` consecutive values per step."""
    return X[:, : X.shape[1] // size * size].reshape(len(X), -1, size)


def classify(name, patch, epochs, hidden=32, bidirectional=False):
    pytest.importorskip("sktime", reason="the UCR files ship with sktime==1.2.0 (the test extra)")
    X_train, y_train, classes = load_ucr(name, "train")
    X_test, y_test, _ = load_ucr(name, "test")
    layer = fastgru.GRU(patch, hidden, batch_first=True, bidirectional=bidirectional, seed=0)
    model = Model(layer, outputs=len(classes), loss="cross_entropy", optimizer=AdamW(3e-3), seed=0)
    started = time.perf_counter()
    model.fit(patches(X_train, patch), y_train, epochs=epochs, batch_size=16, verbose=0,
              callbacks=[LearningRateScheduler(cosine_decay(epochs))])
    seconds = time.perf_counter() - started
    accuracy = model.evaluate(patches(X_test, patch), y_test)["accuracy"]
    print(f"{name}: test accuracy {accuracy:.4f} after {seconds:.2f} s of training")
    # The same model in bf16 and int8 (EQUATIONS.md §9) stays within a point of its accuracy.
    for mode in ("bf16", "int8"):
        quantized = model.quantize(mode).evaluate(patches(X_test, patch), y_test)["accuracy"]
        assert abs(quantized - accuracy) <= 0.01, (name, mode, quantized, accuracy)
    return accuracy, seconds


def test_gunpoint():
    accuracy, seconds = classify("GunPoint", patch=5, epochs=300, bidirectional=True)
    assert accuracy >= 0.96 and seconds < 120


def test_italy_power_demand():
    accuracy, seconds = classify("ItalyPowerDemand", patch=1, epochs=200)
    assert accuracy >= 0.95 and seconds < 120


def one_nearest_neighbour_accuracy(X_train, y_train, X_test, y_test):
    """1-NN with Euclidean distance on the raw series (N, T)."""
    distances = ((X_test[:, None, :] - X_train[None, :, :]) ** 2).sum(axis=2)
    return float(np.mean(y_train[distances.argmin(axis=1)] == y_test))


@pytest.mark.parametrize("name", ["GunPoint", "ItalyPowerDemand"])
def test_classifier_defaults_match_one_nearest_neighbour(name):
    """GRUClassifier() with nothing tuned (issue 19: its defaults reached chance on ArrowHead):
    well above chance, and within 1 point of 1-NN or above it (measured on this seed: GunPoint
    0.993 against 1-NN's 0.913, ItalyPowerDemand 0.966 against 0.955; README.md's table)."""
    pytest.importorskip("sktime", reason="the UCR files ship with sktime==1.2.0 (the test extra)")
    pytest.importorskip("sklearn")
    import warnings

    from fastgru.estimators import GRUClassifier

    X_train, y_train, _ = load_ucr(name, "train")
    X_test, y_test, _ = load_ucr(name, "test")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no chance-level warning
        model = GRUClassifier(random_state=0).fit(X_train, y_train)
    seconds = time.perf_counter() - started
    accuracy = model.score(X_test, y_test)
    nearest = one_nearest_neighbour_accuracy(X_train, y_train, X_test, y_test)
    chance = np.bincount(y_test).max() / len(y_test)
    print(f"{name}: GRUClassifier() {accuracy:.4f}, 1-NN {nearest:.4f}, chance {chance:.4f}, fit {seconds:.1f} s")
    assert accuracy >= chance + 0.3 and accuracy >= nearest - 0.01 and seconds < 60


def test_regressor_defaults_learn_the_sunspots():
    """GRURegressor() with nothing tuned, on windows of 24 years predicting the next, trained on
    all but the last 60: well below persistence's error on those 60 (measured: MSE 562.2 against
    persistence's 1082.3; AR(9) by least squares gets 368.5, so the defaults are not the best
    forecaster here: README.md)."""
    pytest.importorskip("sklearn")
    from fastgru.estimators import GRURegressor

    _, values = load_sunspots()
    lookback, tested = 24, 60
    X = np.stack([values[i : i + lookback] for i in range(len(values) - lookback)])
    y = values[lookback:]
    started = time.perf_counter()
    model = GRURegressor(random_state=0).fit(X[:-tested], y[:-tested])
    seconds = time.perf_counter() - started
    error = np.mean((model.predict(X[-tested:]) - y[-tested:]) ** 2)
    persistence = np.mean((X[-tested:, -1] - y[-tested:]) ** 2)
    print(f"sunspots: GRURegressor() MSE {error:.1f}, persistence {persistence:.1f}, fit {seconds:.1f} s")
    assert error < 0.7 * persistence and seconds < 60


def test_load_ucr_multivariate_and_variable_length():
    pytest.importorskip("sktime")
    X, y, classes = load_ucr("BasicMotions", "train")
    assert X.shape == (40, 100, 6) and X.dtype == np.float64
    assert list(classes) == ["Badminton", "Running", "Standing", "Walking"] and np.bincount(y).tolist() == [10] * 4
    X, y, classes = load_ucr("JapaneseVowels", "test")
    assert isinstance(X, list) and len(X) == len(y) == 370 and len(classes) == 9
    assert all(x.ndim == 2 and x.shape[1] == 12 for x in X) and {len(x) for x in X} >= {7, 29}
    X, y, _ = load_ucr("PLAID", "train")
    assert isinstance(X, list) and X[0].ndim == 1 and min(map(len, X)) == 100 and max(map(len, X)) == 1344
    with pytest.raises(ValueError, match="name: 'Covid3Month' is a regression set"):
        load_ucr("Covid3Month")


def test_load_ucr_errors():
    pytest.importorskip("sktime")
    with pytest.raises(ValueError, match="split: expected 'train' or 'test'"):
        load_ucr("GunPoint", "validation")
    with pytest.raises(ValueError, match="name: no UCR data set 'NoSuchSet'"):
        load_ucr("NoSuchSet")
    X, y, classes = load_ucr("GunPoint", "test")
    assert X.shape == (150, 150) and list(classes) == ["1", "2"] and set(np.unique(y)) == {0, 1}
