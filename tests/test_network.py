"""Stacked and bidirectional GRUs, batch_first, variable lengths and streaming: against
torch.nn.GRU (reset after), the NumPy reference (both conventions) and central differences."""

import itertools

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import central_difference, normalised_error

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def make_problem(T, B, I, layer, lengths, seed):
    """Inputs, h0, dy and dh_n for `layer`, with dy zero past each row's length."""
    rng = np.random.default_rng(seed)
    D, H = layer.num_directions, layer.hidden_size
    x = rng.standard_normal((B, T, I) if layer.batch_first else (T, B, I))
    h0 = 0.5 * rng.standard_normal((layer.num_layers * D, B, H))
    dy = rng.standard_normal((B, T, D * H) if layer.batch_first else (T, B, D * H))
    if lengths is not None:
        for b, n in enumerate(lengths):
            if layer.batch_first:
                dy[b, n:] = 0
            else:
                dy[n:, b] = 0
    dh_n = rng.standard_normal((layer.num_layers * D, B, H))
    return [a.astype(layer.dtype) for a in (x, h0, dy, dh_n)]


def run_fastgru(layer, x, h0, dy, dh_n, lengths):
    layer.zero_grad()
    y, h_n = layer.forward(x, h0, lengths=lengths)
    dx, dh0 = layer.backward(dy, dh_n)
    return y, h_n, dx, dh0, {k: v.copy() for k, v in layer.grads.items()}


CASES = list(itertools.product([1, 2, 3], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layers, bidirectional, batch_first, with_lengths", CASES,
                         ids=lambda v: str(v))
def test_network_matches_torch(layers, bidirectional, batch_first, with_lengths, dtype):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, B, I, H = 7, 5, 4, 9
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    torch.manual_seed(layers + 2 * bidirectional)
    reference_gru = torch.nn.GRU(I, H, num_layers=layers, bidirectional=bidirectional,
                                 batch_first=batch_first).to(torch_dtype)
    layer = fastgru.GRU(I, H, num_layers=layers, bidirectional=bidirectional,
                        batch_first=batch_first, dtype=dtype)
    layer.load_state_dict(reference_gru.state_dict())
    lengths = np.array([3, 7, 1, 7, 5]) if with_lengths else None
    x, h0, dy, dh_n = make_problem(T, B, I, layer, lengths, seed=layers)

    y, h_n, dx, dh0, grads = run_fastgru(layer, x, h0, dy, dh_n, lengths)

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    if with_lengths:
        packed = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                      enforce_sorted=False)
        out, h_nt = reference_gru(packed, h0t)
        yt, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    else:
        yt, h_nt = reference_gru(xt, h0t)
    torch.autograd.backward([yt, h_nt], [torch.tensor(dy), torch.tensor(dh_n)])

    tol = TOLERANCE[dtype]
    assert normalised_error(y, yt.detach().numpy()) <= tol
    assert normalised_error(h_n, h_nt.detach().numpy()) <= tol
    assert normalised_error(dx, xt.grad.numpy()) <= tol
    assert normalised_error(dh0, h0t.grad.numpy()) <= tol
    torch_grads = dict(reference_gru.named_parameters())
    assert set(grads) == set(torch_grads)
    for name, grad in grads.items():
        assert normalised_error(grad, torch_grads[name].grad.numpy()) <= tol, name


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("layers, bidirectional, batch_first, with_lengths",
                         [(1, False, False, True), (2, True, False, True), (3, True, True, True),
                          (2, False, True, False)], ids=str)
def test_network_matches_reference(layers, bidirectional, batch_first, with_lengths, reset_after):
    T, B, I, H = 6, 4, 3, 10
    layer = fastgru.GRU(I, H, num_layers=layers, bidirectional=bidirectional,
                        batch_first=batch_first, reset_after=reset_after, dtype="float64", seed=4)
    lengths = np.array([2, 6, 6, 4]) if with_lengths else None
    x, h0, dy, dh_n = make_problem(T, B, I, layer, lengths, seed=11)
    y, h_n, dx, dh0, grads = run_fastgru(layer, x, h0, dy, dh_n, lengths)

    params = layer.state_dict()
    y_ref, h_ref, cache = reference.gru_network_forward(
        x, h0, params, layers, bidirectional, reset_after, lengths, batch_first)
    g = reference.gru_network_backward(cache, dy, dh_n)
    assert normalised_error(y, y_ref) <= 1e-12
    assert normalised_error(h_n, h_ref) <= 1e-12
    assert normalised_error(dx, g["dx"]) <= 1e-12
    assert normalised_error(dh0, g["dh0"]) <= 1e-12
    for name, grad in grads.items():
        assert normalised_error(grad, g["grads"][name]) <= 1e-12, name


@pytest.mark.parametrize("reset_after", [True, False])
def test_network_gradients_match_central_differences(reset_after):
    T, B, I, H = 4, 3, 2, 3
    layer = fastgru.GRU(I, H, num_layers=2, bidirectional=True, reset_after=reset_after,
                        dtype="float64", seed=6)
    lengths = np.array([4, 2, 3])
    x, h0, dy, dh_n = make_problem(T, B, I, layer, lengths, seed=3)
    _, _, dx, dh0, grads = run_fastgru(layer, x, h0, dy, dh_n, lengths)
    params = layer.state_dict()

    def loss(x=x, h0=h0):
        y, h_n = layer(x, h0, lengths=lengths)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    numeric_dx = central_difference(loss, x)
    assert normalised_error(dx, numeric_dx) <= 1e-7
    # Padded steps do not reach the loss: their gradient is exactly zero.
    assert np.all(dx[2:, 1] == 0) and np.all(dx[3:, 2] == 0)
    assert normalised_error(dh0, central_difference(loss, h0)) <= 1e-7
    for name in ("weight_hh_l0_reverse", "weight_ih_l1", "bias_hh_l1_reverse"):
        value = params[name].copy()

        def f(name=name, value=value):
            layer.load_state_dict({**params, name: value})
            return loss()

        assert normalised_error(grads[name], central_difference(f, value)) <= 1e-7, name
        layer.load_state_dict(params)


def test_padded_outputs_are_zero_and_final_states_are_at_each_rows_end():
    layer = fastgru.GRU(3, 5, num_layers=2, seed=1)
    x = np.random.default_rng(0).standard_normal((6, 3, 3)).astype(np.float32)
    lengths = [6, 2, 4]
    y, h_n = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        assert np.all(y[n:, b] == 0)
        y_alone, h_alone = layer(x[:n, b : b + 1])
        assert normalised_error(y[:n, b], y_alone[:, 0]) <= 1e-6
        assert normalised_error(h_n[:, b], h_alone[:, 0]) <= 1e-6


def test_padding_content_is_ignored():
    layer = fastgru.GRU(2, 4, bidirectional=True, seed=2)
    x = np.random.default_rng(1).standard_normal((5, 2, 2))
    lengths = np.array([3, 5])
    noisy = x.copy()
    noisy[3:, 0] = np.nan
    y, h_n = layer(x, lengths=lengths)
    y_noisy, h_noisy = layer(noisy, lengths=lengths)
    np.testing.assert_array_equal(y, y_noisy)
    np.testing.assert_array_equal(h_n, h_noisy)


@pytest.mark.parametrize("bad, message", [
    ([-1, 3], "0..4"), ([5, 3], "0..4"), ([1], "2 integers"), ([1.5, 2.0], "integers"),
])
def test_bad_lengths_are_clear_errors(bad, message):
    layer = fastgru.GRU(2, 3)
    with pytest.raises(ValueError, match=f"lengths.*{message}"):
        layer(np.zeros((4, 2, 2)), lengths=np.array(bad))


def test_batch_first_shapes_and_h0_shape_error():
    layer = fastgru.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    y, h_n = layer(np.zeros((5, 7, 3)))
    assert y.shape == (5, 7, 8) and h_n.shape == (4, 5, 4)
    with pytest.raises(ValueError, match=r"h0: expected shape \(4, 5, 4\)"):
        layer(np.zeros((5, 7, 3)), np.zeros((2, 5, 4)))


@pytest.mark.parametrize("reset_after", [True, False])
def test_step_through_stacked_layers_equals_whole_sequence(reset_after):
    layer = fastgru.GRU(4, 6, num_layers=3, reset_after=reset_after, seed=9)
    x = np.random.default_rng(3).standard_normal((8, 2, 4)).astype(np.float32)
    y_all, h_all = layer(x)
    h = None
    for t in range(8):
        y_t, h = layer.step(x[t], h)
        assert normalised_error(y_t, y_all[t]) <= 1e-6
    assert h.shape == (3, 2, 6)
    assert normalised_error(h, h_all) <= 1e-6


def test_bidirectional_step_is_refused():
    layer = fastgru.GRU(2, 3, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        layer.step(np.zeros((1, 2)))


def test_results_do_not_depend_on_the_thread_count(forced_threads):
    layer = fastgru.GRU(24, 40, num_layers=2, bidirectional=True, seed=5)
    x = np.random.default_rng(4).standard_normal((9, 37, 24)).astype(np.float32)
    lengths = np.random.default_rng(5).integers(1, 10, size=37)
    dy = np.random.default_rng(6).standard_normal((9, 37, 80)).astype(np.float32)
    results = []
    try:
        for threads in (1, 2):
            fastgru.set_num_threads(threads)
            layer.zero_grad()
            y, h_n = layer.forward(x, lengths=lengths)
            dx, _ = layer.backward(dy)
            results.append((y, h_n, dx, layer.grads["weight_hh_l1_reverse"].copy()))
    finally:
        fastgru.set_num_threads(0)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_a_rows_result_does_not_depend_on_its_batch_to_rounding():
    # Promised: equal to rounding (a row's place in the kernels' row tiles can change the order
    # of a few additions), not bit-identical.
    layer = fastgru.GRU(6, 20, num_layers=2, seed=7)
    x = np.random.default_rng(8).standard_normal((10, 13, 6)).astype(np.float32)
    y_batch, _ = layer(x)
    for b in (0, 6, 12):
        y_alone, _ = layer(x[:, b : b + 1])
        assert normalised_error(y_batch[:, b], y_alone[:, 0]) <= 1e-6


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.3])
def test_more_threads_than_unit_panels(reset_after, recurrent_dropout, forced_threads):
    # H = 32 is one panel on AVX-512 and B = 24 splits hidden units: a thread gets no units.
    layer = fastgru.GRU(8, 32, reset_after=reset_after, recurrent_dropout=recurrent_dropout, seed=1)
    x = np.random.default_rng(0).standard_normal((5, 24, 8)).astype(np.float32)
    try:
        fastgru.set_num_threads(2)
        y2, _ = layer.forward(x)
        dx2, _ = layer.backward(np.ones_like(y2))
        layer._mask_seeds = np.random.default_rng([1, 1])
        fastgru.set_num_threads(1)
        layer.zero_grad()
        y1, _ = layer.forward(x)
        dx1, _ = layer.backward(np.ones_like(y1))
    finally:
        fastgru.set_num_threads(0)
    assert np.all(np.isfinite(dx2))
    assert normalised_error(dx2, dx1) <= 1e-6


def test_a_cache_is_only_used_by_its_own_network():
    from fastgru import _core

    one = _core.GruF64(2, 3, 1, False, True, True,
                       [(np.zeros((9, 2)), np.zeros((9, 3)), np.zeros(9), np.zeros(9))])
    other = _core.GruF64(2, 3, 1, False, True, True,
                         [(np.zeros((9, 2)), np.zeros((9, 3)), np.zeros(9), np.zeros(9))])
    cache = _core.TrainingCacheF64()
    y, _ = one.forward(np.zeros((4, 2, 2)), None, None, False, cache)
    grads = [(np.zeros((9, 2)), np.zeros((9, 3)), np.zeros(9), np.zeros(9))]
    with pytest.raises(ValueError, match="another Network"):
        other.backward(cache, np.zeros_like(y), None, grads)
    one.backward(cache, np.zeros_like(y), None, grads)
    with pytest.raises(ValueError, match="cache: expected one filled"):
        one.backward(cache, np.zeros_like(y), None, grads)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["gru reset after", "gru reset before", "mgu"])
def test_a_saturated_update_gate_keeps_the_state_exactly(cell, dtype):
    # z = 1 (the MGU's f = 0) keeps h whatever n is, as the reference's z ⊙ h + (1 − z) ⊙ n does:
    # n + z ⊙ (h − n) would round h to the precision of n (|h| ~ 1e-3, |n| ~ 1).
    if cell == "mgu":
        layer = fastgru.MGU(3, 5, dtype=dtype, seed=2)
        saturating_bias = np.r_[np.full(5, -50.0), np.zeros(5)]  # f = σ(−50): 1 − f rounds to 1
    else:
        layer = fastgru.GRU(3, 5, reset_after=cell == "gru reset after", dtype=dtype, seed=2)
        saturating_bias = np.r_[np.zeros(5), np.full(5, 50.0), np.zeros(5)]  # z = σ(50) rounds to 1
    state = layer.state_dict()
    state["bias_ih_l0"] = saturating_bias
    layer.load_state_dict(state)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4, 3)).astype(dtype)
    h0 = (1e-3 * rng.standard_normal((1, 4, 5))).astype(dtype)
    expected = np.broadcast_to(h0[0], (6, 4, 5))
    y, h_n = layer(x, h0)
    np.testing.assert_array_equal(y, expected)
    y_train, _ = layer.forward(x, h0, train=True)
    np.testing.assert_array_equal(y_train, expected)
    y_t, _ = layer.step(x[0], h0)
    np.testing.assert_array_equal(y_t, h0[0])
