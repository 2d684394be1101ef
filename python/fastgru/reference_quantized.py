"""The NumPy definition of fastgru's reduced-precision inference: what a bf16 or int8 GRU
computes, to the bit where the scheme fixes it (EQUATIONS.md §9).

- ``"bf16"``: every weight is rounded to bfloat16 (to nearest, ties to even); so is each
  product's input row (x_t, h, and r ⊙ h for reset-before) before the product. Products
  accumulate in float32 or wider; the gates, the update and the state stay in float32.
- ``"int8"``: every weight row (one output unit) is scaled symmetrically to int8 in −127..127
  with its own scale; each product's input row is quantized the same way, dynamically (per row,
  at every step), and the product accumulates in int32, exactly; the result is dequantised by
  the two scales before the gate arithmetic.

Like :mod:`fastgru.reference` it is written for clarity, not speed, and computes the gate
arithmetic in float64.
"""

from __future__ import annotations

import numpy as np

from .reference import GATE_TERMS, _blocks, _ligru_activation, _sigmoid, _softplus

__all__ = ["MODES", "round_to_bf16", "quantize_rows_int8", "QuantizedMatrix", "quantize_matrix",
           "quantized_product", "gru_forward_quantized", "mgu_forward_quantized", "fold_batch_norm",
           "ligru_forward_quantized", "libru_forward_quantized"]

MODES = ("bf16", "int8")
INT8_LIMIT = 127


def round_to_bf16(values) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), as float32.

    Overflow gives ±inf, as the rounding of the top bits does; NaN stays NaN.
    """
    values = np.asarray(values, dtype=np.float32)
    bits = values.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint32) << np.uint32(16)
    # A NaN whose payload lies in the dropped bits would round to inf: keep it a (quiet) NaN.
    rounded = np.where(np.isnan(values), bits.astype(np.uint32) >> np.uint32(16) << np.uint32(16) | np.uint32(0x00400000),
                       rounded)
    return rounded.astype(np.uint32).view(np.float32)


def quantize_rows_int8(rows):
    """Symmetric int8 quantization of each row of a 2-D float32 array.

    Returns ``(q, scale)``: q (rows, n) int8 in −127..127 and scale (rows,) float32 with
    rows ≈ q · scale[:, None]. The scale is max|row| / 127; each value is multiplied by the
    float32 reciprocal 127 / max|row| and rounded to nearest, ties to even (what a vector
    conversion does). An all-zero row has scale 0 and q 0.
    """
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"rows: expected a 2-D array, got shape {rows.shape}")
    if not np.isfinite(rows).all():
        raise ValueError("rows: int8 quantization needs finite values")
    largest = np.abs(rows).max(axis=1) if rows.shape[1] else np.zeros(rows.shape[0], np.float32)
    nonzero = largest > 0
    with np.errstate(over="ignore"):
        inverse = np.where(nonzero, np.float32(INT8_LIMIT) / np.where(nonzero, largest, 1), 0).astype(np.float32)
    # Below max|row| ≈ 3.7e-37 the float32 reciprocal overflows to inf: the row's values go to
    # ±127, and its zeros (0 · inf) stay 0, as the kernels compute them.
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.where(rows == 0, np.float32(0), rows * inverse[:, None])
    q = np.clip(np.rint(scaled), -INT8_LIMIT, INT8_LIMIT).astype(np.int8)
    scale = (largest / np.float32(INT8_LIMIT)).astype(np.float32)
    return q, scale


class QuantizedMatrix:
    """A weight matrix (out, in) in a reduced-precision mode: ``values`` (float32 holding bf16
    values) for bf16; ``values`` int8 and ``scale`` (out,) float32 for int8."""

    def __init__(self, mode, values, scale=None):
        self.mode, self.values, self.scale = mode, values, scale

    @property
    def shape(self):
        return self.values.shape


def quantize_matrix(weight, mode) -> QuantizedMatrix:
    """A float32 weight (out, in), PyTorch's layout, in ``mode`` ("bf16" or "int8")."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    weight = np.asarray(weight, dtype=np.float32)
    if mode == "bf16":
        return QuantizedMatrix(mode, round_to_bf16(weight))
    q, scale = quantize_rows_int8(weight)
    return QuantizedMatrix(mode, q, scale)


def quantized_product(rows, weight: QuantizedMatrix) -> np.ndarray:
    """rows (B, in) · weightᵀ (in, out) as the mode computes it, in float64: the inputs rounded
    or quantized row by row, then an exact product (bf16 values multiply exactly in float64 and
    the sums of in ≤ 2^20 terms lose nothing that float32 accumulation would keep; int8 sums
    are exact integers), dequantised by the row and weight scales for int8."""
    rows = np.asarray(rows, dtype=np.float32)
    if weight.mode == "bf16":
        return round_to_bf16(rows).astype(np.float64) @ weight.values.astype(np.float64).T
    q, row_scale = quantize_rows_int8(rows)
    accumulated = q.astype(np.int64) @ weight.values.astype(np.int64).T
    return accumulated * (row_scale.astype(np.float64)[:, None] * weight.scale.astype(np.float64)[None, :])


def gru_forward_quantized(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, reset_after=True,
                          mode="bf16", recurrent_mode=None, gates="full", clip=None):
    """A GRU (EQUATIONS.md §1, §2, and §7's forms of the gates) over a sequence with its products
    in ``mode``.

    ``weight_ih`` and ``weight_hh`` are float32 weights in PyTorch's layout with the blocks of
    ``gates`` (:func:`fastgru.reference.gru_variant_shapes`: (3H, I) and (3H, H) for the full
    GRU), quantized here; ``recurrent_mode`` (default: ``mode``) may put W_hh in another mode
    (int8 inputs with bf16 recurrent weights, say). Biases are added in float32. x (T, B, I),
    h0 (B, H) or None. ``clip``: ONNX's bound on the pre-activations (EQUATIONS.md §1.1), a
    float32 as the layer's, or None. Returns ``(y, h_n)``, float32: the state is rounded to
    float32 after every step.
    """
    def clipped(a):
        return a if clip is None else np.clip(a, -np.float32(clip), np.float32(clip))

    from_input, from_hidden, _ = GATE_TERMS[gates]
    H = np.asarray(weight_hh).shape[1]
    w_ih = quantize_matrix(weight_ih, mode)
    weight_hh = np.asarray(weight_hh)
    hh_blocks = [quantize_matrix(weight_hh[b * H:(b + 1) * H], recurrent_mode or mode)
                 for b in range(len(weight_hh) // H)]
    G = w_ih.shape[0]
    b_ih = np.zeros(G, np.float32) if bias_ih is None else np.float32(bias_ih)
    # b_hr, b_hz, b_hn: bias_hh holds the last blocks of them (all three, or b_hn alone).
    recurrent_bias = np.zeros(3 * H, np.float32)
    if bias_hh is not None:
        recurrent_bias[3 * H - len(bias_hh):] = bias_hh
    b_hr, b_hz, b_hn = _blocks(recurrent_bias, H)
    x = np.asarray(x, dtype=np.float32)
    T, B, _ = x.shape
    h = np.zeros((B, H), np.float32) if h0 is None else np.asarray(h0, dtype=np.float32)
    y = np.empty((T, B, H), np.float32)
    W_hn = hh_blocks[-1]
    for t in range(T):
        gi = quantized_product(x[t], w_ih) + b_ih
        gi_r, gi_z = (gi[:, :H], gi[:, H:2 * H]) if from_input else (0, 0)
        gi_n = gi[:, -H:]
        if from_hidden:
            r = _sigmoid(clipped(gi_r + quantized_product(h, hh_blocks[0]) + b_hr))
            z = _sigmoid(clipped(gi_z + quantized_product(h, hh_blocks[1]) + b_hz))
        else:
            r = np.broadcast_to(_sigmoid(clipped(np.float64(b_hr))), (B, H))
            z = np.broadcast_to(_sigmoid(clipped(np.float64(b_hz))), (B, H))
        if reset_after:
            n = np.tanh(clipped(gi_n + r * (quantized_product(h, W_hn) + b_hn)))
        else:
            # The candidate's product input r ⊙ h is itself rounded to float32, then quantized.
            n = np.tanh(clipped(gi_n + quantized_product((r * h).astype(np.float32), W_hn) + b_hn))
        h = ((1 - z) * n + z * h).astype(np.float32)
        y[t] = h
    return y, h


def mgu_forward_quantized(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, mode="bf16"):
    """The MGU (EQUATIONS.md §4) over a sequence with its products in ``mode``: weights (2H, ·)
    with row blocks f, n, quantized here; the candidate's product input f ⊙ h rounded to float32,
    then quantized. x (T, B, I), h0 (B, H) or None. Returns ``(y, h_n)``, float32."""
    weight_hh = np.asarray(weight_hh)
    H = weight_hh.shape[1]
    w_ih = quantize_matrix(weight_ih, mode)
    W_hf, W_hn = (quantize_matrix(weight_hh[b * H:(b + 1) * H], mode) for b in range(2))
    b_ih = np.zeros(2 * H, np.float32) if bias_ih is None else np.float32(bias_ih)
    b_hf, b_hn = (np.zeros(H, np.float32), np.zeros(H, np.float32)) if bias_hh is None else (
        np.float32(bias_hh[:H]), np.float32(bias_hh[H:]))
    x = np.asarray(x, dtype=np.float32)
    T, B, _ = x.shape
    h = np.zeros((B, H), np.float32) if h0 is None else np.asarray(h0, dtype=np.float32)
    y = np.empty((T, B, H), np.float32)
    for t in range(T):
        gi = quantized_product(x[t], w_ih) + b_ih
        f = _sigmoid(gi[:, :H] + quantized_product(h, W_hf) + b_hf)
        n = np.tanh(gi[:, H:] + quantized_product((f * h).astype(np.float32), W_hn) + b_hn)
        h = ((1 - f) * h + f * n).astype(np.float32)
        y[t] = h
    return y, h


def fold_batch_norm(weight_ih, bn_weight, bn_bias, running_mean, running_var, eps=1e-5):
    """Inference's batch normalisation folded into the input weights (float32), as the bf16 and
    int8 layers of the batch-normalised cells fold it before quantizing: ``(weight, shift)`` with
    ``BN(W x) = weight x + shift``, scale = γ / √(σ² + ε) computed in float64 (ε as a float32)."""
    scale = np.float64(bn_weight) / np.sqrt(np.float64(running_var) + np.float64(np.float32(eps)))
    weight = (scale[:, None] * np.float64(weight_ih)).astype(np.float32)
    shift = (np.float64(bn_bias) - scale * np.float64(running_mean)).astype(np.float32)
    return weight, shift


def _batch_norm_cell_quantized(x, h0, weight_ih, weight_hh, batch_norm, eps, mode, update):
    """The shared loop of the LiGRU and the LiBRU: a = BN(W x) with the running statistics
    (folded, then quantized), products of h with the z and candidate blocks, then
    ``update(h, a_z, a_c)``."""
    weight_hh = np.asarray(weight_hh)
    H = weight_hh.shape[1]
    folded, shift = fold_batch_norm(weight_ih, *batch_norm, eps=eps)
    w_ih = quantize_matrix(folded, mode)
    W_hz, W_hc = (quantize_matrix(weight_hh[b * H:(b + 1) * H], mode) for b in range(2))
    x = np.asarray(x, dtype=np.float32)
    T, B, _ = x.shape
    h = np.zeros((B, H), np.float32) if h0 is None else np.asarray(h0, dtype=np.float32)
    y = np.empty((T, B, H), np.float32)
    for t in range(T):
        a = quantized_product(x[t], w_ih) + shift
        h = update(h, a[:, :H] + quantized_product(h, W_hz), a[:, H:] + quantized_product(h, W_hc)).astype(np.float32)
        y[t] = h
    return y, h


def ligru_forward_quantized(x, h0, weight_ih, weight_hh, bn_weight, bn_bias, running_mean, running_var,
                            eps=1e-5, activation="relu", negative_slope=0.01, mode="bf16"):
    """The LiGRU (EQUATIONS.md §5) at inference with its products in ``mode``: weights (2H, ·)
    with row blocks z, n; batch normalisation by the running statistics, folded into W_ih
    (:func:`fold_batch_norm`) before it is quantized. Returns ``(y, h_n)``, float32."""
    def update(h, a_z, a_n):
        z = _sigmoid(a_z)
        return z * h + (1 - z) * _ligru_activation(a_n, activation, negative_slope)

    return _batch_norm_cell_quantized(x, h0, weight_ih, weight_hh, (bn_weight, bn_bias, running_mean, running_var),
                                      eps, mode, update)


def libru_forward_quantized(x, h0, weight_ih, weight_hh, bn_weight, bn_bias, running_mean, running_var,
                            eps=1e-5, mode="bf16"):
    """The LiBRU (EQUATIONS.md §8) at inference with its products in ``mode``, as
    :func:`ligru_forward_quantized` quantizes the LiGRU. Returns ``(y, h_n)``, float32."""

    def update(h, a_z, a_c):
        return np.logaddexp(h - _softplus(-a_z), _softplus(a_c) - _softplus(a_z))

    return _batch_norm_cell_quantized(x, h0, weight_ih, weight_hh, (bn_weight, bn_bias, running_mean, running_var),
                                      eps, mode, update)
