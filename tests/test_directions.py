"""Layers that run backward in time (``reverse=True``: ONNX's direction="reverse", Keras's
go_backwards): against the bidirectional layer's reverse half and the NumPy reference, central
differences through stacks with lengths, the model file in both readers, and refusals."""

import numpy as np
import pytest

import fastgru
from fastgru import _core, reference

from .helpers import central_difference, normalised_error

CLASSES = [fastgru.GRU, fastgru.MGU, fastgru.LiGRU, fastgru.LiBRU]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_reverse_layer_is_the_bidirectional_layers_second_half(cls):
    rng = np.random.default_rng(0)
    lengths = np.array([5, 2, 4])
    x = rng.standard_normal((5, 3, 4))
    both = cls(4, 6, num_layers=2, bidirectional=True, dtype="float64", seed=1)
    y_both, h_both = both(x, lengths=lengths)
    # A reverse network of the reverse halves: its layer k > 0 reads both of layer k-1's halves,
    # so only the first layer can be compared on its own.
    reverse = cls(4, 6, reverse=True, dtype="float64", seed=2)
    state = both.state_dict()
    reverse.load_state_dict({name.replace("_l0_reverse", "_l0"): value for name, value in state.items()
                             if name.endswith("_l0_reverse")})
    first = cls(4, 6, bidirectional=True, dtype="float64", seed=3)
    first.load_state_dict({name: value for name, value in state.items() if "_l0" in name})
    y_first, h_first = first(x, lengths=lengths)
    y_reverse, h_reverse = reverse(x, lengths=lengths)
    assert normalised_error(y_reverse, y_first[..., 6:]) <= 1e-14
    assert normalised_error(h_reverse[0], h_first[1]) <= 1e-14
    assert y_both.shape == (5, 3, 12) and h_both.shape == (4, 3, 6)


@pytest.mark.parametrize("batch_first", [False, True])
def test_a_reverse_gru_runs_each_row_from_its_last_real_step(batch_first):
    rng = np.random.default_rng(4)
    lengths = np.array([3, 6, 1, 6])
    x = rng.standard_normal((6, 4, 2))
    layer = fastgru.GRU(2, 5, reverse=True, batch_first=batch_first, dtype="float64", seed=5)
    y, h_n = layer(x.transpose(1, 0, 2) if batch_first else x, lengths=lengths)
    if batch_first:
        y = y.transpose(1, 0, 2)
    p = layer.state_dict()
    for b, n in enumerate(lengths):
        y_ref, h_ref, _ = reference.gru_forward(x[:n, b : b + 1][::-1], None, p["weight_ih_l0"], p["weight_hh_l0"],
                                                 p["bias_ih_l0"], p["bias_hh_l0"])
        assert normalised_error(y[:n, b], y_ref[::-1, 0]) <= 1e-12
        assert np.all(y[n:, b] == 0)
        assert normalised_error(h_n[0, b], h_ref[0]) <= 1e-12


@pytest.mark.parametrize("cls", [fastgru.GRU, fastgru.LiBRU], ids=lambda c: c.__name__)
def test_reverse_stacks_with_lengths_match_central_differences(cls):
    layer = cls(2, 3, num_layers=2, reverse=True, dtype="float64", seed=6, zoneout=0.2)
    rng = np.random.default_rng(7)
    lengths = np.array([4, 2, 3])
    x, h0 = rng.standard_normal((4, 3, 2)), 0.5 * rng.standard_normal((2, 3, 3))
    dy, dh_n = rng.standard_normal((4, 3, 3)), rng.standard_normal((2, 3, 3))
    for b, n in enumerate(lengths):
        dy[n:, b] = 0
    params = layer.state_dict()

    def fresh(state=params):
        other = cls(2, 3, num_layers=2, reverse=True, dtype="float64", seed=11, zoneout=0.2)
        other.load_state_dict(state)
        return other

    trained = fresh()
    trained.forward(x, h0, lengths=lengths, train=True)
    dx, dh0 = trained.backward(dy, dh_n)

    def loss(x=x, h0=h0, state=params):
        y, h_n = fresh(state).forward(x, h0, lengths=lengths, train=True)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    assert normalised_error(dx, central_difference(loss, x)) <= 1e-7
    assert normalised_error(dh0, central_difference(loss, h0)) <= 1e-7
    for name in ("weight_ih_l0", "weight_hh_l1"):
        value = params[name].copy()
        numeric = central_difference(lambda: loss(state={**params, name: value}), value)
        assert normalised_error(trained.grads[name], numeric) <= 1e-7, name


def test_reverse_layers_in_the_model_file_both_readers_and_pickles(tmp_path):
    import pickle

    layer = fastgru.GRU(3, 4, num_layers=2, reverse=True, seed=8)
    layer.save(tmp_path / "reverse.safetensors")
    loaded = fastgru.load(tmp_path / "reverse.safetensors")
    assert loaded.reverse and loaded.config() == layer.config()
    x = np.random.default_rng(9).standard_normal((5, 2, 3))
    y = layer(x.astype(np.float32))[0]
    np.testing.assert_array_equal(loaded(x.astype(np.float32))[0], y)
    core = _core.load_model_file_f64(str(tmp_path / "reverse.safetensors"))
    assert normalised_error(core.forward(x, None, None, False, None)[0], y) <= 1e-6
    assert pickle.loads(pickle.dumps(layer)).reverse


def test_reverse_is_refused_where_it_cannot_be_honoured():
    with pytest.raises(ValueError, match="reverse: a bidirectional layer runs both directions already"):
        fastgru.GRU(2, 3, bidirectional=True, reverse=True)
    with pytest.raises(TypeError, match="reverse"):
        fastgru.GRU(2, 3, reverse="yes")
    layer = fastgru.MGU(2, 3, reverse=True)
    with pytest.raises(ValueError, match="step: a reverse MGU needs the whole sequence"):
        layer.step(np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave", None])
def test_merged_directions_match_central_differences_and_the_concatenation(merge_mode):
    rng = np.random.default_rng(12)
    lengths = np.array([4, 2, 3])
    x = rng.standard_normal((4, 3, 2))
    layer = fastgru.GRU(2, 3, num_layers=2, bidirectional=True, merge_mode=merge_mode, dtype="float64", seed=13)
    concat = fastgru.GRU(2, 3, num_layers=2, bidirectional=True, dtype="float64", seed=13)
    both, _ = concat(x, lengths=lengths)
    forward, backward = both[..., :3], both[..., 3:]
    expected = {"sum": forward + backward, "mul": forward * backward, "ave": (forward + backward) / 2,
                None: np.stack([forward, backward], axis=2)}[merge_mode]
    y, _ = layer(x, lengths=lengths)
    assert normalised_error(y, expected) <= 1e-14
    dy = rng.standard_normal(y.shape)
    for b, n in enumerate(lengths):
        dy[n:, b] = 0
    layer.forward(x, lengths=lengths, train=True)
    dx, _ = layer.backward(dy)
    params = layer.state_dict()

    def loss(x=x, state=params):
        other = fastgru.GRU(2, 3, num_layers=2, bidirectional=True, merge_mode=merge_mode, dtype="float64")
        other.load_state_dict(state)
        return float(np.sum(dy * other(x, lengths=lengths)[0]))

    assert normalised_error(dx, central_difference(loss, x)) <= 1e-7
    value = params["weight_hh_l1_reverse"].copy()
    numeric = central_difference(lambda: loss(state={**params, "weight_hh_l1_reverse": value}), value)
    assert normalised_error(layer.grads["weight_hh_l1_reverse"], numeric) <= 1e-7


@pytest.mark.parametrize("merge_mode", ["sum", None])
def test_merged_layers_in_the_model_file_and_models(merge_mode, tmp_path):
    layer = fastgru.GRU(3, 4, bidirectional=True, merge_mode=merge_mode, seed=14)
    layer.save(tmp_path / "merged.safetensors")
    loaded = fastgru.load(tmp_path / "merged.safetensors")
    assert loaded.merge_mode == merge_mode
    x = np.random.default_rng(15).standard_normal((5, 2, 3))
    y = layer(x.astype(np.float32))[0]
    np.testing.assert_array_equal(loaded(x.astype(np.float32))[0], y)
    # The C++ reader merges as Python does; merge_mode None is the concatenation, shaped apart.
    core_y = _core.load_model_file_f64(str(tmp_path / "merged.safetensors")).forward(x, None, None, False, None)[0]
    assert normalised_error(core_y, y.reshape(core_y.shape)) <= 1e-6
    if merge_mode is None:
        with pytest.raises(ValueError, match="merge_mode=None gives the directions apart"):
            fastgru.Model(layer, outputs=2, head="sequence")
    else:
        model = fastgru.Model(layer, outputs=2, head="sequence", seed=0)
        assert model.predict(x.transpose(1, 0, 2)).shape == (2, 5, 2)
        model.save(tmp_path / "model.safetensors")
        np.testing.assert_array_equal(fastgru.load(tmp_path / "model.safetensors").predict(x.transpose(1, 0, 2)),
                                      model.predict(x.transpose(1, 0, 2)))


def test_merge_modes_are_refused_where_they_cannot_be_honoured():
    with pytest.raises(ValueError, match="merge_mode: only a bidirectional layer has two directions to merge"):
        fastgru.GRU(2, 3, merge_mode="sum")
    with pytest.raises(ValueError, match="merge_mode: expected one of"):
        fastgru.GRU(2, 3, bidirectional=True, merge_mode="max")
    layer = fastgru.GRU(2, 3, bidirectional=True, merge_mode="ave")
    layer.forward(np.zeros((4, 1, 2)), train=True)
    with pytest.raises(ValueError, match=r"dy: expected shape \(4, 1, 3\)"):
        layer.backward(np.zeros((4, 1, 6)))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_stateful_layer_continues_where_its_last_call_ended(cls):
    import pickle

    x = np.random.default_rng(16).standard_normal((7, 3, 2))
    whole = cls(2, 4, num_layers=2, dtype="float64", seed=17)
    layer = cls(2, 4, num_layers=2, dtype="float64", seed=17, stateful=True)
    y, h_n = whole(x)
    first, _ = layer(x[:3])
    # Training calls carry the states too (those of the batch-normalised cells normalise with
    # the batch's statistics, so they are compared at inference).
    second, h = layer.forward(x[3:5], train=not layer._description["normalises_inputs"])
    if layer._saved is not None:
        layer.backward(np.ones_like(second))
    y_t, h = layer.step(x[5])
    y_last, h_last = layer(x[6:])
    assert normalised_error(np.concatenate([first, second, y_t[None], y_last]), y) <= 1e-12
    assert normalised_error(h_last, h_n) <= 1e-12
    # An explicit h0 starts from it; reset_states starts from zeros again.
    np.testing.assert_array_equal(layer(x[:3], np.zeros((2, 3, 4)))[0], first)
    layer.reset_states()
    np.testing.assert_array_equal(layer(x[:3])[0], first)
    with pytest.raises(ValueError, match="carries the states of 3 rows from its last call, and this call has 2 rows"):
        layer(x[:3, :2])
    copy = pickle.loads(pickle.dumps(layer))  # the states are not saved: a copy starts from zeros
    np.testing.assert_array_equal(copy(x[:3])[0], first)
    with pytest.raises(ValueError, match="reset_states: this .* has stateful=False"):
        whole.reset_states()


@pytest.mark.parametrize("batch_first", [False, True])
def test_rows_of_no_steps_output_zeros_and_keep_their_initial_state(batch_first):
    layer = fastgru.GRU(2, 3, num_layers=2, bidirectional=True, merge_mode="sum", batch_first=batch_first,
                        dtype="float64", seed=18)
    rng = np.random.default_rng(19)
    lengths = np.array([0, 4, 0, 2])
    x, h0 = rng.standard_normal((4, 4, 2)), rng.standard_normal((4, 4, 3))
    xb = np.ascontiguousarray(x.transpose(1, 0, 2)) if batch_first else x
    y, h_n = layer(xb, h0, lengths=lengths)
    kept = np.array([1, 3])
    y_kept, h_kept = layer(xb[kept] if batch_first else xb[:, kept], h0[:, kept], lengths=lengths[kept])
    y_rows = y if batch_first else y.transpose(1, 0, 2)
    y_kept_rows = y_kept if batch_first else y_kept.transpose(1, 0, 2)
    assert np.all(y_rows[[0, 2]] == 0) and np.array_equal(y_rows[kept], y_kept_rows)
    assert np.array_equal(h_n[:, [0, 2]], h0[:, [0, 2]]) and np.array_equal(h_n[:, kept], h_kept)
    dy, dh_n = rng.standard_normal(y.shape), rng.standard_normal(h_n.shape)
    layer.forward(xb, h0, lengths=lengths, train=True)
    dx, dh0 = layer.backward(dy, dh_n)
    dx_rows = dx if batch_first else dx.transpose(1, 0, 2)
    assert np.all(dx_rows[[0, 2]] == 0) and np.array_equal(dh0[:, [0, 2]], dh_n[:, [0, 2]])

    def loss(h0=h0, x=xb):
        out, states = layer(x, h0, lengths=lengths)
        return float(np.sum(dy * out) + np.sum(dh_n * states))

    assert normalised_error(dh0, central_difference(loss, h0)) <= 1e-7
    assert normalised_error(dx, central_difference(lambda: loss(x=xb), xb)) <= 1e-7
    every_row_empty, states = layer(xb, h0, lengths=np.zeros(4, np.int64))
    assert np.all(every_row_empty == 0) and np.array_equal(states, h0)
