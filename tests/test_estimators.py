"""The scikit-learn estimators: scikit-learn's own checks, Pipeline, GridSearchCV, clone."""

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastgru.estimators import GRUClassifier, GRURegressor, _GRUEstimator  # noqa: E402

# Enough training for the checks that score a fit (check_regressors_train, ...). The checks'
# X are tabular features, not series: scaled per feature ("global"), one model for speed.
CHECKED = [GRURegressor(hidden_size=16, epochs=60, learning_rate=1e-2, ensemble_size=1, random_state=0),
           GRUClassifier(hidden_size=16, epochs=60, learning_rate=1e-2, ensemble_size=1, scaling="global",
                         random_state=0)]


def expected_failures(estimator):
    return {"check_sample_weight_equivalence_on_dense_data":
            "minibatch training over shuffled samples: a weight of 2 and a repeated row (or a weight of 0 and a "
            "removed row) give other batches, so results equal to rounding cannot be"}


@pytest.mark.best_isa_only
@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def sequences(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 12, 2)) * 3 + 10  # raw units: the estimators standardise
    return X, X[:, -4:, 0].mean(axis=1) - X[:, -1, 1]


@pytest.mark.parametrize("cell", ["gru", "mgu", "ligru"])
def test_regressor_on_3d_sequences(cell):
    X, y = sequences()
    model = GRURegressor(hidden_size=16, cell=cell, epochs=40, learning_rate=1e-2, ensemble_size=1,
                         random_state=0).fit(X, y * 100)
    assert model.predict(X).shape == (120,)
    assert model.score(X, y * 100) > 0.8
    assert model.n_features_in_ == 12  # steps: X's second axis, as scikit-learn counts it


def test_regressor_with_two_targets_and_holdout():
    X, y = sequences()
    Y = np.stack([y, -2 * y], axis=1)
    model = GRURegressor(hidden_size=16, epochs=200, learning_rate=1e-2, validation_fraction=0.2, patience=3,
                         ensemble_size=2, random_state=0).fit(X, Y)
    assert model.predict(X).shape == (120, 2)
    assert len(model.histories_) == len(model.models_) == 2
    for history in model.histories_:
        assert len(history.epochs) < 200 and "val_loss" in history.history


def test_classifier_with_string_labels_in_a_pipeline_and_grid_search():
    X, y = sequences()
    labels = np.where(y > np.median(y), "high", "low")
    pipeline = make_pipeline(FunctionTransformer(lambda X: X * 2.0),
                             GRUClassifier(epochs=15, ensemble_size=1, random_state=0))
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
    labels = (y > 0).astype(int)
    for argument, value, message in [
            ("layout", "NTC", "layout: expected one of None, 'NTF', 'NCT', got 'NTC'"),
            ("scaling", "minmax", "scaling: expected one of 'series\\+level', 'series', 'global', None, got 'minmax'"),
            ("learning_rate_schedule", "step", "learning_rate_schedule: expected one of 'cosine', 'plateau', None"),
            ("patch_length", 0, "patch_length: expected 'auto' or an int >= 1, got 0"),
            ("max_steps", 2.5, "max_steps: expected an int >= 1, got 2.5"),
            ("ensemble_size", 0, "ensemble_size: expected 'auto' or an int >= 1, got 0"),
            ("ensemble_size", "many", "ensemble_size: expected 'auto' or an int >= 1, got 'many'"),
            ("crop_fraction", 0, "crop_fraction: expected 'auto' or a number in \\(0, 1\\], got 0"),
            ("crop_fraction", 1.5, "crop_fraction: expected 'auto' or a number in \\(0, 1\\], got 1.5"),
            ("crop_fraction", "half", "crop_fraction: expected 'auto' or a number in \\(0, 1\\], got 'half'"),
            ("crop_fraction", True, "crop_fraction: expected 'auto' or a number in \\(0, 1\\], got True"),
            ("test_crops", 0, "test_crops: expected an int >= 1, got 0"),
            ("test_crops", 2.5, "test_crops: expected an int >= 1, got 2.5"),
            ("validation_fraction", "half", "validation_fraction: expected 'auto' or a number in \\[0, 1\\), got 'half'"),
            ("class_weight", "even", "class_weight: expected None, 'balanced' or a dict")]:
        with pytest.raises(ValueError, match=message):
            GRUClassifier(epochs=1, **{argument: value}).fit(X, labels)
    with pytest.raises(ValueError, match="class_weight: expected labels of y \\(\\[0, 1\\]\\), got \\[7\\]"):
        GRUClassifier(epochs=1, class_weight={7: 2.0}).fit(X, labels)
    with pytest.raises(ValueError, match="sample_weight: expected 20 real numbers"):
        GRUClassifier(epochs=1).fit(X, labels, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight: expected finite values >= 0"):
        GRURegressor(epochs=1).fit(X, y, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="X: expected \\(samples, steps\\) or \\(samples, channels, steps\\)"):
        GRUClassifier(epochs=1, layout="NCT").fit(X[:, :, :, None], labels)
    ragged = [x[: 5 + i % 4] for i, x in enumerate(X)]
    with pytest.raises(ValueError, match="X\\[3\\]: expected 2 features per step like X\\[0\\], got 1"):
        GRUClassifier(epochs=1).fit(ragged[:3] + [ragged[3][:, :1]] + ragged[4:], labels)
    with pytest.raises(ValueError, match="y: expected 20 targets \\(one per sequence of X\\), got 19"):
        GRUClassifier(epochs=1).fit(ragged, labels[:19])
    with pytest.raises(ValueError, match="X\\[0\\]: expected finite values"):
        GRUClassifier(epochs=1).fit([np.full(4, np.nan)] + ragged[1:], labels)


@pytest.mark.parametrize("estimator", [GRURegressor(hidden_size=24, epochs=3, validation_fraction=0.2, patience=2),
                                       GRUClassifier(hidden_size=24, num_layers=2, bidirectional=True, epochs=3,
                                                     ensemble_size=2)])
@pytest.mark.filterwarnings("ignore:GRU(Regressor|Classifier). training ended")  # 3 epochs: not to learn
def test_fitted_estimators_pickle_small_and_predict_alike(estimator):
    """A fitted estimator pickles as its weights and settings: within 10% and 8 KB of the
    parameters' bytes (no gradients, optimiser moments or compiled copies), and predicts as
    before (what GridSearchCV's workers and joblib send)."""
    import pickle

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 12, 3))
    y = X[:, -1, 0] if isinstance(estimator, GRURegressor) else (X[:, -1, 0] > 0).astype(int)
    estimator.fit(X, y)
    parameter_bytes = sum(array.nbytes for model in estimator.models_ for array in model.get_weights().values())
    pickled = pickle.dumps(estimator)
    assert len(pickled) < 1.1 * parameter_bytes + 8192, (len(pickled), parameter_bytes)
    twin = pickle.loads(pickled)
    assert np.array_equal(twin.predict(X), estimator.predict(X))
    assert twin.get_params() == estimator.get_params() and twin.history_.history == estimator.history_.history
    assert np.array_equal(twin.predict_proba(X) if hasattr(twin, "predict_proba") else twin.predict(X),
                          estimator.predict_proba(X) if hasattr(estimator, "predict_proba") else estimator.predict(X))


def test_ragged_lists_multivariate_and_nct_layout():
    """A list of sequences of different lengths trains and predicts, each sequence at any length;
    (N, channels, T) with layout="NCT" gives what its transpose gives with the default layout."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(8, 40, size=80)
    labels = rng.integers(0, 2, size=80)
    # class 1: a rising series; class 0: a falling one (both noisy, two channels)
    ragged = [np.stack([np.linspace(0, 1, n) * (2 * c - 1), rng.standard_normal(n)], axis=1)
              + 0.1 * rng.standard_normal((n, 2)) for n, c in zip(lengths, labels)]
    model = GRUClassifier(epochs=30, ensemble_size=1, random_state=0).fit(ragged, labels)
    assert not hasattr(model, "n_features_in_")  # no one width to check for a list
    assert model.score(ragged, labels) > 0.9
    assert model.predict([ragged[0][:5], ragged[1]]).shape == (2,)
    dense = rng.standard_normal((60, 50, 3))
    y = (dense[:, :, 0].mean(axis=1) > 0).astype(int)
    ntf = GRUClassifier(epochs=5, ensemble_size=1, random_state=0).fit(dense, y)
    nct = GRUClassifier(epochs=5, ensemble_size=1, random_state=0, layout="NCT").fit(dense.transpose(0, 2, 1), y)
    assert np.array_equal(ntf.predict_proba(dense), nct.predict_proba(dense.transpose(0, 2, 1)))
    # (N, channels, T) given with the default layout: read as 3 steps of 50 features, and said so
    with pytest.warns(UserWarning, match=r"X: read as \(samples, steps, features\): 3 steps of 50 features each\. "
                      r"If it is \(samples, channels, steps\).*pass layout='NCT'"):
        GRUClassifier(epochs=1, ensemble_size=1, random_state=0).fit(dense.transpose(0, 2, 1), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        GRUClassifier(epochs=30, ensemble_size=1, layout="NTF", random_state=0).fit(dense.transpose(0, 2, 1), y)
    assert ntf.patch_length_ == 2  # 50 steps, at most 32 for the GRU: patches of 2
    lengths = [10, 40, 70, 100, 1000]
    with pytest.warns(UserWarning, match="training ended at chance level"):  # 1 epoch on noise
        varied = GRUClassifier(epochs=1, ensemble_size=1, max_steps=8, random_state=0).fit(
            [rng.standard_normal(n) for n in lengths], [0, 1, 0, 1, 0])
    assert varied.patch_length_ == 9  # the median length, 70, in at most 8 steps


@pytest.mark.filterwarnings("ignore:GRUClassifier. training ended")  # random labels, 1 epoch: not to learn
def test_patches_and_levels_reach_the_gru():
    """patch_length="auto" gives the GRU at most max_steps steps; scaling="series+level" adds each
    channel's mean and log deviation to every step."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 100, 2))
    y = rng.integers(0, 2, size=30)
    model = GRUClassifier(epochs=1, ensemble_size=1, max_steps=16, random_state=0).fit(X, y)
    assert model.patch_length_ == 7  # ceil(100 / 16)
    assert model.models_[0].recurrent.input_size == 7 * 2 + 2 * 2
    series = GRUClassifier(epochs=1, ensemble_size=1, scaling="series", patch_length=4, random_state=0).fit(X, y)
    assert series.models_[0].recurrent.input_size == 4 * 2


def test_series_level_separates_classes_that_differ_only_in_level():
    """Two classes of the same shape at different levels: per-series scaling alone cannot tell
    them apart (and warns that training ended at chance); with the levels beside it, it can."""
    rng = np.random.default_rng(3)
    shape = np.sin(np.linspace(0, 6, 40))
    y = np.repeat([0, 1], 30)
    X = shape * (1 + y[:, None]) + 5 * y[:, None] + 0.01 * rng.standard_normal((60, 40))
    # whole series (no crops): the test is about what the scaling leaves; averaged over test
    # crops, fits to the noise can land a sample or two above chance without learning the level
    levels = GRUClassifier(epochs=30, ensemble_size=1, crop_fraction=1.0, random_state=0).fit(X, y)
    assert levels.score(X, y) == 1.0
    with pytest.warns(UserWarning, match=r"GRUClassifier: training ended at chance level: accuracy 0\.\d+ on the "
                      r"training samples, no better than 0\.500"):
        GRUClassifier(epochs=30, ensemble_size=1, scaling="series", crop_fraction=1.0, random_state=0).fit(X, y)


@pytest.mark.filterwarnings("ignore:GRUClassifier. training ended")  # unweighted, the rare class is never predicted
def test_sample_weight_and_class_weight():
    """Weights move the decision: with the labels of one half of the samples flipped, the
    classifier follows the half that weighs more; class_weight="balanced" weighs a rare class up;
    weights of ones give what no weights give, bit for bit."""
    X, y = sequences(120)
    truth = (y > 0).astype(int)
    flipped = truth.copy()
    flipped[60:] = 1 - flipped[60:]
    weights = np.where(np.arange(120) < 60, 10.0, 0.1)
    options = dict(hidden_size=16, epochs=40, learning_rate=1e-2, ensemble_size=1, scaling="global", random_state=0)
    weighted = GRUClassifier(**options).fit(X, flipped, sample_weight=weights)
    assert weighted.score(X, truth) > 0.8
    assert weighted.score(X, flipped, sample_weight=weights) > weighted.score(X, flipped)
    plain = GRUClassifier(**options).fit(X, truth)
    ones = GRUClassifier(**options).fit(X, truth, sample_weight=np.ones(120))
    assert np.array_equal(plain.predict_proba(X), ones.predict_proba(X))
    # only the weights' ratios count
    scaled = GRUClassifier(**options).fit(X, flipped, sample_weight=weights * 1e-3)
    assert np.allclose(scaled.predict_proba(X), weighted.predict_proba(X), atol=1e-5)
    rare = np.where(np.arange(120) < 12, 1, 0)  # 12 of class 1, 108 of class 0
    unweighted = GRUClassifier(**{**options, "epochs": 10}).fit(X, rare)
    balanced = GRUClassifier(**{**options, "epochs": 10}, class_weight="balanced").fit(X, rare)
    dictionary = GRUClassifier(**{**options, "epochs": 10}, class_weight={1: 9.0}).fit(X, rare)
    assert balanced.predict_proba(X)[:, 1].mean() > unweighted.predict_proba(X)[:, 1].mean()
    assert dictionary.predict_proba(X)[:, 1].mean() > unweighted.predict_proba(X)[:, 1].mean()
    regressor = GRURegressor(hidden_size=16, epochs=30, learning_rate=1e-2, ensemble_size=1, random_state=0)
    target = np.where(np.arange(120) < 60, y, -y)  # the second half contradicts the first
    heavy_first = regressor.fit(X, target, sample_weight=weights)
    assert heavy_first.score(X[:60], y[:60]) > heavy_first.score(X[60:], -y[60:])


def test_ensemble_averages_its_models():
    X, y = sequences(60)
    labels = (y > 0).astype(int)
    model = GRUClassifier(hidden_size=8, epochs=5, ensemble_size=3, random_state=4).fit(X, labels)
    assert len(model.models_) == 3
    seeds = [member.seed for member in model.models_]
    assert len(set(seeds)) == 3
    # the next random_state shares no model; a larger ensemble begins with the same ones
    assert not set(seeds) & {member.seed for member in GRUClassifier(epochs=1, ensemble_size=3, random_state=5)
                              .fit(X, labels).models_}
    assert [member.seed for member in GRUClassifier(epochs=1, ensemble_size=4, random_state=4)
            .fit(X, labels).models_][:3] == seeds
    each = []
    for member in model.models_:
        logits = member.predict(model._transform(X)).astype(np.float64)
        each.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    assert np.allclose(model.predict_proba(X), np.mean(each, axis=0))


@pytest.mark.filterwarnings("ignore:GRU(Regressor|Classifier). training ended")  # few epochs: not to learn
def test_crops_train_and_predict():
    """crop_fraction="auto" crops series the GRU reads in patches (T > max_steps) and leaves
    shorter ones whole; the regressor keeps whole windows. Training draws random windows each
    epoch; predictions average each model's outputs over test_crops windows from the start to the
    end; a list of sequences crops each at its own length, and its transform is the one of each
    sequence alone."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 100, 2))
    y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
    model = GRUClassifier(epochs=3, ensemble_size=2, random_state=0).fit(X, y)
    assert model.crop_fraction_ == 0.9 and model.patch_length_ == 4 and len(model.history_.history["loss"]) == 3
    windows = model._crops(X)
    assert len(windows) == 5 and all(w.shape == (30, 90, 2) for w in windows)
    assert np.array_equal(windows[0], X[:, :90]) and np.array_equal(windows[-1], X[:, 10:])
    random_window = model._crops(X, np.random.default_rng(0))[0]
    assert random_window.shape == (30, 90, 2)
    assert any(not np.array_equal(random_window[i], X[i, :90]) for i in range(30))
    each = []
    for member in model.models_:
        logits = np.mean([member.predict(model._transform(w)).astype(np.float64) for w in windows], axis=0)
        each.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    assert np.allclose(model.predict_proba(X), np.mean(each, axis=0))
    # short series: whole; an explicit fraction crops them too; the regressor: whole by default
    assert GRUClassifier(epochs=1, ensemble_size=1, random_state=0).fit(X[:, :20], y).crop_fraction_ == 1.0
    assert GRUClassifier(epochs=1, ensemble_size=1, crop_fraction=0.5, test_crops=1,
                         random_state=0).fit(X[:, :20], y)._crops(X[:, :20])[0].shape == (30, 10, 2)
    assert GRURegressor(epochs=1, ensemble_size=1, random_state=0).fit(X, y.astype(float)).crop_fraction_ == 1.0
    # ensemble_size="auto": 10 models below 100 samples, 5 from 100 on; the regressor: 5
    assert model.ensemble_size_ == 2 and len(model.models_) == 2
    small = GRUClassifier(epochs=1, random_state=0).fit(X[:, :20], y)
    assert small.ensemble_size_ == 10 and len(small.models_) == 10
    many = np.concatenate([X[:, :20]] * 4)
    assert GRUClassifier(epochs=1, random_state=0).fit(many, np.tile(y, 4)).ensemble_size_ == 5
    assert GRURegressor(epochs=1, random_state=0).fit(X[:, :20], y.astype(float)).ensemble_size_ == 5
    # early stopping on a hold-out runs across the cropped epochs
    stopped = GRUClassifier(epochs=200, ensemble_size=1, validation_fraction=0.3, patience=2, learning_rate=0.1,
                            random_state=0).fit(X, y)
    assert "val_loss" in stopped.history_.history and len(stopped.history_.history["loss"]) < 200
    # sequences of different lengths: each cropped at its own length
    ragged = [rng.standard_normal((n, 2)) for n in rng.integers(40, 120, size=30)]
    fitted = GRUClassifier(epochs=2, ensemble_size=1, random_state=0).fit(ragged, y)
    assert fitted.crop_fraction_ == 0.9
    for w in fitted._crops(ragged):
        assert [len(a) for a in w] == [max(1, int(np.rint(0.9 * len(x)))) for x in ragged]
    together = fitted._transform(ragged)
    alone = [_GRUEstimator._transform(fitted, x[None])[0] for x in ragged]
    assert all(a.shape == b.shape and np.allclose(a, b, atol=1e-12) for a, b in zip(together, alone))
    assert fitted.predict(ragged[:3] + [ragged[3][:1]]).shape == (4,)


def test_training_on_windows_prints_one_line_per_epoch_of_all_the_epochs(capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 60))
    y = (X[:, :30].mean(axis=1) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a chance-level warning is not what this is about
        GRUClassifier(epochs=3, ensemble_size=1, verbose=2, random_state=0).fit(X, y)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Epoch")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
