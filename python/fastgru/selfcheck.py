"""A short self-check: forward and BPTT against the NumPy reference, and a timing."""

from __future__ import annotations

import time

import numpy as np

from . import reference
from .layers import GRU


def _normalised_error(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.linalg.norm(expected)
    difference = np.linalg.norm(np.asarray(actual, dtype=np.float64) - expected)
    return difference / scale if scale > 0 else difference


def check_against_reference(reset_after, dtype, T=20, B=5, I=12, H=24, seed=0):
    """Largest normalised error of every output and gradient against the float64 reference."""
    rng = np.random.default_rng(seed)
    layer = GRU(I, H, reset_after=reset_after, dtype=dtype, seed=seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((1, B, H)).astype(dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    y, h_n = layer.forward(x, h0, train=True)
    dx, dh0 = layer.backward(dy)

    p = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    y_ref, h_ref, cache = reference.gru_forward(
        x.astype(np.float64), h0[0].astype(np.float64), p["weight_ih_l0"], p["weight_hh_l0"],
        p["bias_ih_l0"], p["bias_hh_l0"], reset_after=reset_after,
    )
    g = reference.gru_backward(cache, dy.astype(np.float64))
    errors = [_normalised_error(y, y_ref), _normalised_error(h_n[0], h_ref),
              _normalised_error(dx, g["dx"]), _normalised_error(dh0[0], g["dh0"])]
    errors += [_normalised_error(layer.grads[k + "_l0"], g[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return max(errors)


def time_forward_backward(T=100, B=32, I=256, H=256, repeats=5):
    """Median seconds of one training forward plus BPTT, float32."""
    rng = np.random.default_rng(0)
    layer = GRU(I, H, seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        layer.forward(x, train=True)
        layer.backward(dy)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def run() -> bool:
    """Prints the self-check; returns whether every error is within tolerance."""
    tolerance = {"float32": 1e-5, "float64": 1e-12}
    ok = True
    print("fastgru self-check: forward + BPTT against the NumPy reference (float64)")
    for reset_after in (True, False):
        for dtype in ("float32", "float64"):
            error = check_against_reference(reset_after, dtype)
            passed = error <= tolerance[dtype]
            ok &= passed
            convention = "reset after " if reset_after else "reset before"
            print(f"  {convention} {dtype}: max normalised error {error:.2e} "
                  f"(limit {tolerance[dtype]:.0e}) {'ok' if passed else 'FAILED'}")
    seconds = time_forward_backward()
    print(f"  forward + BPTT, T=100 B=32 I=H=256 float32: {seconds * 1e3:.1f} ms (median of 5)")
    print("self-check passed" if ok else "self-check FAILED")
    return ok
