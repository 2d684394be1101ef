"""Shared test helpers."""

import numpy as np


def normalised_error(actual, expected):
    """‖actual − expected‖ / ‖expected‖ in float64 (absolute error when expected is zero).

    NaN anywhere gives NaN, which fails every `<=` comparison.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.linalg.norm(expected)
    difference = np.linalg.norm(actual - expected)
    return difference / scale if scale > 0 else difference


def central_difference(f, array, eps=1e-6):
    """d f() / d array by central differences, perturbing `array` in place one element at a time."""
    grad = np.zeros_like(array)
    flat, out = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = f()
        flat[i] = saved - eps
        minus = f()
        flat[i] = saved
        out[i] = (plus - minus) / (2 * eps)
    return grad


# The batch-normalised cells' (LiGRU, LiBRU) shapes against their references: (T, B, I, H), layer
# settings and lengths.
BATCH_NORM_CASES = {
    "one layer": dict(shape=(7, 3, 5, 13), config={}, lengths=None),
    # (I = 1 would make dL/dW_ih exactly zero: the normalisation undoes any scale of one input.)
    "one unit": dict(shape=(4, 2, 2, 1), config={}, lengths=None),
    "wide": dict(shape=(5, 17, 16, 33), config={}, lengths=[5, 2, 4, 1, 3, 5, 5, 2, 1, 4, 3, 3, 5, 2, 4, 1, 5]),
    "2 layers bidirectional lengths": dict(shape=(6, 4, 3, 10), config=dict(num_layers=2, bidirectional=True),
                                           lengths=[6, 2, 5, 1]),
    "batch first": dict(shape=(4, 3, 2, 5), config=dict(batch_first=True, num_layers=2), lengths=[3, 4, 2]),
}


def randomised_batch_norm_state(layer, rng):
    """The layer's parameters with γ, β and the running statistics away from their initial values."""
    state = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    for name, value in state.items():
        if name.startswith("bn_weight"):
            state[name] = rng.uniform(0.5, 1.5, value.shape)
        elif name.startswith(("bn_bias", "bn_running_mean")):
            state[name] = 0.3 * rng.standard_normal(value.shape)
        elif name.startswith("bn_running_var"):
            state[name] = rng.uniform(0.5, 2.0, value.shape)
    layer.load_state_dict(state)
    return state



def assert_gradients_match_central_differences(gradients, fresh, params, x, h0, dy, dh_n, names, lengths=None,
                                               tol=1e-7):
    """A layer's gradients from one backward against central differences of
    sum(dy * y) + sum(dh_n * h_n) over a training forward on x, h0 and lengths: ``gradients`` is
    (dx, dh0, grads): what backward returned and the layer's ``grads``, checked for the
    parameters ``names``; ``fresh(state)`` builds a layer of weights ``state`` whose first
    training forward draws the masks the measured one drew."""
    dx, dh0, grads = gradients

    def loss(x=x, h0=h0, state=params):
        y, h_n = fresh(state).forward(x, h0, lengths=lengths)
        return float(np.sum(dy * y) + np.sum(dh_n * h_n))

    assert normalised_error(dx, central_difference(loss, x)) <= tol
    assert normalised_error(dh0, central_difference(loss, h0)) <= tol
    for name in names:
        value = params[name].copy()
        numeric = central_difference(lambda: loss(state={**params, name: value}), value)
        assert normalised_error(grads[name], numeric) <= tol, name


def assert_one_layer_matches_the_reference(layer, outputs, input_gradients, reference_outputs, reference_gradients,
                                          tol):
    """A one-layer, one-direction layer's (y, h_n) and (dx, dh0) from forward and backward, and its
    grads, against the reference's (y, h_n) with h_n (B, H) and gradients dict (``dx``, ``dh0``
    (B, H) and each parameter under its name without ``_l0``)."""
    (y, h_n), (dx, dh0), (y_ref, h_ref) = outputs, input_gradients, reference_outputs
    assert normalised_error(y, y_ref) <= tol and normalised_error(h_n[0], h_ref) <= tol
    assert normalised_error(dx, reference_gradients["dx"]) <= tol
    assert normalised_error(dh0[0], reference_gradients["dh0"]) <= tol
    for name, grad in layer.grads.items():
        assert normalised_error(grad, reference_gradients[name[: -len("_l0")]]) <= tol, name


def assert_steps_equal_the_sequence(layer, x, tol=1e-6):
    """``layer.step`` over x (T, B, I) step by step gives the sequence's outputs and final states,
    and a row reset at a step starts again from zeros."""
    y, h_n = layer(x)
    h = None
    for t in range(len(x)):
        y_t, h = layer.step(x[t], h)
        assert normalised_error(y_t, y[t]) <= tol
    assert normalised_error(h, h_n) <= tol
    _, h = layer.step(x[0], h, reset=np.arange(x.shape[1]) == 0)
    assert normalised_error(h[:, 0], layer(x[:1, :1])[1][:, 0]) <= tol
