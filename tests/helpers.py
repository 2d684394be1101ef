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
