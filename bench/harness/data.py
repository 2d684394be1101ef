"""The arrays every implementation reads (written once per shape) and the results they are
checked against: the float64 reference (fastgru.reference) and fastgru's float32 output, which the
reduced-precision peers' errors are measured against."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import CONVENTIONS


def shape_id(s):
    return f"T{s['T']}_B{s['B']}_I{s['I']}_H{s['H']}"


def flop_forward(s):
    return 2.0 * s["T"] * s["B"] * 3 * s["H"] * (s["I"] + s["H"])


def make_data(directory: Path, T, B, I, H, seed, with_backward=True):
    """Writes one problem's arrays (raw float32), the float64 reference results and fastgru's float32
    output (what the reduced-precision peers' errors are measured against)."""
    import fastgru
    from fastgru import reference

    fastgru.set_num_threads(1)  # no thread pool left waiting in the driver beside the timed workers

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, T, B, I, H])
    bound = 1.0 / math.sqrt(H)
    arrays = {
        "x": rng.uniform(-1, 1, (T, B, I)),
        "h0": rng.uniform(-1, 1, (B, H)),
        "dy": rng.standard_normal((T, B, H)),
        "w_ih": rng.uniform(-bound, bound, (3 * H, I)),
        "w_hh": rng.uniform(-bound, bound, (3 * H, H)),
        "b_ih": rng.uniform(-bound, bound, (3 * H,)),
        "b_hh": rng.uniform(-bound, bound, (3 * H,)),
    }
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    for name, a in arrays.items():
        a.tofile(directory / f"{name}.f32")
    a64 = {k: v.astype(np.float64) for k, v in arrays.items()}
    for conv in CONVENTIONS:
        y, _, cache = reference.gru_forward(a64["x"], a64["h0"], a64["w_ih"], a64["w_hh"], a64["b_ih"],
                                            a64["b_hh"], reset_after=(conv == "reset_after"))
        np.save(directory / f"ref_y_{conv}.npy", y.astype(np.float32))
        layer = fastgru.GRU(I, H, reset_after=(conv == "reset_after"), dtype="float32")
        layer.load_state_dict(torch_state(arrays))
        np.save(directory / f"fastgru_y_{conv}.npy", layer(arrays["x"], arrays["h0"][np.newaxis])[0])
        if with_backward:
            g = reference.gru_backward(cache, a64["dy"])
            for key, name in (("dx", "dx"), ("dh0", "dh0"), ("weight_hh", "dw_hh")):
                np.save(directory / f"ref_{name}_{conv}.npy", g[key].astype(np.float32))
        del cache


def load_data(directory: Path, T, B, I, H):
    shapes = {"x": (T, B, I), "h0": (B, H), "dy": (T, B, H), "w_ih": (3 * H, I), "w_hh": (3 * H, H),
              "b_ih": (3 * H,), "b_hh": (3 * H,)}
    return {k: np.fromfile(directory / f"{k}.f32", dtype=np.float32).reshape(v) for k, v in shapes.items()}


def load_ref(directory: Path, name, conv):
    return np.load(directory / f"ref_{name}_{conv}.npy")


def load_fastgru_y(directory: Path, conv):
    """fastgru's float32 output y on this problem's inputs."""
    return np.load(directory / f"fastgru_y_{conv}.npy")


def torch_state(d):
    return {"weight_ih_l0": d["w_ih"], "weight_hh_l0": d["w_hh"], "bias_ih_l0": d["b_ih"], "bias_hh_l0": d["b_hh"]}

