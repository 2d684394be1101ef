"""fastgru.Model and its training parts: gradients by central differences, losses and
optimisers against PyTorch, fit/predict/evaluate/save, callbacks, and bad inputs."""

import pickle

import numpy as np
import pytest

import fastgru
from fastgru.training import (SGD, Adam, AdamW, CrossEntropy, EarlyStopping, Huber, LearningRateScheduler,
                              MeanAbsoluteError, MeanSquaredError, Model, ReduceLROnPlateau, clip_grad_norm,
                              cosine_decay, exponential_decay, step_decay)
from fastgru.training.model import _Sequences

from .helpers import central_difference, normalised_error

torch = pytest.importorskip("torch")


def make_model(head="last", loss="mse", outputs=2, bidirectional=False, layers=1, cell=fastgru.GRU,
               batch_first=True, dtype="float64", seed=0):
    layer = cell(3, 4, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, dtype=dtype, seed=seed)
    return Model(layer, outputs=outputs, head=head, loss=loss, seed=seed)


def batch_loss(model, x, lengths, target, weight):
    # training mode: a LiGRU normalises with the batch's statistics (no dropout here, so the
    # other layers compute what inference does)
    pred = model._run(x, lengths, train=True)[0]
    return model.loss(pred, target, weight)[0]


CASES = [
    # head, loss, outputs, bidirectional, layers, cell, batch_first, ragged
    ("last", "mse", 2, False, 1, fastgru.GRU, True, False),
    ("last", "mae", 1, True, 2, fastgru.GRU, False, True),
    ("last", Huber(0.3), 2, False, 1, fastgru.MGU, True, True),
    ("last", "cross_entropy", 3, True, 1, fastgru.GRU, True, True),
    ("sequence", "mse", 2, True, 2, fastgru.GRU, False, True),
    ("sequence", "cross_entropy", 3, False, 1, fastgru.MGU, True, True),
    ("sequence", "huber", 1, False, 1, fastgru.GRU, True, False),
    ("last", "mse", 2, True, 2, fastgru.LiGRU, False, True),
    ("sequence", "cross_entropy", 2, False, 1, fastgru.LiGRU, True, True),
]


@pytest.mark.parametrize("head,loss,outputs,bidirectional,layers,cell,batch_first,ragged", CASES)
def test_every_gradient_matches_central_differences(head, loss, outputs, bidirectional, layers, cell, batch_first, ragged):
    rng = np.random.default_rng(1)
    model = make_model(head, loss, outputs, bidirectional, layers, cell, batch_first)
    lengths = np.array([5, 2, 4]) if ragged else None
    x = rng.standard_normal((3, 5, 3))
    if model.loss.classification:
        target = rng.integers(0, outputs, 3 * (5 if head == "sequence" else 1))
    else:
        target = rng.standard_normal((3 * (5 if head == "sequence" else 1), outputs))
    weight = None
    if head == "sequence" and ragged:
        weight = (np.arange(5)[None, :] < lengths[:, None]).reshape(-1).astype(np.float64)
    loss_value, grads, _ = model._gradients(x, lengths, target, weight)
    assert loss_value == pytest.approx(batch_loss(model, x, lengths, target, weight), rel=1e-12)
    weights = model.get_weights()
    assert set(grads) == {k for k in weights if "running" not in k}

    def f():
        model.set_weights(weights)
        return batch_loss(model, x, lengths, target, weight)

    for name, array in weights.items():
        if "running" in name:
            continue  # buffers, not parameters
        numeric = central_difference(f, array)
        assert normalised_error(grads[name], numeric) < 1e-6, name


def test_float32_model_matches_float64():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 3))
    target = rng.standard_normal((4, 2))
    results = []
    for dtype in ("float32", "float64"):
        model = make_model(dtype=dtype)
        model.set_weights({k: v.astype(np.float64) for k, v in make_model().get_weights().items()})
        results.append(model._gradients(x.astype(dtype), None, target.astype(dtype), None))
    for name in results[1][1]:
        assert normalised_error(results[0][1][name], results[1][1][name]) < 1e-5, name


@pytest.mark.parametrize("loss,torch_loss", [
    (MeanSquaredError(), torch.nn.MSELoss()),
    (MeanAbsoluteError(), torch.nn.L1Loss()),
    (Huber(0.5), torch.nn.HuberLoss(delta=0.5)),
])
def test_regression_losses_match_torch(loss, torch_loss):
    rng = np.random.default_rng(3)
    pred, target = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    value, grad = loss(pred, target)
    tp = torch.tensor(pred, requires_grad=True)
    expected = torch_loss(tp, torch.tensor(target))
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    assert np.allclose(grad, tp.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_cross_entropy_matches_torch_and_masks_rows():
    rng = np.random.default_rng(4)
    logits, labels = rng.standard_normal((6, 4)) * 5, rng.integers(0, 4, 6)
    weight = np.array([1, 1, 0, 1, 0, 1.0])
    value, grad = CrossEntropy()(logits, labels, weight)
    kept = weight > 0
    tl = torch.tensor(logits[kept], requires_grad=True)
    expected = torch.nn.functional.cross_entropy(tl, torch.tensor(labels[kept]))
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    assert np.allclose(grad[kept], tl.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert not grad[~kept].any()


@pytest.mark.parametrize("make_ours,make_theirs", [
    (lambda: SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda: SGD(0.05, momentum=0.9, weight_decay=0.01), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01)),
    (lambda: SGD(0.05, momentum=0.8, nesterov=True), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    (lambda: Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (lambda: Adam(0.01, beta1=0.8, beta2=0.99, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    (lambda: AdamW(0.01, weight_decay=0.2), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.2)),
])
def test_optimizers_match_torch(make_ours, make_theirs):
    rng = np.random.default_rng(5)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    tensors = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    ours, theirs = make_ours(), make_theirs(list(tensors.values()))
    for _ in range(6):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        ours.step(params, grads)
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        theirs.step()
    for k in params:
        assert np.allclose(params[k], tensors[k].detach().numpy(), rtol=1e-12, atol=1e-14), k


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(6)
    grads = {"a": rng.standard_normal((4, 4)), "b": rng.standard_normal(3)}
    tensors = [torch.zeros(4, 4, dtype=torch.float64, requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g.copy())
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, 0.5).item()
    norm = clip_grad_norm(grads, 0.5)
    assert norm == pytest.approx(expected_norm, rel=1e-12)
    for t, g in zip(tensors, grads.values()):
        assert np.allclose(g, t.grad.numpy(), rtol=1e-12)
    assert clip_grad_norm({"a": np.ones(4)}, 10.0) == pytest.approx(2.0)  # below the limit: unchanged


def test_schedules():
    assert step_decay(10, 0.5)(25, 1.0) == pytest.approx(0.25)
    assert exponential_decay(0.9)(2, 2.0) == pytest.approx(1.62)
    cosine = cosine_decay(10, minimum=0.1)
    assert cosine(0, 1.0) == pytest.approx(1.0) and cosine(10, 1.0) == pytest.approx(0.1)
    assert cosine(5, 1.0) == pytest.approx(0.55)


def learnable_task(n=192, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 10, 2))
    return X, X[:, -3:, 0].sum(axis=1) - 0.5 * X[:, -1, 1]


def test_fit_learns_and_history_records_every_epoch():
    X, y = learnable_task()
    model = Model(fastgru.GRU(2, 16, batch_first=True, seed=0), outputs=1, learning_rate=1e-2, seed=0)
    before = model.evaluate(X, y)["loss"]
    history = model.fit(X, y, epochs=20, batch_size=32, validation_data=(X[:32], y[:32]), verbose=0)
    assert history.epochs == list(range(20))
    assert set(history.history) == {"loss", "val_loss", "learning_rate"}
    assert model.evaluate(X, y)["loss"] < 0.1 * before
    assert model.predict(X[:5]).shape == (5, 1)


def test_fit_is_reproducible_from_the_seeds():
    X, y = learnable_task(64)
    predictions = []
    for _ in range(2):
        model = Model(fastgru.GRU(2, 8, batch_first=True, seed=3), outputs=1, seed=4)
        model.fit(X, y, epochs=3, batch_size=16, verbose=0)
        predictions.append(model.predict(X))
    assert np.array_equal(predictions[0], predictions[1])


def test_classification_reports_accuracy_and_probabilities():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((128, 8, 1))
    y = (X[:, :, 0].mean(axis=1) > 0).astype(int) + (X[:, -1, 0] > 1.0)
    model = Model(fastgru.GRU(1, 16, batch_first=True, seed=0), outputs=3, loss="cross_entropy",
                  learning_rate=1e-2, seed=0)
    history = model.fit(X, y, epochs=30, batch_size=32, verbose=0, validation_data=(X, y))
    assert history.history["accuracy"][-1] > 0.85
    assert history.history["val_accuracy"][-1] == pytest.approx(model.evaluate(X, y)["accuracy"])
    proba = model.predict_proba(X)
    assert proba.shape == (128, 3) and np.allclose(proba.sum(axis=1), 1.0)


def test_ragged_lists_batch_with_lengths_and_match_one_by_one():
    rng = np.random.default_rng(8)
    sequences = [rng.standard_normal((n, 2)) for n in (3, 9, 1, 6, 9)]
    for head in ("last", "sequence"):
        model = Model(fastgru.GRU(2, 5, dtype="float64", seed=1), outputs=2, head=head, seed=1)
        together = model.predict(sequences, batch_size=3)
        for seq, out in zip(sequences, together):
            alone = model.predict([seq])[0]
            assert np.allclose(out, alone, rtol=1e-12, atol=1e-14)
        if head == "sequence":
            assert [o.shape for o in together] == [(len(s), 2) for s in sequences]
            padded = np.zeros((5, 9, 2))
            for i, s in enumerate(sequences):
                padded[i, : len(s)] = s
            dense = model.predict(padded, lengths=np.array([len(s) for s in sequences]))
            assert dense.shape == (5, 9, 2)
            assert not dense[2, 1:].any()
            assert np.allclose(dense[1], together[1])


def test_sequence_head_trains_on_ragged_targets():
    rng = np.random.default_rng(9)
    X = [rng.standard_normal((n, 1)) for n in rng.integers(2, 12, 64)]
    y = [np.cumsum(s[:, 0]) / 3 for s in X]
    model = Model(fastgru.GRU(1, 16, batch_first=True, seed=0), outputs=1, head="sequence", learning_rate=1e-2, seed=0)
    before = model.evaluate(X, y)["loss"]
    model.fit(X, y, epochs=25, batch_size=16, verbose=0)
    assert model.evaluate(X, y)["loss"] < 0.2 * before


def test_early_stopping_restores_the_best_weights():
    X, y = learnable_task(64)
    noise = np.random.default_rng(1).standard_normal(64) * 5  # validation data it cannot fit

    class Snapshots(fastgru.training.Callback):
        def __init__(self):
            self.weights = []

        def on_epoch_end(self, model, epoch, logs):
            self.weights.append(model.get_weights())

    snapshots, stopper = Snapshots(), EarlyStopping(patience=2)
    model = Model(fastgru.GRU(2, 8, batch_first=True, seed=0), outputs=1, learning_rate=3e-2, seed=0)
    history = model.fit(X, y, epochs=100, batch_size=16, verbose=0, validation_data=(X, noise),
                        callbacks=[snapshots, stopper])
    assert len(history.epochs) < 100 and stopper.stopped_epoch == history.epochs[-1]
    best = int(np.argmin(history.history["val_loss"]))
    assert best == stopper.best_epoch and history.epochs[-1] - best == 2  # patience epochs after the best
    for name, value in model.get_weights().items():
        assert np.array_equal(value, snapshots.weights[best][name]), name


def test_learning_rate_callbacks():
    X, y = learnable_task(32)
    model = Model(fastgru.GRU(2, 4, batch_first=True, seed=0), outputs=1, learning_rate=0.1, seed=0)
    history = model.fit(X, y, epochs=4, batch_size=32, verbose=0, callbacks=[LearningRateScheduler(step_decay(2, 0.5))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    model = Model(fastgru.GRU(2, 4, batch_first=True, seed=0), outputs=1, learning_rate=0.1, seed=0)
    constant = np.full(32, 1e3)  # a validation loss that never improves after the first epoch
    history = model.fit(X, y, epochs=5, batch_size=32, verbose=0, validation_data=(X, constant + np.arange(32)),
                        callbacks=[ReduceLROnPlateau(factor=0.5, patience=1, min_delta=1e9)])
    # each epoch logs the rate it ran with; from the second on, each ends with a cut
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125])
    with pytest.raises(ValueError, match="schedule: expected a finite learning rate > 0 for epoch 0, got -1"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, rate: -1)])
    with pytest.raises(ValueError, match=r"gamma: expected a factor in \(0, 1\], got -0.5"):
        exponential_decay(-0.5)


def test_clipping_bounds_the_step():
    X, y = learnable_task(32)
    y = y * 1e4  # huge gradients
    model = Model(fastgru.GRU(2, 4, batch_first=True, seed=0), outputs=1, optimizer=SGD(1.0), clip_grad_norm=1e-3, seed=0)
    before = model.get_weights()
    model.fit(X, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    after = model.get_weights()
    step = np.sqrt(sum(np.sum((after[k] - before[k]) ** 2) for k in before))
    assert step == pytest.approx(1e-3, rel=1e-3)


def test_progress_bar_on_request_and_quiet_otherwise(capsys):
    X, y = learnable_task(32)
    model = Model(fastgru.GRU(2, 4, batch_first=True, seed=0), outputs=1, seed=0)
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    model.fit(X, y, epochs=2, batch_size=8)  # "auto": pytest's stderr is not a terminal
    assert capsys.readouterr().err == ""
    model.fit(X, y, epochs=2, batch_size=8, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 2/2" in err and "4/4" in err and "loss" in err
    model.fit(X, y, epochs=2, batch_size=8, verbose=2)
    assert capsys.readouterr().err.count("\n") == 2


@pytest.mark.parametrize("cell", [fastgru.GRU, fastgru.MGU])
def test_save_load_and_pickle_round_trips(tmp_path, cell):
    X, y = learnable_task(16)
    model = Model(cell(2, 4, bidirectional=True, seed=0), outputs=3, loss=Huber(0.7), head="sequence", seed=0)
    targets = np.repeat(y[:, None, None], 10, axis=1).repeat(3, axis=2)
    model.fit(X, targets, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.safetensors", metadata={"note": "scaled by 1/3"})
    loaded = fastgru.load(tmp_path / "m.safetensors")
    assert isinstance(loaded, Model) and isinstance(loaded.recurrent, cell)
    assert loaded.metadata == {"note": "scaled by 1/3"} and loaded.loss.delta == 0.7
    assert np.array_equal(loaded.predict(X), model.predict(X))
    unpickled = pickle.loads(pickle.dumps(model))
    assert np.array_equal(unpickled.predict(X), model.predict(X))
    unpickled.fit(X, targets, epochs=1, batch_size=8, verbose=0)  # trains on after unpickling


def test_sequences_batching():
    seqs = _Sequences([np.ones((2, 1)), np.ones((4, 1))], 1, np.float32)
    x, lengths = seqs.batch(np.array([0, 1]))
    assert x.shape == (2, 4, 1) and list(lengths) == [2, 4] and not x[0, 2:].any()
    x, lengths = seqs.batch(np.array([1]))
    assert lengths is None  # a full batch needs no lengths


def test_a_diverging_step_leaves_the_weights_as_they_were():
    X, y = learnable_task(8)
    model = Model(fastgru.GRU(2, 4, batch_first=True, seed=0), outputs=1, optimizer=SGD(1e6), seed=0)
    with pytest.raises(FloatingPointError, match="fit: the (loss|gradients' norm) became") as raised, \
            np.errstate(all="ignore"):
        for _ in range(5):
            before = model.get_weights()
            model.fit(X, y * 1e20, epochs=1, verbose=0)
    assert "weights are left as they were" in str(raised.value)
    for name, value in model.get_weights().items():
        assert np.array_equal(value, before[name]) and np.isfinite(value).all(), name


def test_validation_data_with_lengths_and_per_step_targets():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((6, 5, 2))
    lengths = np.array([5, 3, 2, 5, 4, 1])
    y = rng.standard_normal((6, 5))
    model = Model(fastgru.GRU(2, 4, batch_first=True, seed=0), outputs=1, head="sequence", seed=0)
    history = model.fit(X, y, epochs=1, verbose=0, lengths=lengths, validation_data=(X, y, lengths))
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(X, y, lengths=lengths)["loss"])
    with pytest.raises(ValueError, match=r"y\[0\]: expected a target for each of its 5 steps, got 2"):
        model.fit(X, y, epochs=1, verbose=0, validation_data=(X, y[:, :2]))


def test_optimizer_settings_that_would_be_ignored_are_refused(tmp_path):
    with pytest.raises(ValueError, match="learning_rate: set it on the optimizer instance"):
        Model(fastgru.GRU(2, 4), optimizer=Adam(), learning_rate=0.5)
    used = Adam()
    X, y = learnable_task(8)
    Model(fastgru.GRU(2, 4, batch_first=True), outputs=1, optimizer=used).fit(X, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="optimizer: expected a fresh optimizer"):
        Model(fastgru.GRU(2, 4), optimizer=used)

    class Squared(MeanSquaredError):
        name = "squared"

    model = Model(fastgru.GRU(2, 4), loss=Squared())
    with pytest.raises(TypeError, match="save: the model file names its loss"):
        model.save(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_bad_inputs_name_the_argument():
    model = Model(fastgru.GRU(2, 4, batch_first=True, seed=0), outputs=1, seed=0)
    X, y = learnable_task(8)
    with pytest.raises(ValueError, match=r"X: expected shape \(samples, steps, 2\)"):
        model.fit(X[:, :, :1], y)
    with pytest.raises(ValueError, match="y: expected 8 targets"):
        model.fit(X, y[:5])
    with pytest.raises(ValueError, match="X: expected finite"):
        model.fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="epochs: expected an int >= 1, got 0"):
        model.fit(X, y, epochs=0)
    with pytest.raises(ValueError, match=r"X\[1\]: expected shape \(steps >= 1, 2\)"):
        model.predict([np.ones((3, 2)), np.ones((3, 5))])
    with pytest.raises(ValueError, match=r"validation_data: expected \(X_val, y_val\) or"):
        model.fit(X, y, validation_data=X)
    with pytest.raises(TypeError, match="callbacks: expected fastgru Callback"):
        model.fit(X, y, callbacks=[print])
    with pytest.raises(ValueError, match="loss: expected a fastgru Loss or one of"):
        Model(fastgru.GRU(2, 4), loss="hinge")
    with pytest.raises(ValueError, match="optimizer: expected"):
        Model(fastgru.GRU(2, 4), optimizer="lbfgs")
    with pytest.raises(ValueError, match="head: expected one of"):
        Model(fastgru.GRU(2, 4), head="first")
    with pytest.raises(TypeError, match="recurrent: expected a fastgru recurrent layer"):
        Model(object())
    with pytest.raises(ValueError, match="learning_rate: expected a finite number >= 0"):
        Adam(-1.0)
    classifier = Model(fastgru.GRU(2, 4, batch_first=True), outputs=3, loss="cross_entropy")
    with pytest.raises(ValueError, match=r"y: expected class indices in 0..2, got values in 0..3"):
        classifier.fit(X, np.arange(8) % 4)
    with pytest.raises(ValueError, match="predict_proba: the model's loss"):
        model.predict_proba(X)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1, got 0"):
        model.predict(X, batch_size=0)
    with pytest.raises(ValueError, match="clip_grad_norm: expected a number > 0 or None, got '1'"):
        Model(fastgru.GRU(2, 4), clip_grad_norm="1")
    assert Adam(np.float32(1e-3)).learning_rate == pytest.approx(1e-3)  # NumPy scalars are numbers too
    model.fit(X, y, epochs=1, verbose=0, callbacks=None)


@pytest.mark.parametrize("head", ["last", "sequence"])
def test_a_lone_rows_prediction_equals_its_prediction_in_a_batch(head):
    model = fastgru.Model(fastgru.GRU(3, 16, seed=0), outputs=2, head=head, seed=0)
    X = np.random.default_rng(0).standard_normal((20, 7, 3)).astype(np.float32)
    batched = model.predict(X)
    for row in (0, 13, 19):
        np.testing.assert_array_equal(model.predict(X[row : row + 1]), batched[row : row + 1])
        np.testing.assert_array_equal(model.predict(X[row : row + 2], batch_size=1), batched[row : row + 2])
