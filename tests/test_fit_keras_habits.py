"""Model.fit's Keras habits: validation_split, class_weight, sample_weight, ModelCheckpoint and
CSVLogger, against Keras 3 (torch backend) where Keras computes the same thing."""

import csv
import os

import numpy as np
import pytest

import fastgru
from fastgru.training import (CSVLogger, CrossEntropy, Huber, MeanAbsoluteError, MeanSquaredError, Model,
                              ModelCheckpoint)

from .helpers import central_difference, normalised_error

# Python-level logic: the kernels' instruction set changes nothing here.
pytestmark = pytest.mark.best_isa_only


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def regression_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6, 2))
    return X, X[:, -2:, 0].sum(axis=1) - 0.5 * X[:, -1, 1]


def classification_data(n=24, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6, 2))
    return X, rng.integers(0, classes, n)


def make_model(loss="mse", outputs=1, head="last", seed=0):
    return Model(fastgru.GRU(2, 5, batch_first=True, dtype="float64", seed=seed), outputs=outputs, head=head,
                 loss=loss, learning_rate=0.05, seed=seed)


def keras_identity(keras, outputs, loss):
    """A Keras model whose predictions are its inputs and whose SGD steps are 0: its fit reports
    Keras's loss of the predictions given as x."""
    model = keras.Sequential([keras.Input((outputs,)),
                              keras.layers.Dense(outputs, use_bias=False, kernel_initializer="identity")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    return model


# ---------------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("ours,theirs", [
    (MeanSquaredError(), "MeanSquaredError"),
    (MeanAbsoluteError(), "MeanAbsoluteError"),
    (Huber(0.7), "Huber"),
    (CrossEntropy(), "SparseCategoricalCrossentropy"),
])
def test_weighted_losses_match_keras_with_and_without_a_mask(keras, ours, theirs):
    import torch
    from keras.src.backend import set_keras_mask

    rng = np.random.default_rng(1)
    pred = rng.standard_normal((9, 3)) * 2
    target = rng.integers(0, 3, 9) if ours.classification else rng.standard_normal((9, 3))
    weight = rng.uniform(0, 2, 9)
    weight[4] = 0.0
    keras_loss = {"Huber": lambda: keras.losses.Huber(delta=0.7),
                  "SparseCategoricalCrossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                  }.get(theirs, getattr(keras.losses, theirs))()
    value, grad = ours(pred, target, weight, count=len(pred))
    expected = float(keras_loss(torch.tensor(target), torch.tensor(pred), sample_weight=torch.tensor(weight)))
    assert value == pytest.approx(expected, rel=1e-6)

    # Masked rows (padded steps): Keras divides by the rows the mask keeps, as fit does.
    mask = np.array([1, 1, 0, 1, 1, 0, 1, 1, 0.0])
    masked_pred = torch.tensor(pred)
    set_keras_mask(masked_pred, torch.tensor(mask > 0))
    value, _ = ours(pred, target, weight * mask, count=mask.sum())
    expected = float(keras_loss(torch.tensor(target), masked_pred, sample_weight=torch.tensor(weight)))
    assert value == pytest.approx(expected, rel=1e-6)

    # The gradient of the weighted loss, by central differences.
    _, grad = ours(pred, target, weight * mask, count=mask.sum())
    numeric = central_difference(lambda: ours(pred, target, weight * mask, count=mask.sum())[0], pred)
    assert normalised_error(grad, numeric) < 1e-7


@pytest.mark.parametrize("head,loss,outputs", [("last", "mse", 2), ("sequence", "cross_entropy", 3),
                                               ("sequence", "huber", 1)])
def test_weighted_gradients_match_central_differences(head, loss, outputs):
    rng = np.random.default_rng(2)
    model = make_model(loss, outputs, head)
    lengths = np.array([6, 3, 5])
    x = rng.standard_normal((3, 6, 2))
    rows = 3 * (6 if head == "sequence" else 1)
    target = rng.integers(0, outputs, rows) if model.loss.classification else rng.standard_normal((rows, outputs))
    mask = None
    if head == "sequence":
        mask = (np.arange(6)[None, :] < lengths[:, None]).reshape(-1).astype(np.float64)
    row_weight = rng.uniform(0.2, 3.0, rows)
    loss_value, grads, _ = model._gradients(x, lengths, target, mask, row_weight)
    weights = model.get_weights()

    def f():
        model.set_weights(weights)
        return model._loss(model._run(x, lengths, train=True)[0], target, mask, row_weight)[0]

    assert loss_value == pytest.approx(f(), rel=1e-12)
    for name, array in weights.items():
        numeric = central_difference(f, array)
        assert normalised_error(grads[name], numeric) < 1e-6, name


# ---------------------------------------------------------------------- fit against Keras's fit
def test_class_weight_loss_matches_keras_fit(keras):
    X, y = classification_data()
    model = make_model("cross_entropy", 3)
    logits = model.predict(X)
    class_weight = {0: 2.0, 2: 0.25}  # class 1 left out: it weighs 1
    # One batch of all samples: the reported loss is that of the weights before the step.
    ours = model.fit(X, y, epochs=1, batch_size=len(X), shuffle=False, class_weight=class_weight, verbose=0)
    theirs = keras_identity(keras, 3, keras.losses.SparseCategoricalCrossentropy(from_logits=True)).fit(
        logits.astype(np.float32), y, epochs=1, batch_size=len(X), shuffle=False, class_weight=class_weight,
        verbose=0)
    assert ours.history["loss"][0] == pytest.approx(theirs.history["loss"][0], rel=1e-6)
    unweighted = make_model("cross_entropy", 3).evaluate(X, y)["loss"]
    assert abs(ours.history["loss"][0] - unweighted) > 1e-3  # the weights changed something


def test_sample_weight_and_validation_split_match_keras_fit(keras):
    X, y = regression_data(25)
    sample_weight = np.random.default_rng(3).uniform(0, 3, 25)
    model = make_model("mse", 1)
    before = model.predict(X)
    ours = model.fit(X, y, epochs=1, batch_size=len(X), shuffle=False, sample_weight=sample_weight,
                     validation_split=0.3, verbose=0)
    after = model.predict(X)  # what the validation part was scored with
    identity = keras_identity(keras, 1, keras.losses.MeanSquaredError())
    trained = identity.fit(before.astype(np.float32), y, epochs=1, batch_size=len(X), shuffle=False,
                           sample_weight=sample_weight, validation_split=0.3, verbose=0)
    scored = identity.fit(after.astype(np.float32), y, epochs=1, batch_size=len(X), shuffle=False,
                          sample_weight=sample_weight, validation_split=0.3, verbose=0)
    assert ours.history["loss"][0] == pytest.approx(trained.history["loss"][0], rel=1e-6)
    assert ours.history["val_loss"][0] == pytest.approx(scored.history["val_loss"][0], rel=1e-6)


@pytest.mark.parametrize("count,fraction", [(10, 0.3), (25, 0.3), (7, 0.5), (100, 0.1), (3, 0.34), (49, 0.97),
                                            (49, 0.99), (2, 0.4)])
def test_validation_split_picks_kerass_samples(keras, count, fraction):
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    from fastgru.training.model import _validation_split_point

    try:
        (train,), (validation,) = train_validation_split((np.arange(count),), validation_split=fraction)
    except ValueError:  # a part would be empty: refused by both
        with pytest.raises(ValueError, match=f"validation_split: {count} samples cannot be split"):
            _validation_split_point(fraction, count)
        return
    split_at = _validation_split_point(fraction, count)
    assert np.array_equal(train, np.arange(split_at)) and np.array_equal(validation, np.arange(split_at, count))


@pytest.mark.parametrize("ragged", [False, True])
def test_validation_split_trains_on_the_first_part_and_scores_the_last(ragged):
    X, y = regression_data(20)
    lengths = np.random.default_rng(4).integers(2, 7, 20)
    weights = np.random.default_rng(5).uniform(0.5, 2, 20)
    if ragged:
        X = [x[:n] for x, n in zip(X, lengths)]
        inputs = dict(lengths=None)
    else:
        inputs = dict(lengths=lengths)
    split = make_model().fit(X, y, epochs=3, batch_size=4, validation_split=0.25, sample_weight=weights,
                             verbose=0, **inputs)
    held_out = make_model()
    explicit = held_out.fit(X[:15], y[:15], epochs=3, batch_size=4, sample_weight=weights[:15], verbose=0,
                            lengths=None if ragged else lengths[:15])
    assert split.history["loss"] == explicit.history["loss"]
    expected = held_out.evaluate(X[15:], y[15:], lengths=None if ragged else lengths[15:], sample_weight=weights[15:])
    assert split.history["val_loss"][-1] == pytest.approx(expected["loss"], rel=1e-12)


def test_class_weight_is_the_weight_of_each_target_class():
    for head in ("last", "sequence"):
        X, y = classification_data(16)
        if head == "sequence":
            y = np.random.default_rng(6).integers(0, 3, (16, 6))
        by_class = make_model("cross_entropy", 3, head)
        by_class.fit(X, y, epochs=2, batch_size=5, shuffle=False, class_weight={0: 0.5, 1: 3.0}, verbose=0)
        # the same training by hand: each row's (step's) loss times its class's weight
        table = np.array([0.5, 3.0, 1.0])
        by_hand = make_model("cross_entropy", 3, head)
        sequences, targets = by_hand._sequences(X, None), by_hand._targets(y, 16)
        for epoch in range(2):
            for start in range(0, 16, 5):
                rows = np.arange(start, min(start + 5, 16))
                x, lengths = sequences.batch(rows)
                target, mask = by_hand._batch_targets(targets, rows, x.shape[1], lengths)
                by_hand._train_batch(x, lengths, target, mask, table[target])
        for name, value in by_hand.get_weights().items():
            assert np.array_equal(value, by_class.get_weights()[name]), (head, name)


def test_sample_weights_of_one_train_as_no_weights():
    X, y = regression_data(16)
    plain, weighted = make_model(), make_model()
    history = plain.fit(X, y, epochs=2, batch_size=5, verbose=0)
    weighted_history = weighted.fit(X, y, epochs=2, batch_size=5, sample_weight=np.ones(16), verbose=0)
    assert history.history["loss"] == weighted_history.history["loss"]
    for name, value in plain.get_weights().items():
        assert np.array_equal(value, weighted.get_weights()[name]), name


def test_accuracy_stays_unweighted():
    X, y = classification_data(12)
    model = make_model("cross_entropy", 3)
    predicted = model.predict(X).argmax(axis=1)
    history = model.fit(X, y, epochs=1, batch_size=12, class_weight={0: 5.0}, verbose=0)
    assert history.history["accuracy"][0] == pytest.approx(np.mean(predicted == y))


# -------------------------------------------------------------------------------- callbacks
class Snapshots(fastgru.training.Callback):
    def __init__(self):
        self.weights = []

    def on_epoch_end(self, model, epoch, logs):
        self.weights.append(model.get_weights())


def test_model_checkpoint_keeps_the_best_epoch(tmp_path):
    X, y = regression_data(32)
    noise = np.random.default_rng(7).standard_normal(32) * 3  # validation targets it cannot fit
    path = tmp_path / "best.safetensors"
    snapshots, checkpoint = Snapshots(), ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    model = make_model()
    history = model.fit(X, y, epochs=8, batch_size=8, validation_data=(X, noise), verbose=0,
                        callbacks=[snapshots, checkpoint])
    best = int(np.argmin(history.history["val_loss"]))
    assert best != len(history.epochs) - 1, "the test needs a best epoch before the last"
    assert checkpoint.best_epoch == best and checkpoint.best == history.history["val_loss"][best]
    loaded = fastgru.load(path)
    for name, value in loaded.get_weights().items():
        assert np.array_equal(value, snapshots.weights[best][name]), name
    assert sorted(os.listdir(tmp_path)) == ["best.safetensors"]  # no trial or temporary file left


def test_model_checkpoint_every_epoch_with_a_formatted_name(tmp_path):
    X, y = classification_data(16)
    snapshots = Snapshots()
    pattern = str(tmp_path / "runs" / "model-{epoch:02d}-{accuracy:.2f}.safetensors")
    model = make_model("cross_entropy", 3)
    history = model.fit(X, y, epochs=3, batch_size=8, verbose=0,
                        callbacks=[snapshots, ModelCheckpoint(pattern, monitor="accuracy")])
    names = sorted(os.listdir(tmp_path / "runs"))
    expected = [f"model-{epoch + 1:02d}-{accuracy:.2f}.safetensors"
                for epoch, accuracy in enumerate(history.history["accuracy"])]
    assert names == expected
    for epoch, name in enumerate(names):
        loaded = fastgru.load(tmp_path / "runs" / name)
        assert np.array_equal(loaded.head_weight, snapshots.weights[epoch]["head.weight"])
    # save_best_only of a "max" log keeps the best accuracy
    checkpoint = ModelCheckpoint(tmp_path / "best.safetensors", monitor="accuracy", save_best_only=True)
    history = make_model("cross_entropy", 3).fit(X, y, epochs=3, batch_size=8, verbose=0, callbacks=[checkpoint])
    assert checkpoint.best == max(history.history["accuracy"])


def test_csv_logger_writes_every_epoch_as_keras_does(tmp_path, keras):
    X, y = regression_data(16)
    path = tmp_path / "log.csv"
    model = make_model()
    history = model.fit(X, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0, callbacks=[CSVLogger(path)])
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "learning_rate", "loss", "val_loss"]  # Keras's order: epoch, then sorted
    assert [row[0] for row in rows[1:]] == ["0", "1", "2"]
    for column, name in enumerate(rows[0][1:], start=1):
        assert [float(row[column]) for row in rows[1:]] == history.history[name]  # written exactly
    # Keras's CSVLogger given the same logs writes the same bytes
    keras_path = tmp_path / "keras.csv"
    keras_logger = keras.callbacks.CSVLogger(str(keras_path))
    keras_logger.on_train_begin()
    for epoch in history.epochs:
        keras_logger.on_epoch_end(epoch, {name: values[epoch] for name, values in history.history.items()})
    keras_logger.on_train_end()
    assert path.read_bytes() == keras_path.read_bytes()

    # append: more rows under the same header; another separator
    model.fit(X, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0, callbacks=[CSVLogger(path, append=True)])
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 1 + 3 + 2 and rows.count(rows[0]) == 1
    semicolons = tmp_path / "semicolons.csv"
    model.fit(X, y, epochs=1, verbose=0, callbacks=[CSVLogger(semicolons, separator=";")])
    assert semicolons.read_text().splitlines()[0] == "epoch;learning_rate;loss"
    # appending other columns would make a table no reader can read
    with pytest.raises(ValueError, match=r"filename: .* has the columns .* but the logs give"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])


# ------------------------------------------------------------------------------- bad inputs
def test_bad_inputs_name_the_argument(tmp_path):
    X, y = regression_data(10)
    model = make_model()
    for fraction in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=rf"validation_split: expected a number in \(0, 1\).*got {fraction}"):
            model.fit(X, y, validation_split=fraction, verbose=0)
    for fraction in ("0.2", True):
        with pytest.raises(TypeError, match="validation_split: expected a number in"):
            model.fit(X, y, validation_split=fraction, verbose=0)
    for none in (0, 0.0, None):  # Keras's default and its falsy spelling: no split
        assert "val_loss" not in model.fit(X, y, epochs=1, validation_split=none, verbose=0).history
    with pytest.raises(ValueError, match="validation_split, validation_data: expected one of them, got both"):
        model.fit(X, y, validation_split=0.2, validation_data=(X, y), verbose=0)
    with pytest.raises(ValueError, match="validation_split: 1 samples cannot be split"):
        model.fit(X[:1], y[:1], validation_split=0.5, verbose=0)

    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\).*got shape \(10, 1\)"):
        model.fit(X, y, sample_weight=np.ones((10, 1)), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\).*got shape \(9,\)"):
        model.fit(X, y, sample_weight=np.ones(9), verbose=0)
    with pytest.raises(ValueError, match="sample_weight: expected weights >= 0, got -1"):
        model.fit(X, y, sample_weight=np.r_[np.ones(9), -1], verbose=0)
    with pytest.raises(ValueError, match="sample_weight: expected finite weights, got NaN"):
        model.fit(X, y, sample_weight=np.r_[np.ones(9), np.nan], verbose=0)
    with pytest.raises(TypeError, match="sample_weight: expected real numbers, got dtype <U1"):
        model.fit(X, y, sample_weight=["a"] * 10, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\)"):
        model.evaluate(X, y, sample_weight=np.ones(3))

    with pytest.raises(ValueError, match="class_weight: weighs the classes of a classification loss.*MeanSquaredError"):
        model.fit(X, y, class_weight={0: 1.0}, verbose=0)
    classifier = make_model("cross_entropy", 3)
    labels = np.arange(10) % 3
    with pytest.raises(TypeError, match="class_weight: expected a dict {class index: weight}, got list"):
        classifier.fit(X, labels, class_weight=[1.0, 2.0, 3.0], verbose=0)
    for key in (3, -1, "0", 1.0):
        with pytest.raises(ValueError, match=rf"class_weight: expected class indices in 0..2 as keys .*key {key!r}"):
            classifier.fit(X, labels, class_weight={key: 1.0}, verbose=0)
    for weight in (-1.0, float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match="class_weight: expected finite weights >= 0"):
            classifier.fit(X, labels, class_weight={1: weight}, verbose=0)
    with pytest.raises(ValueError, match="class_weight, sample_weight: expected one of them, got both"):
        classifier.fit(X, labels, class_weight={1: 2.0}, sample_weight=np.ones(10), verbose=0)

    # unwritable paths fail when training begins, before any epoch
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="filepath: cannot write .*a_file"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(blocker / "model.safetensors")])
    with pytest.raises(ValueError, match="filename: cannot write .*a_file"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[CSVLogger(blocker / "log.csv")])
    with pytest.raises(TypeError, match="filepath: expected a path"):
        ModelCheckpoint(3)
    with pytest.raises(ValueError, match="mode: expected 'auto', 'min' or 'max', got 'best'"):
        ModelCheckpoint(tmp_path / "m.safetensors", mode="best")
    with pytest.raises(TypeError, match="save_best_only: expected a bool, got str"):
        ModelCheckpoint(tmp_path / "m.safetensors", save_best_only="yes")
    with pytest.raises(KeyError, match="monitor: 'val_loss' is not among the logs"):
        model.fit(X, y, epochs=1, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "m.safetensors", save_best_only=True)])
    with pytest.raises(ValueError, match="filepath: .* names a field that is not epoch or a log"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "m-{val_los}.safetensors")])
    with pytest.raises(ValueError, match="separator: expected one character"):
        CSVLogger(tmp_path / "log.csv", separator=", ")
    custom = Model(fastgru.GRU(2, 5, batch_first=True, seed=0), loss=type("Mine", (MeanSquaredError,), {})(), seed=0)
    with pytest.raises(TypeError, match="save: the model file names its loss"):
        custom.fit(X, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "custom.safetensors")])


# ------------------------------------------------------------------ per-step (temporal) weights
def keras_identity_steps(keras, steps, outputs, loss, masked):
    """keras_identity for per-step predictions (N, T, K); ``masked``: a Masking layer marks the
    all-zero steps as padding (model.predict gives zeros past each row's length)."""
    inputs = keras.Input((steps, outputs))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    dense = keras.layers.Dense(outputs, use_bias=False, kernel_initializer="identity")(x)
    model = keras.Model(inputs, dense)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    return model


@pytest.mark.parametrize("loss,outputs", [("mse", 2), ("cross_entropy", 3)])
@pytest.mark.parametrize("masked", [False, True])
def test_temporal_sample_weight_matches_keras_fit_and_evaluate(keras, loss, outputs, masked):
    """sample_weight (N, T) on a per-step head: each step's loss times its weight, over the
    steps (Keras's sum_over_batch_size); with lengths, padded steps weigh 0 and the mean is
    over the real steps, as Keras computes under a mask. In fit (with validation_split, which
    holds out the weights' rows too) and evaluate."""
    rng = np.random.default_rng(11)
    n, steps = 20, 6
    X = rng.standard_normal((n, steps, 2))
    y = (rng.integers(0, outputs, (n, steps)) if loss == "cross_entropy"
         else rng.standard_normal((n, steps, outputs)))
    weights = rng.uniform(0, 3, (n, steps))
    weights[3] = 0.0
    lengths = rng.integers(1, steps + 1, n) if masked else None
    if masked:
        lengths[0] = steps
    keras_loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if loss == "cross_entropy"
                  else keras.losses.MeanSquaredError())
    model = make_model(loss, outputs, "sequence")
    before = model.predict(X, lengths=lengths)  # zero past each length: Keras's Masking masks those steps
    real = np.arange(steps)[None, :] < (np.full(n, steps) if lengths is None else lengths)[:, None]
    assert np.all((np.abs(before).sum(axis=2) > 0) == real)  # so Keras masks the padded steps, and only them

    identity = keras_identity_steps(keras, steps, outputs, keras_loss, masked)
    expected = identity.evaluate(before.astype(np.float32), y, sample_weight=weights, batch_size=n, verbose=0)
    ours = model.evaluate(X, y, lengths=lengths, sample_weight=weights)["loss"]
    assert ours == pytest.approx(expected, rel=1e-6)
    assert abs(ours - model.evaluate(X, y, lengths=lengths)["loss"]) > 1e-3  # the weights changed something

    history = model.fit(X, y, epochs=1, batch_size=n, shuffle=False, sample_weight=weights, validation_split=0.25,
                        lengths=lengths, verbose=0)
    after = model.predict(X, lengths=lengths)
    trained = identity.fit(before.astype(np.float32), y, epochs=1, batch_size=n, shuffle=False,
                           sample_weight=weights, validation_split=0.25, verbose=0)
    scored = identity.fit(after.astype(np.float32), y, epochs=1, batch_size=n, shuffle=False,
                          sample_weight=weights, validation_split=0.25, verbose=0)
    assert history.history["loss"][0] == pytest.approx(trained.history["loss"][0], rel=1e-6)
    assert history.history["val_loss"][0] == pytest.approx(scored.history["val_loss"][0], rel=1e-6)


def test_padded_steps_weigh_nothing_and_lists_weigh_as_dense_rows():
    """A dense X with lengths: the weights past each length change nothing (those steps are
    padding). A list of sequences with a list of (T_i,) weights trains as the dense X with
    lengths and the same weights; steps of one weight per row train as that per-sample weight."""
    rng = np.random.default_rng(12)
    n, steps = 12, 7
    X = rng.standard_normal((n, steps, 2))
    y = rng.integers(0, 3, (n, steps))
    lengths = rng.integers(2, steps + 1, n)
    weights = rng.uniform(0.2, 2, (n, steps))
    padded = np.arange(steps)[None, :] >= lengths[:, None]
    assert padded.any()
    other = np.where(padded, 1e6, weights)  # huge weights on padded steps

    def trained(X, weights, lengths=None):
        model = make_model("cross_entropy", 3, "sequence")
        history = model.fit(X, y if lengths is not None or not isinstance(X, list)
                            else [t[:len(x)] for t, x in zip(y, X)], epochs=2, batch_size=5, shuffle=False,
                            sample_weight=weights, lengths=lengths, verbose=0)
        return model.get_weights(), history.history["loss"]

    dense_weights, dense_loss = trained(X, weights, lengths)
    for result in (trained(X, other, lengths),
                   trained([x[:k] for x, k in zip(X, lengths)], [w[:k] for w, k in zip(weights, lengths)])):
        assert result[1] == pytest.approx(dense_loss, rel=1e-12)
        for name, value in dense_weights.items():
            np.testing.assert_allclose(result[0][name], value, rtol=1e-12, atol=1e-14, err_msg=name)
    # steps weighted as their sample: as (N,) weights, exactly
    per_sample = rng.uniform(0.2, 2, n)
    for name, value in trained(X, per_sample, lengths)[0].items():
        assert np.array_equal(value, trained(X, np.repeat(per_sample[:, None], steps, axis=1), lengths)[0][name])
    # and they matter: zero weights on each row's last real step change the training
    last = weights.copy()
    last[np.arange(n), lengths - 1] = 0
    assert not np.allclose(trained(X, last, lengths)[0]["head.weight"], dense_weights["head.weight"])


def test_temporal_weights_are_refused_by_name():
    rng = np.random.default_rng(13)
    X, y = regression_data(10)
    last = make_model()
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\) \(one weight per sample\): the "
                                         r"model's head is 'last'.*needs head='sequence'\), got shape \(10, 6\)"):
        last.fit(X, y, sample_weight=np.ones((10, 6)), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight: .*head is 'last'.*got shape \(10, 6\)"):
        last.evaluate(X, y, sample_weight=np.ones((10, 6)))
    with pytest.raises(ValueError, match=r"sample_weight: .*head is 'last'.*got a list of 10 arrays"):
        last.fit(X, y, sample_weight=[np.ones(6)] * 10, verbose=0)

    per_step = make_model("mse", 1, "sequence")
    y_steps = rng.standard_normal((10, 6))
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\) \(one weight per sample\) or "
                                         r"\(10, 6\) \(one per step of X's 6\), got shape \(10, 5\)"):
        per_step.fit(X, y_steps, sample_weight=np.ones((10, 5)), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\) .* or \(10, 6\).*got shape \(9, 6\)"):
        per_step.evaluate(X, y_steps, sample_weight=np.ones((9, 6)))
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\) .* or \(10, 6\) \(one per step\), "
                                         r"got shape \(10, 6, 1\)"):
        per_step.fit(X, y_steps, sample_weight=np.ones((10, 6, 1)), verbose=0)
    with pytest.raises(ValueError, match="sample_weight: expected weights >= 0, got -2"):
        per_step.fit(X, y_steps, sample_weight=np.where(np.eye(10, 6) > 0, -2.0, 1.0), verbose=0)
    with pytest.raises(ValueError, match="sample_weight: expected finite weights, got NaN or inf"):
        per_step.evaluate(X, y_steps, sample_weight=np.where(np.eye(10, 6) > 0, np.inf, 1.0))
    with pytest.raises(TypeError, match="sample_weight: expected real numbers, got dtype <U1"):
        per_step.fit(X, y_steps, sample_weight=np.full((10, 6), "a"), verbose=0)

    # a list of sequences: a list of (T_i,) weights, each of its sequence's length
    lengths = [3, 6, 2, 5, 4, 6, 1, 2, 3, 4]
    ragged = [x[:k] for x, k in zip(X, lengths)]
    targets = [t[:k] for t, k in zip(y_steps, lengths)]
    good = [np.ones(k) for k in lengths]
    per_step.evaluate(ragged, targets, sample_weight=good)  # accepted
    with pytest.raises(ValueError, match=r"sample_weight\[2\]: expected shape \(2,\) \(a weight for each of its 2 "
                                         r"steps\), got shape \(3,\)"):
        per_step.fit(ragged, targets, sample_weight=good[:2] + [np.ones(3)] + good[3:], verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight: expected 10 arrays of weights .*got 9"):
        per_step.fit(ragged, targets, sample_weight=good[:9], verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight\[4\]: expected weights >= 0, got -1"):
        per_step.evaluate(ragged, targets, sample_weight=good[:4] + [-np.ones(4)] + good[5:])
    with pytest.raises(ValueError, match=r"sample_weight\[0\]: expected finite weights"):
        per_step.evaluate(ragged, targets, sample_weight=[np.full(3, np.nan)] + good[1:])
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(10,\) \(one weight per sample\) or a list "
                                         r"of 10 arrays \(T_i,\) \(one per step\), got shape \(10, 6, 2\)"):
        per_step.fit(ragged, targets, sample_weight=np.ones((10, 6, 2)), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight\[0\]: expected shape \(3,\)"):  # rows of 6 for lengths 3, ...
        per_step.fit(ragged, targets, sample_weight=np.ones((10, 6)), verbose=0)
    with pytest.raises(ValueError, match="class_weight, sample_weight: expected one of them, got both"):
        make_model("cross_entropy", 3, "sequence").fit(X, np.zeros((10, 6), int), class_weight={1: 2.0},
                                                       sample_weight=np.ones((10, 6)), verbose=0)
