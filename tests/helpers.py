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
