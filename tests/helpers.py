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
