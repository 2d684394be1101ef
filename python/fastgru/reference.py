"""The NumPy reference GRU: the project's definition of right.

Plain, readable NumPy, one line per equation of ``shared/gru-math.md`` (§1 reset after the
recurrent product, §2 reset before it, §6 backpropagation through time). It computes in the
dtype of its inputs; the tests run it in float64. Speed is not its purpose.

Shapes: ``x`` (T, B, I), ``h0`` (B, H), weights in PyTorch's layout with row blocks r, z, n:
``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` and ``bias_hh`` (3H,) or None.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gru_forward", "gru_backward"]


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _blocks(matrix_or_vector, hidden):
    """Split the leading axis into the r, z, n blocks."""
    return matrix_or_vector[:hidden], matrix_or_vector[hidden : 2 * hidden], matrix_or_vector[2 * hidden :]


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, reset_after=True):
    """Run a GRU over a sequence.

    Returns ``(y, h_n, cache)``: y (T, B, H), h_n (B, H), and what :func:`gru_backward` needs.
    ``h0`` may be None (zeros).
    """
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    dtype = np.result_type(x, weight_ih)
    zeros = np.zeros(3 * H, dtype=dtype)
    b_i = zeros if bias_ih is None else bias_ih
    b_h = zeros if bias_hh is None else bias_hh
    W_ir, W_iz, W_in = _blocks(weight_ih, H)
    W_hr, W_hz, W_hn = _blocks(weight_hh, H)
    b_ir, b_iz, b_in = _blocks(b_i, H)
    b_hr, b_hz, b_hn = _blocks(b_h, H)

    h = np.zeros((B, H), dtype=dtype) if h0 is None else h0
    y = np.empty((T, B, H), dtype=dtype)
    steps = []
    for t in range(T):
        x_t = x[t]
        r = _sigmoid(x_t @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = _sigmoid(x_t @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        if reset_after:
            hn = h @ W_hn.T + b_hn
            n = np.tanh(x_t @ W_in.T + b_in + r * hn)
        else:
            hn = None
            n = np.tanh(x_t @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        steps.append({"h_prev": h, "r": r, "z": z, "n": n, "hn": hn})
        h = (1 - z) * n + z * h
        y[t] = h
    cache = {
        "x": x,
        "steps": steps,
        "weight_ih": weight_ih,
        "weight_hh": weight_hh,
        "reset_after": reset_after,
    }
    return y, h, cache


def gru_backward(cache, dy, dh_n=None):
    """Backpropagation through time for the forward call that produced ``cache``.

    ``dy`` (T, B, H) is dL/dy for every step, ``dh_n`` (B, H) dL/dh_T or None.
    Returns a dict with ``dx`` (T, B, I), ``dh0`` (B, H) and the parameter gradients
    ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, summed over steps and batch.
    """
    x, steps = cache["x"], cache["steps"]
    weight_ih, weight_hh = cache["weight_ih"], cache["weight_hh"]
    H = weight_hh.shape[1]
    W_hr, W_hz, W_hn = _blocks(weight_hh, H)
    dx = np.zeros_like(x, dtype=dy.dtype)
    d_weight_ih = np.zeros_like(weight_ih, dtype=dy.dtype)
    d_weight_hh = np.zeros_like(weight_hh, dtype=dy.dtype)
    d_bias_ih = np.zeros(3 * H, dtype=dy.dtype)
    d_bias_hh = np.zeros(3 * H, dtype=dy.dtype)

    dh = np.zeros(dy.shape[1:], dtype=dy.dtype) if dh_n is None else dh_n.copy()
    for t in reversed(range(len(steps))):
        s = steps[t]
        h, r, z, n = s["h_prev"], s["r"], s["z"], s["n"]
        dh = dh + dy[t]
        # h' = (1 − z) ⊙ n + z ⊙ h
        dn = dh * (1 - z)
        dz = dh * (h - n)
        dh_prev = dh * z
        # n = tanh(a_n), r = σ(a_r), z = σ(a_z)
        da_n = dn * (1 - n**2)
        da_z = dz * z * (1 - z)
        if cache["reset_after"]:
            # a_n = W_in x + b_in + r ⊙ (W_hn h + b_hn)
            da_r = da_n * s["hn"] * r * (1 - r)
            dhn = da_n * r
            dh_prev = dh_prev + dhn @ W_hn
            d_weight_hh[2 * H :] += dhn.T @ h
            d_bias_hh[2 * H :] += dhn.sum(0)
        else:
            # a_n = W_in x + b_in + W_hn (r ⊙ h) + b_hn
            d_rh = da_n @ W_hn
            da_r = d_rh * h * r * (1 - r)
            dh_prev = dh_prev + d_rh * r
            d_weight_hh[2 * H :] += da_n.T @ (r * h)
            d_bias_hh[2 * H :] += da_n.sum(0)
        # a_r = W_ir x + b_ir + W_hr h + b_hr, and likewise a_z
        dh_prev = dh_prev + da_r @ W_hr + da_z @ W_hz
        d_weight_hh[:H] += da_r.T @ h
        d_weight_hh[H : 2 * H] += da_z.T @ h
        d_bias_hh[:H] += da_r.sum(0)
        d_bias_hh[H : 2 * H] += da_z.sum(0)
        da_input = np.concatenate([da_r, da_z, da_n], axis=1)
        dx[t] = da_input @ weight_ih
        d_weight_ih += da_input.T @ x[t]
        d_bias_ih += da_input.sum(0)
        dh = dh_prev
    return {
        "dx": dx,
        "dh0": dh,
        "weight_ih": d_weight_ih,
        "weight_hh": d_weight_hh,
        "bias_ih": d_bias_ih,
        "bias_hh": d_bias_hh,
    }
