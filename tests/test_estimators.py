"""The scikit-learn estimators: scikit-learn's own checks, Pipeline, GridSearchCV, clone."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastgru.estimators import GRUClassifier, GRURegressor  # noqa: E402

# Enough training for the checks that score a fit (check_regressors_train, ...).
CHECKED = [GRURegressor(hidden_size=16, epochs=60, learning_rate=1e-2, random_state=0),
           GRUClassifier(hidden_size=16, epochs=60, learning_rate=1e-2, random_state=0)]


@pytest.mark.best_isa_only
@parametrize_with_checks(CHECKED)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def sequences(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 12, 2)) * 3 + 10  # raw units: the estimators standardise
    return X, X[:, -4:, 0].mean(axis=1) - X[:, -1, 1]


@pytest.mark.parametrize("cell", ["gru", "mgu", "ligru"])
def test_regressor_on_3d_sequences(cell):
    X, y = sequences()
    model = GRURegressor(hidden_size=16, cell=cell, epochs=40, learning_rate=1e-2, random_state=0).fit(X, y * 100)
    assert model.predict(X).shape == (120,)
    assert model.score(X, y * 100) > 0.8
    assert model.n_features_in_ == 12  # steps: X's second axis, as scikit-learn counts it


def test_regressor_with_two_targets_and_holdout():
    X, y = sequences()
    Y = np.stack([y, -2 * y], axis=1)
    model = GRURegressor(hidden_size=16, epochs=200, learning_rate=1e-2, validation_fraction=0.2, patience=3,
                         random_state=0).fit(X, Y)
    assert model.predict(X).shape == (120, 2)
    assert len(model.history_.epochs) < 200 and "val_loss" in model.history_.history


def test_classifier_with_string_labels_in_a_pipeline_and_grid_search():
    X, y = sequences()
    labels = np.where(y > np.median(y), "high", "low")
    pipeline = make_pipeline(FunctionTransformer(lambda X: X * 2.0), GRUClassifier(epochs=15, random_state=0))
    search = GridSearchCV(pipeline, {"gruclassifier__hidden_size": [4, 8]}, cv=2).fit(X, labels)
    best = search.best_estimator_
    assert set(best.predict(X)) <= {"high", "low"}
    proba = best.predict_proba(X)
    assert proba.shape == (120, 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(best[-1].classes_) == ["high", "low"]
    cloned = clone(best[-1])
    assert cloned.get_params() == best[-1].get_params() and not hasattr(cloned, "model_")


def test_estimator_errors():
    X, y = sequences(20)
    with pytest.raises(ValueError, match="cell: expected one of"):
        GRURegressor(cell="lstm").fit(X, y)
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        GRURegressor(optimizer="rmsprop").fit(X, y)
    with pytest.raises(ValueError, match="y: expected at least 2 classes"):
        GRUClassifier().fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="validation_fraction: 0.99 of 20 samples leaves 20 held out"):
        GRURegressor(validation_fraction=0.99).fit(X, y)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        GRUClassifier().predict(X)


@pytest.mark.parametrize("estimator", [GRURegressor(hidden_size=24, epochs=3, validation_fraction=0.2, patience=2),
                                       GRUClassifier(hidden_size=24, num_layers=2, bidirectional=True, epochs=3)])
def test_fitted_estimators_pickle_small_and_predict_alike(estimator):
    """A fitted estimator pickles as its weights and settings: within 10% and 8 KB of the
    parameters' bytes (no gradients, optimiser moments or compiled copies), and predicts as
    before (what GridSearchCV's workers and joblib send)."""
    import pickle

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 12, 3))
    y = X[:, -1, 0] if isinstance(estimator, GRURegressor) else (X[:, -1, 0] > 0).astype(int)
    estimator.fit(X, y)
    parameter_bytes = sum(array.nbytes for array in estimator.model_.get_weights().values())
    pickled = pickle.dumps(estimator)
    assert len(pickled) < 1.1 * parameter_bytes + 8192, (len(pickled), parameter_bytes)
    twin = pickle.loads(pickled)
    assert np.array_equal(twin.predict(X), estimator.predict(X))
    assert twin.get_params() == estimator.get_params() and twin.history_.history == estimator.history_.history
