"""One sequence (B = 1) and the streaming step: one thread and a split of the hidden units give
the same bits, and the fast paths of ``GRU.step`` and inference calls for arrays already in the
core's form. Each must compute what the general paths compute, and every input
the fast paths pass on must still be checked and named by the general ones."""

import numpy as np
import pytest

import fastgru
from fastgru import reference

from .helpers import normalised_error


def _layer(cell, hidden=40, **kwargs):
    if cell == "gru_after":
        return fastgru.GRU(7, hidden, reset_after=True, **kwargs)
    if cell == "gru_before":
        return fastgru.GRU(7, hidden, reset_after=False, **kwargs)
    if cell == "mgu":
        return fastgru.MGU(7, hidden, **kwargs)
    if cell.startswith("ligru"):
        return fastgru.LiGRU(7, hidden, activation=cell.split("_", 1)[1], **kwargs)
    raise ValueError(cell)


CELLS = ["gru_after", "gru_before", "mgu", "ligru_relu", "ligru_tanh", "ligru_leaky_relu"]


def _with_running_statistics(layer, seed):
    """A LiGRU whose inference normalisation is not the identity (else it tests little)."""
    if not isinstance(layer, fastgru.LiGRU):
        return layer
    rng = np.random.default_rng(seed)
    state = layer.state_dict()
    for name, value in state.items():
        if name.startswith("bn_running_mean"):
            state[name] = rng.standard_normal(value.shape) * 0.3
        elif name.startswith("bn_running_var"):
            state[name] = rng.uniform(0.5, 2.0, value.shape)
        elif name.startswith("bn_weight"):
            state[name] = rng.uniform(0.5, 1.5, value.shape)
        elif name.startswith("bn_bias"):
            state[name] = rng.standard_normal(value.shape) * 0.1
    layer.load_state_dict(state)
    return layer


def _states(layer, batch):
    return layer.num_layers * layer.num_directions, batch, layer.hidden_size


@pytest.fixture
def threads(forced_threads):
    """Sets fastgru's thread count for the test, used whatever the work; restores the default after."""
    return forced_threads


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [5, 256])
def test_one_row_is_the_same_at_one_and_two_threads(cell, dtype, hidden, threads):
    # Two threads split the hidden units: the same kernels over the same blocks as one thread,
    # so the same bits.
    layer = _with_running_statistics(_layer(cell, hidden, dtype=dtype, seed=3), seed=4)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((13, 1, 7)).astype(dtype)
    h0 = rng.standard_normal(_states(layer, 1)).astype(dtype)
    results = []
    for n in (1, 2):
        threads(n)
        results.append((*layer(x, h0), *layer(x), *layer.step(x[0], h0), *layer.forward(x, h0, train=False,
                                                                                           lengths=np.array([6]))))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("kwargs", [dict(num_layers=3), dict(bidirectional=True), dict(num_layers=2, zoneout=0.3),
                                    dict(bias=False), dict(batch_first=True)],
                         ids=["layers", "bidirectional", "zoneout", "no-bias", "batch-first"])
def test_one_row_networks_are_the_same_at_one_and_two_threads(kwargs, threads):
    layer = fastgru.GRU(7, 160, seed=6, **kwargs)
    x = np.random.default_rng(7).standard_normal((1, 11, 7) if layer.batch_first else (11, 1, 7)).astype(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        results.append((*layer(x), *layer(x, lengths=np.array([4]))))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_ligru_with_unfolded_normalisation_is_the_same_at_one_and_two_threads(threads):
    # An infinite γ cannot be folded into the input weights: inference normalises explicitly.
    layer = _with_running_statistics(fastgru.LiGRU(7, 160, seed=8), seed=9)
    state = layer.state_dict()
    state["bn_weight_l0"][3] = np.inf
    layer.load_state_dict(state)
    x = np.random.default_rng(10).standard_normal((9, 1, 7)).astype(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        results.append(layer(x))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("threads_used", [1, 2])
def test_one_row_equals_its_row_in_a_batch(cell, threads_used, threads):
    # To rounding: a row's place in the kernels' row tiles can change the order of a few sums.
    threads(threads_used)
    layer = _with_running_statistics(_layer(cell, 48, seed=11), seed=12)
    rng = np.random.default_rng(13)
    x = rng.standard_normal((17, 6, 7)).astype(np.float32)
    h0 = rng.standard_normal(_states(layer, 6)).astype(np.float32)
    y_batch, h_batch = layer(x, h0)
    for b in (0, 3, 5):
        y_row, h_row = layer(x[:, b:b + 1], h0[:, b:b + 1])
        assert normalised_error(y_row, y_batch[:, b:b + 1]) <= 1e-6
        assert normalised_error(h_row, h_batch[:, b:b + 1]) <= 1e-6


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("shape", [(100, 7, 128), (30, 16, 512), (1, 3, 9), (25, 5, 33)], ids=str)
def test_one_row_matches_the_float64_reference(reset_after, shape, threads):
    threads(1)
    T, I, H = shape
    layer = fastgru.GRU(I, H, reset_after=reset_after, seed=T + H)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((T, 1, I)).astype(np.float32)
    h0 = (rng.standard_normal((1, 1, H)) * 0.5).astype(np.float32)
    params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    y_ref, h_ref, _ = reference.gru_forward(x.astype(np.float64), h0[0].astype(np.float64), params["weight_ih_l0"],
                                            params["weight_hh_l0"], params["bias_ih_l0"], params["bias_hh_l0"],
                                            reset_after=reset_after)
    y, h_n = layer(x, h0)
    assert normalised_error(y, y_ref) <= 1e-5
    assert normalised_error(h_n[0], h_ref) <= 1e-5
    # The step loop (a projection of one row at a time) agrees to rounding.
    h = h0
    for t in range(T):
        y_t, h = layer.step(x[t], h)
        assert normalised_error(y_t, y[t]) <= 1e-6
    assert normalised_error(h, h_n) <= 1e-6


@pytest.mark.parametrize("cell", CELLS)
def test_one_row_step_loop_equals_the_whole_sequence(cell, threads):
    threads(1)
    layer = _with_running_statistics(_layer(cell, 24, num_layers=2, seed=15), seed=16)
    x = np.random.default_rng(17).standard_normal((20, 7)).astype(np.float32)
    y_all, h_all = layer(x)  # unbatched: (T, I)
    h = None
    for t in range(len(x)):
        y_t, h = layer.step(x[t], h)
        assert y_t.shape == (24,) and h.shape == (2, 24)
        assert normalised_error(y_t, y_all[t]) <= 1e-6
    assert normalised_error(h, h_all) <= 1e-6


# ------------------------------------------------------------------------ the fast paths
def _general_forms(array):
    """The same values in forms the fast paths pass on to the general ones."""
    class Sub(np.ndarray):
        pass

    forms = {"float64": array.astype(np.float64), "list": array.tolist(),
             "strided": np.repeat(array, 2, axis=-1)[..., ::2],
             "byteswapped": array.astype(array.dtype.newbyteorder(">")), "subclass": array.view(Sub)}
    if array.ndim > 1:  # a vector is C- and Fortran-contiguous alike
        forms["fortran"] = np.asfortranarray(array)
    return forms


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batched", [True, False])
def test_step_fast_path_equals_the_general_path(cell, batched):
    layer = _with_running_statistics(_layer(cell, 12, num_layers=2, seed=18), seed=19)
    rng = np.random.default_rng(20)
    x_t = rng.standard_normal((3, 7) if batched else (7,)).astype(np.float32)
    h = rng.standard_normal((2, 3, 12) if batched else (2, 12)).astype(np.float32)
    core = layer._inference_core()
    assert core.try_step(x_t, h) is not None and core.try_step(x_t, None) is not None
    y_fast, h_fast = layer.step(x_t, h)
    # reset=False everywhere takes the general path: the same computation.
    no_reset = np.zeros(3, bool) if batched else np.bool_(False)
    y_general, h_general = layer.step(x_t, h, reset=no_reset)
    np.testing.assert_array_equal(y_fast, y_general)
    np.testing.assert_array_equal(h_fast, h_general)
    assert y_fast.shape == y_general.shape and h_fast.shape == h_general.shape
    assert y_fast.dtype == h_fast.dtype == np.float32
    for name, form in _general_forms(x_t).items():
        assert core.try_step(form, h) is None, name
        y, h_next = layer.step(form, h)
        np.testing.assert_array_equal(y, y_fast, err_msg=name)
        np.testing.assert_array_equal(h_next, h_fast, err_msg=name)
    for name, form in _general_forms(h).items():
        assert core.try_step(x_t, form) is None, name
        y, h_next = layer.step(x_t, form)
        np.testing.assert_array_equal(h_next, h_fast, err_msg=name)
    # The outputs are the caller's own arrays, not views of each other or of the inputs.
    assert not np.shares_memory(y_fast, h_fast) and not np.shares_memory(h_fast, h)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_fast_path_equals_the_general_path(cell):
    layer = _with_running_statistics(_layer(cell, 12, num_layers=2, bidirectional=True, seed=21), seed=22)
    rng = np.random.default_rng(23)
    x = rng.standard_normal((5, 3, 7)).astype(np.float32)
    h0 = rng.standard_normal((4, 3, 12)).astype(np.float32)
    core = layer._inference_core()
    assert core.try_forward(x, h0, False) is not None
    y_fast, h_fast = layer(x, h0)
    y_general, h_general = layer.forward(x, h0, train=False, lengths=np.full(3, 5))
    np.testing.assert_array_equal(y_fast, y_general)
    np.testing.assert_array_equal(h_fast, h_general)
    for name, form in _general_forms(x).items():
        assert core.try_forward(form, h0, False) is None, name
        y, h_n = layer(form, h0)
        np.testing.assert_array_equal(y, y_fast, err_msg=name)
        np.testing.assert_array_equal(h_n, h_fast, err_msg=name)
    for name, form in _general_forms(h0).items():
        assert core.try_forward(x, form, False) is None, name
        np.testing.assert_array_equal(layer(x, form)[1], h_fast, err_msg=name)


def test_fast_paths_leave_bad_inputs_to_the_general_path_which_names_them():
    layer = fastgru.GRU(3, 4, num_layers=2, seed=24)
    x_t, h = np.zeros((2, 3), np.float32), np.zeros((2, 2, 4), np.float32)
    cases = [
        (lambda: layer.step(np.zeros((2, 5), np.float32), h), ValueError, r"x_t: expected 3 input features"),
        (lambda: layer.step(np.zeros((1, 2, 3), np.float32), h), ValueError, r"x_t: expected \(B, I\)"),
        (lambda: layer.step(x_t, np.zeros((2, 3, 4), np.float32)), ValueError, r"h: expected shape \(2, 2, 4\)"),
        (lambda: layer.step(x_t, np.zeros((2, 4), np.float32)), ValueError, r"h: expected shape \(2, 2, 4\)"),
        (lambda: layer.step(x_t.astype(np.complex64), h), TypeError, r"x_t: expected a real numeric array"),
        (lambda: layer.step(x_t, h.astype(np.complex64)), TypeError, r"h: expected a real numeric array"),
        (lambda: layer.step(x_t, h, reset=np.array([1, 0])), ValueError, r"reset: expected a bool array"),
        (lambda: layer(np.zeros((5, 2, 4), np.float32)), ValueError, r"x: expected 3 input features"),
        (lambda: layer(np.zeros((5, 2, 3), np.float32), np.zeros((2, 3, 4), np.float32)), ValueError,
         r"h0: expected shape \(2, 2, 4\)"),
        (lambda: layer(np.zeros((5, 2, 3), np.complex64)), TypeError, r"x: expected a real numeric array"),
        (lambda: layer.forward(np.zeros((5, 2, 3), np.float32), train="no"), TypeError, r"train"),
        (lambda: fastgru.GRU(3, 4, bidirectional=True).step(x_t), ValueError, r"bidirectional"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


@pytest.mark.parametrize("cell", CELLS)
def test_empty_batches_take_the_general_path(cell):
    layer = _layer(cell, 4, seed=25)
    assert layer._inference_core().try_step(np.zeros((0, 7), np.float32), None) is None
    y_t, h = layer.step(np.zeros((0, 7), np.float32))
    assert y_t.shape == (0, 4) and h.shape == (1, 0, 4)
    assert layer._inference_core().try_forward(np.zeros((0, 2, 7), np.float32), None, False) is None
    y, h_n = layer(np.zeros((0, 2, 7), np.float32))
    assert y.shape == (0, 2, 4) and np.array_equal(h_n, np.zeros((1, 2, 4), np.float32))
