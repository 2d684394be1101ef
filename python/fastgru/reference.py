"""The NumPy reference GRU: the project's definition of right.

Plain, readable NumPy, one line per equation of ``EQUATIONS.md`` (§1 reset after the
recurrent product, §1.1 ONNX's clip, §2 reset before it, §4 the MGU, §5 the LiGRU, §6 backpropagation through
time, §7 the GRU's gate variants, §8 the LiBRU). It computes in the
dtype of its inputs; the tests run it in float64. Speed is not its purpose.

Shapes: ``x`` (T, B, I), ``h0`` (B, H), weights in PyTorch's layout with row blocks r, z, n:
``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` and ``bias_hh`` (3H,) or None.
"""

from __future__ import annotations

import numpy as np

from .layers.cells import parameter_name

__all__ = ["gru_forward", "gru_backward", "gru_network_forward", "gru_network_backward",
           "mgu_forward", "mgu_backward", "ligru_forward", "ligru_backward", "ligru_network_forward",
           "ligru_network_backward", "ligru_running_statistics", "GATE_TERMS", "gru_variant_shapes",
           "gru_variant_forward", "gru_variant_backward", "libru_forward", "libru_backward",
           "libru_network_forward", "libru_network_backward"]


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _clipped(a, clip):
    """(a clipped to [−clip, clip], where a passes gradient: |a| < clip) (EQUATIONS.md §1.1);
    clip None: (a, 1)."""
    if clip is None:
        return a, 1
    return np.clip(a, -clip, clip), np.abs(a) < clip


def _blocks(matrix_or_vector, hidden):
    """Split the leading axis into the r, z, n blocks."""
    return matrix_or_vector[:hidden], matrix_or_vector[hidden : 2 * hidden], matrix_or_vector[2 * hidden :]


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, reset_after=True, clip=None):
    """Run a GRU over a sequence.

    Returns ``(y, h_n, cache)``: y (T, B, H), h_n (B, H), and what :func:`gru_backward` needs.
    ``h0`` may be None (zeros). ``clip``: ONNX's bound on the pre-activations of r, z and n
    (§1.1), or None.
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
        a_r, keep_r = _clipped(x_t @ W_ir.T + b_ir + h @ W_hr.T + b_hr, clip)
        a_z, keep_z = _clipped(x_t @ W_iz.T + b_iz + h @ W_hz.T + b_hz, clip)
        r, z = _sigmoid(a_r), _sigmoid(a_z)
        if reset_after:
            hn = h @ W_hn.T + b_hn
            a_n, keep_n = _clipped(x_t @ W_in.T + b_in + r * hn, clip)
        else:
            hn = None
            a_n, keep_n = _clipped(x_t @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn, clip)
        n = np.tanh(a_n)
        steps.append({"h_prev": h, "r": r, "z": z, "n": n, "hn": hn, "keep": (keep_r, keep_z, keep_n)})
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
        keep_r, keep_z, keep_n = s["keep"]
        dh = dh + dy[t]
        # h' = (1 − z) ⊙ n + z ⊙ h
        dn = dh * (1 - z)
        dz = dh * (h - n)
        dh_prev = dh * z
        # n = tanh(clip(a_n)), r = σ(clip(a_r)), z = σ(clip(a_z))
        da_n = dn * (1 - n**2) * keep_n
        da_z = dz * z * (1 - z) * keep_z
        if cache["reset_after"]:
            # a_n = W_in x + b_in + r ⊙ (W_hn h + b_hn)
            da_r = da_n * s["hn"] * r * (1 - r) * keep_r
            dhn = da_n * r
            dh_prev = dh_prev + dhn @ W_hn
            d_weight_hh[2 * H :] += dhn.T @ h
            d_bias_hh[2 * H :] += dhn.sum(0)
        else:
            # a_n = W_in x + b_in + W_hn (r ⊙ h) + b_hn
            d_rh = da_n @ W_hn
            da_r = d_rh * h * r * (1 - r) * keep_r
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


def _layer_params(params, layer, direction):
    return (
        params[parameter_name("weight_ih", layer, direction)],
        params[parameter_name("weight_hh", layer, direction)],
        params.get(parameter_name("bias_ih", layer, direction)),
        params.get(parameter_name("bias_hh", layer, direction)),
    )


def gru_network_forward(x, h0, params, num_layers=1, bidirectional=False, reset_after=True,
                        lengths=None, batch_first=False, clip=None):
    """A stacked, optionally bidirectional GRU with PyTorch's semantics, one row at a time.

    ``params`` maps PyTorch's names (``weight_ih_l{k}[_reverse]`` ...) to arrays; ``h0`` is
    (L*D, B, H) or None; ``lengths`` (B,) or None. Each row runs alone over its own length:
    the reverse direction reads the row's real steps backwards, outputs past the length are zero.
    ``clip``: as :func:`gru_forward`'s. Returns ``(y, h_n, cache)``.
    """
    if batch_first:
        x = np.swapaxes(x, 0, 1)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    y = np.zeros((T, B, D * H), dtype=x.dtype)
    h_n = np.zeros((num_layers * D, B, H), dtype=x.dtype)
    caches = []
    for b in range(B):
        n = int(lengths[b])
        layer_input = x[:n, b : b + 1]
        row_caches = []
        for layer in range(num_layers):
            outputs = []
            for direction in range(D):
                s = layer * D + direction
                seq = layer_input if direction == 0 else layer_input[::-1]
                start = None if h0 is None else h0[s, b : b + 1]
                out, h_last, cache = gru_forward(seq, start, *_layer_params(params, layer, direction),
                                                 reset_after=reset_after, clip=clip)
                outputs.append(out if direction == 0 else out[::-1])
                h_n[s, b] = h_last[0]
                row_caches.append(cache)
            layer_input = np.concatenate(outputs, axis=2)
        y[:n, b] = layer_input[:, 0]
        caches.append(row_caches)
    cache = {"caches": caches, "lengths": lengths, "shape": (T, B), "layers": num_layers,
             "directions": D, "hidden": H, "batch_first": batch_first, "input": x.shape[2]}
    return (np.swapaxes(y, 0, 1) if batch_first else y), h_n, cache


def gru_network_backward(cache, dy, dh_n=None):
    """Backpropagation through :func:`gru_network_forward`.

    Returns ``dx`` (like x), ``dh0`` (L*D, B, H) and ``grads``: name -> gradient, summed over
    rows and steps.
    """
    if cache["batch_first"]:
        dy = np.swapaxes(dy, 0, 1)
    T, B = cache["shape"]
    L, D, H = cache["layers"], cache["directions"], cache["hidden"]
    dx = np.zeros((T, B, cache["input"]), dtype=dy.dtype)
    dh0 = np.zeros((L * D, B, H), dtype=dy.dtype)
    grads = {}
    for b in range(B):
        n = int(cache["lengths"][b])
        d_output = dy[:n, b : b + 1]
        for layer in reversed(range(L)):
            d_input = 0
            for direction in range(D):
                s = layer * D + direction
                d_states = d_output[:, :, direction * H : (direction + 1) * H]
                if direction == 1:
                    d_states = d_states[::-1]
                d_last = None if dh_n is None else dh_n[s, b : b + 1]
                g = gru_backward(cache["caches"][b][s], np.ascontiguousarray(d_states), d_last)
                d_input = d_input + (g["dx"] if direction == 0 else g["dx"][::-1])
                dh0[s, b] = g["dh0"][0]
                for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    name = parameter_name(base, layer, direction)
                    grads[name] = grads.get(name, 0) + g[base]
            d_output = d_input
        dx[:n, b] = d_output[:, 0]
    return {"dx": np.swapaxes(dx, 0, 1) if cache["batch_first"] else dx, "dh0": dh0, "grads": grads}


def mgu_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """The minimal gated unit over a sequence (EQUATIONS.md §4); weights have row blocks f, n.

    Returns ``(y, h_n, cache)`` like :func:`gru_forward`.
    """
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    dtype = np.result_type(x, weight_ih)
    zeros = np.zeros(2 * H, dtype=dtype)
    b_i = zeros if bias_ih is None else bias_ih
    b_h = zeros if bias_hh is None else bias_hh
    W_if, W_in = weight_ih[:H], weight_ih[H:]
    W_hf, W_hn = weight_hh[:H], weight_hh[H:]
    b_if, b_in, b_hf, b_hn = b_i[:H], b_i[H:], b_h[:H], b_h[H:]
    h = np.zeros((B, H), dtype=dtype) if h0 is None else h0
    y = np.empty((T, B, H), dtype=dtype)
    steps = []
    for t in range(T):
        f = _sigmoid(x[t] @ W_if.T + b_if + h @ W_hf.T + b_hf)
        n = np.tanh(x[t] @ W_in.T + b_in + (f * h) @ W_hn.T + b_hn)
        steps.append({"h_prev": h, "f": f, "n": n})
        h = (1 - f) * h + f * n
        y[t] = h
    return y, h, {"x": x, "steps": steps, "weight_ih": weight_ih, "weight_hh": weight_hh}


def mgu_backward(cache, dy, dh_n=None):
    """Backpropagation through :func:`mgu_forward`; the same keys as :func:`gru_backward`."""
    x, steps = cache["x"], cache["steps"]
    weight_ih, weight_hh = cache["weight_ih"], cache["weight_hh"]
    H = weight_hh.shape[1]
    W_hf, W_hn = weight_hh[:H], weight_hh[H:]
    dx = np.zeros_like(x, dtype=dy.dtype)
    d_weight_ih = np.zeros_like(weight_ih, dtype=dy.dtype)
    d_weight_hh = np.zeros_like(weight_hh, dtype=dy.dtype)
    d_bias_ih = np.zeros(2 * H, dtype=dy.dtype)
    d_bias_hh = np.zeros(2 * H, dtype=dy.dtype)
    dh = np.zeros(dy.shape[1:], dtype=dy.dtype) if dh_n is None else dh_n.copy()
    for t in reversed(range(len(steps))):
        h, f, n = steps[t]["h_prev"], steps[t]["f"], steps[t]["n"]
        dh = dh + dy[t]
        # h' = (1 − f) ⊙ h + f ⊙ n
        df = dh * (n - h)
        dn = dh * f
        dh_prev = dh * (1 - f)
        # n = tanh(a_n), a_n = W_in x + b_in + W_hn (f ⊙ h) + b_hn
        da_n = dn * (1 - n**2)
        d_fh = da_n @ W_hn
        df = df + d_fh * h
        dh_prev = dh_prev + d_fh * f
        # f = σ(a_f), a_f = W_if x + b_if + W_hf h + b_hf
        da_f = df * f * (1 - f)
        dh_prev = dh_prev + da_f @ W_hf
        d_weight_hh[:H] += da_f.T @ h
        d_weight_hh[H:] += da_n.T @ (f * h)
        d_bias_hh += np.concatenate([da_f.sum(0), da_n.sum(0)])
        da_input = np.concatenate([da_f, da_n], axis=1)
        dx[t] = da_input @ weight_ih
        d_weight_ih += da_input.T @ x[t]
        d_bias_ih += da_input.sum(0)
        dh = dh_prev
    return {"dx": dx, "dh0": dh, "weight_ih": d_weight_ih, "weight_hh": d_weight_hh,
            "bias_ih": d_bias_ih, "bias_hh": d_bias_hh}


def _ligru_activation(a, activation, negative_slope):
    if activation == "relu":
        return np.maximum(a, 0)
    if activation == "tanh":
        return np.tanh(a)
    if activation == "softplus":
        return _softplus(a)
    return np.maximum(a, 0) + negative_slope * np.minimum(a, 0)


def _ligru_activation_derivative(a, activation, negative_slope):
    if activation == "relu":
        return (a > 0).astype(a.dtype)
    if activation == "tanh":
        return 1 - np.tanh(a) ** 2
    if activation == "softplus":
        return np.exp(-_softplus(-a))  # σ(a), without overflow where a is very negative
    return np.where(a > 0, 1.0, negative_slope).astype(a.dtype)


def _real_steps(T, B, lengths):
    """(T, B) bool: whether step t of row b is real (within its length)."""
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    return np.arange(T)[:, None] < lengths[None, :]


def _batch_norm(projection, real, bn_weight, bn_bias, running_mean, running_var, train, eps):
    """γ ⊙ x̂ + β of the input projections (T, B, G), with the batch's mean and biased variance
    over the real steps (``train``) or the running statistics. Returns it and what
    :func:`_batch_norm_backward` needs."""
    if train:
        mean, var = projection[real].mean(0), projection[real].var(0)
    else:
        mean, var = running_mean, running_var
    x_hat = (projection - mean) / np.sqrt(var + eps)
    return bn_weight * x_hat + bn_bias, {"x_hat": x_hat, "mean": mean, "var": var, "eps": eps, "train": train,
                                         "bn_weight": bn_weight, "real": real}


def _batch_norm_backward(state, da):
    """dL/d(projection), dL/dγ and dL/dβ from dL/da (T, B, G); in training through the batch
    statistics. Steps past a row's length have no gradient."""
    real, x_hat = state["real"], state["x_hat"]
    d_bn_weight = (da * x_hat)[real].sum(0)
    d_bn_bias = da[real].sum(0)
    d_x_hat = da * state["bn_weight"]
    inv_std = 1 / np.sqrt(state["var"] + state["eps"])
    if state["train"]:
        d_projection = inv_std * (d_x_hat - d_x_hat[real].mean(0) - x_hat * (d_x_hat * x_hat)[real].mean(0))
        d_projection = d_projection * real[:, :, None]
    else:
        d_projection = d_x_hat * inv_std
    return d_projection, d_bn_weight, d_bn_bias


def ligru_forward(x, h0, weight_ih, weight_hh, bn_weight, bn_bias, running_mean=None, running_var=None,
                  train=True, activation="relu", negative_slope=0.01, eps=1e-5, lengths=None):
    """The light GRU over a sequence (EQUATIONS.md §5); weights have row blocks z, n.

    ``train``: batch normalisation with the mean and biased variance of the input projections
    over the real steps of every row (within ``lengths``); else with ``running_mean`` and
    ``running_var``. Past its length a row keeps its state and outputs zeros.
    Returns ``(y, h_n, cache)``; in training ``cache["batch_mean"]``, ``cache["batch_var"]`` and
    ``cache["count"]`` are the statistics used.
    """
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    real = _real_steps(T, B, lengths)
    W_hz, W_hn = weight_hh[:H], weight_hh[H:]
    a, norm = _batch_norm(x @ weight_ih.T, real, bn_weight, bn_bias, running_mean, running_var, train, eps)
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0
    y = np.zeros((T, B, H), dtype=x.dtype)
    steps = []
    for t in range(T):
        z = _sigmoid(a[t, :, :H] + h @ W_hz.T)
        a_n = a[t, :, H:] + h @ W_hn.T
        n = _ligru_activation(a_n, activation, negative_slope)
        h_new = z * h + (1 - z) * n
        m = real[t][:, None]
        steps.append({"h_prev": h, "z": z, "n": n, "a_n": a_n, "real": m})
        h = np.where(m, h_new, h)
        y[t] = np.where(m, h_new, 0)
    cache = {"x": x, "steps": steps, "weight_ih": weight_ih, "weight_hh": weight_hh, "norm": norm,
             "activation": activation, "negative_slope": negative_slope,
             "batch_mean": norm["mean"], "batch_var": norm["var"], "count": int(real.sum())}
    return y, h, cache


def ligru_backward(cache, dy, dh_n=None):
    """Backpropagation through :func:`ligru_forward`, through the batch statistics in training.

    Returns ``dx``, ``dh0`` and the gradients ``weight_ih``, ``weight_hh``, ``bn_weight`` and
    ``bn_bias``, summed over steps and batch.
    """
    x, steps = cache["x"], cache["steps"]
    weight_ih, weight_hh = cache["weight_ih"], cache["weight_hh"]
    H = weight_hh.shape[1]
    T = len(steps)
    da = np.zeros((T,) + dy.shape[1:2] + (2 * H,), dtype=dy.dtype)
    d_weight_hh = np.zeros_like(weight_hh, dtype=dy.dtype)
    dh = np.zeros(dy.shape[1:], dtype=dy.dtype) if dh_n is None else dh_n.copy()
    for t in reversed(range(T)):
        s = steps[t]
        h, z, n, m = s["h_prev"], s["z"], s["n"], s["real"]
        # Past a row's length its state passes through unchanged.
        dh_step = (dh + dy[t]) * m
        # h' = z ⊙ h + (1 − z) ⊙ n, z = σ(a_z + W_hz h), n = act(a_n + W_hn h)
        da_z = dh_step * (h - n) * z * (1 - z)
        da_n = dh_step * (1 - z) * _ligru_activation_derivative(s["a_n"], cache["activation"], cache["negative_slope"])
        da[t] = np.concatenate([da_z, da_n], axis=1)
        d_weight_hh += da[t].T @ h
        dh = dh * ~m + dh_step * z + da[t] @ weight_hh
    # a = γ x̂ + β; in training x̂ depends on every real step through the batch statistics.
    d_projection, d_bn_weight, d_bn_bias = _batch_norm_backward(cache["norm"], da)
    return {"dx": d_projection @ weight_ih, "dh0": dh,
            "weight_ih": np.einsum("tbg,tbi->gi", d_projection, x), "weight_hh": d_weight_hh,
            "bn_weight": d_bn_weight, "bn_bias": d_bn_bias}


def ligru_running_statistics(running_mean, running_var, batch_mean, batch_var, count, momentum=0.1):
    """The running statistics after a training forward, as ``torch.nn.BatchNorm1d`` updates them
    (the batch variance unbiased over its ``count`` values)."""
    new_mean = (1 - momentum) * running_mean + momentum * batch_mean
    new_var = (1 - momentum) * running_var + momentum * batch_var * count / (count - 1)
    return new_mean, new_var


def _reverse_real_steps(sequence, lengths):
    """Each row's real steps in reverse order, padding left in place (zeros stay zeros)."""
    out = np.zeros_like(sequence)
    for b, n in enumerate(lengths):
        out[:n, b] = sequence[:n, b][::-1]
    return out


def _normalised_network_forward(cell_forward, x, h0, params, num_layers, bidirectional, lengths, batch_first,
                                **cell_options):
    """A stacked, optionally bidirectional network of a cell with batch-normalised input
    projections (the LiGRU's structure), layer by layer (batch normalisation couples the rows).
    ``cell_forward`` runs one layer and direction (:func:`ligru_forward`, :func:`libru_forward`)
    with ``cell_options``."""
    if batch_first:
        x = np.swapaxes(x, 0, 1)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    h_n = np.zeros((num_layers * D, B, H), dtype=x.dtype)
    layer_input, caches, statistics = x, [], {}
    for layer in range(num_layers):
        outputs = []
        for direction in range(D):
            s = layer * D + direction
            suffix = parameter_name("", layer, direction)  # what follows each name: "_l0", ...
            seq = layer_input if direction == 0 else _reverse_real_steps(layer_input, lengths)
            arrays = [params[parameter_name(base, layer, direction)] for base in
                      ("weight_ih", "weight_hh", "bn_weight", "bn_bias", "bn_running_mean", "bn_running_var")]
            out, h_last, cache = cell_forward(seq, None if h0 is None else h0[s], *arrays, lengths=lengths,
                                              **cell_options)
            outputs.append(out if direction == 0 else _reverse_real_steps(out, lengths))
            h_n[s] = h_last
            caches.append(cache)
            statistics[suffix] = (cache["batch_mean"], cache["batch_var"], cache["count"])
        layer_input = np.concatenate(outputs, axis=2)
    cache = {"caches": caches, "lengths": lengths, "layers": num_layers, "directions": D, "hidden": H,
             "batch_first": batch_first, "statistics": statistics}
    return (np.swapaxes(layer_input, 0, 1) if batch_first else layer_input), h_n, cache


def _normalised_network_backward(cell_backward, cache, dy, dh_n):
    """Backpropagation through :func:`_normalised_network_forward`, ``cell_backward`` the
    backward of its ``cell_forward``."""
    if cache["batch_first"]:
        dy = np.swapaxes(dy, 0, 1)
    L, D, H, lengths = cache["layers"], cache["directions"], cache["hidden"], cache["lengths"]
    dh0 = np.zeros((L * D,) + dy.shape[1:2] + (H,), dtype=dy.dtype)
    grads = {}
    d_output = dy * _real_steps(dy.shape[0], dy.shape[1], lengths)[:, :, None]
    for layer in reversed(range(L)):
        d_input = 0
        for direction in range(D):
            s = layer * D + direction
            d_states = d_output[:, :, direction * H : (direction + 1) * H]
            if direction == 1:
                d_states = _reverse_real_steps(d_states, lengths)
            g = cell_backward(cache["caches"][s], d_states, None if dh_n is None else dh_n[s])
            d_input = d_input + (g["dx"] if direction == 0 else _reverse_real_steps(g["dx"], lengths))
            dh0[s] = g["dh0"]
            for base in ("weight_ih", "weight_hh", "bn_weight", "bn_bias"):
                grads[parameter_name(base, layer, direction)] = g[base]
        d_output = d_input
    return {"dx": np.swapaxes(d_output, 0, 1) if cache["batch_first"] else d_output, "dh0": dh0, "grads": grads}


def ligru_network_forward(x, h0, params, num_layers=1, bidirectional=False, train=True, activation="relu",
                          negative_slope=0.01, eps=1e-5, lengths=None, batch_first=False):
    """A stacked, optionally bidirectional LiGRU, layer by layer (batch normalisation couples
    the rows). ``params`` maps the LiGRU's names (``weight_ih_l{k}``, ``bn_weight_l{k}``,
    ``bn_running_mean_l{k}`` ... with ``_reverse``) to arrays. Returns ``(y, h_n, cache)``;
    ``cache["statistics"]`` maps each layer and direction's suffix to (mean, biased var, count).
    """
    return _normalised_network_forward(ligru_forward, x, h0, params, num_layers, bidirectional, lengths,
                                       batch_first, train=train, activation=activation,
                                       negative_slope=negative_slope, eps=eps)


def ligru_network_backward(cache, dy, dh_n=None):
    """Backpropagation through :func:`ligru_network_forward`: ``dx``, ``dh0`` and ``grads``
    (name -> gradient, the buffers excepted)."""
    return _normalised_network_backward(ligru_backward, cache, dy, dh_n)


# The fully gated unit's other forms (EQUATIONS.md §7): which terms feed the r and z gates.
# gates -> (input product, recurrent product, recurrent bias) in the gates' pre-activations.
GATE_TERMS = {
    "full": (True, True, True),
    "hidden_bias": (False, True, True),
    "hidden": (False, True, False),
    "bias": (False, False, True),
}


def gru_variant_shapes(gates, input_size, hidden_size, bias=True):
    """Parameter name -> shape of one layer of a GRU whose gates are ``gates`` (EQUATIONS.md §7)."""
    from_input, from_hidden, gate_bias = GATE_TERMS[gates]
    I, H = input_size, hidden_size
    shapes = {"weight_ih": ((3 if from_input else 1) * H, I),
              "weight_hh": ((3 if from_hidden else 1) * H, H)}
    if bias:
        shapes["bias_ih"] = ((3 if from_input else 1) * H,)
        shapes["bias_hh"] = ((3 if gate_bias else 1) * H,)
    return shapes


def gru_variant_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, gates="full", reset_after=True,
                        clip=None):
    """A GRU whose gates r, z are computed from the terms ``gates`` names (EQUATIONS.md §7); the
    candidate and the update are §1 (``reset_after``) or §2. Weights and biases have the shapes of
    :func:`gru_variant_shapes`: the blocks of the terms that exist, in the order r, z, n, the
    candidate's last. ``gates="full"`` is :func:`gru_forward`; ``clip`` as there. Returns
    ``(y, h_n, cache)``.
    """
    from_input, from_hidden, gate_bias = GATE_TERMS[gates]
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    dtype = np.result_type(x, weight_ih)
    W_in, W_hn = weight_ih[-H:], weight_hh[-H:]
    b_in = np.zeros(H, dtype) if bias_ih is None else bias_ih[-H:]
    b_hn = np.zeros(H, dtype) if bias_hh is None else bias_hh[-H:]
    # Everything but the recurrent product, for r and z at every step: (T, B, H) each.
    a_r = np.zeros((T, B, H), dtype)
    a_z = np.zeros((T, B, H), dtype)
    if from_input:
        a_r = a_r + x @ weight_ih[:H].T + (0 if bias_ih is None else bias_ih[:H])
        a_z = a_z + x @ weight_ih[H : 2 * H].T + (0 if bias_ih is None else bias_ih[H : 2 * H])
    if gate_bias and bias_hh is not None:
        a_r = a_r + bias_hh[:H]
        a_z = a_z + bias_hh[H : 2 * H]
    h = np.zeros((B, H), dtype=dtype) if h0 is None else h0
    y = np.empty((T, B, H), dtype=dtype)
    steps = []
    for t in range(T):
        r_in, z_in = a_r[t], a_z[t]
        if from_hidden:
            r_in = r_in + h @ weight_hh[:H].T
            z_in = z_in + h @ weight_hh[H : 2 * H].T
        (r_in, keep_r), (z_in, keep_z) = _clipped(r_in, clip), _clipped(z_in, clip)
        r, z = _sigmoid(r_in), _sigmoid(z_in)
        if reset_after:
            hn = h @ W_hn.T + b_hn
            a_n, keep_n = _clipped(x[t] @ W_in.T + b_in + r * hn, clip)
        else:
            hn = None
            a_n, keep_n = _clipped(x[t] @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn, clip)
        n = np.tanh(a_n)
        steps.append({"h_prev": h, "r": r, "z": z, "n": n, "hn": hn, "keep": (keep_r, keep_z, keep_n)})
        h = (1 - z) * n + z * h
        y[t] = h
    cache = {"x": x, "steps": steps, "weight_ih": weight_ih, "weight_hh": weight_hh, "gates": gates,
             "reset_after": reset_after, "bias": bias_ih is not None}
    return y, h, cache


def gru_variant_backward(cache, dy, dh_n=None):
    """Backpropagation through :func:`gru_variant_forward`: ``dx``, ``dh0`` and the gradients of
    the parameters it was given (``bias_ih`` and ``bias_hh`` only with biases), shaped like them."""
    from_input, from_hidden, gate_bias = GATE_TERMS[cache["gates"]]
    x, steps = cache["x"], cache["steps"]
    weight_ih, weight_hh = cache["weight_ih"], cache["weight_hh"]
    H = weight_hh.shape[1]
    W_in, W_hn = weight_ih[-H:], weight_hh[-H:]
    d_weight_ih = np.zeros_like(weight_ih, dtype=dy.dtype)
    d_weight_hh = np.zeros_like(weight_hh, dtype=dy.dtype)
    d_bias_ih = np.zeros(weight_ih.shape[0], dtype=dy.dtype)
    d_bias_hh = np.zeros((3 if gate_bias else 1) * H, dtype=dy.dtype)
    dx = np.zeros_like(x, dtype=dy.dtype)
    dh = np.zeros(dy.shape[1:], dtype=dy.dtype) if dh_n is None else dh_n.copy()
    for t in reversed(range(len(steps))):
        s = steps[t]
        h, r, z, n = s["h_prev"], s["r"], s["z"], s["n"]
        keep_r, keep_z, keep_n = s["keep"]
        dh = dh + dy[t]
        # h' = (1 − z) ⊙ n + z ⊙ h
        da_n = dh * (1 - z) * (1 - n**2) * keep_n
        da_z = dh * (h - n) * z * (1 - z) * keep_z
        dh_prev = dh * z
        if cache["reset_after"]:
            da_r = da_n * s["hn"] * r * (1 - r) * keep_r
            dhn = da_n * r
            dh_prev = dh_prev + dhn @ W_hn
            d_weight_hh[-H:] += dhn.T @ h
            d_bias_hh[-H:] += dhn.sum(0)
        else:
            d_rh = da_n @ W_hn
            da_r = d_rh * h * r * (1 - r) * keep_r
            dh_prev = dh_prev + d_rh * r
            d_weight_hh[-H:] += da_n.T @ (r * h)
            d_bias_hh[-H:] += da_n.sum(0)
        if from_hidden:
            dh_prev = dh_prev + da_r @ weight_hh[:H] + da_z @ weight_hh[H : 2 * H]
            d_weight_hh[:H] += da_r.T @ h
            d_weight_hh[H : 2 * H] += da_z.T @ h
        if gate_bias:
            d_bias_hh[:H] += da_r.sum(0)
            d_bias_hh[H : 2 * H] += da_z.sum(0)
        da_input = np.concatenate([da_r, da_z, da_n], axis=1) if from_input else da_n
        dx[t] = da_input @ weight_ih
        d_weight_ih += da_input.T @ x[t]
        d_bias_ih += da_input.sum(0)
        dh = dh_prev
    grads = {"dx": dx, "dh0": dh, "weight_ih": d_weight_ih, "weight_hh": d_weight_hh}
    if cache["bias"]:
        grads.update(bias_ih=d_bias_ih, bias_hh=d_bias_hh)
    return grads


def _softplus(v):
    """log(1 + e^v), without overflow for large v."""
    return np.logaddexp(0, v)


def libru_forward(x, h0, weight_ih, weight_hh, bn_weight, bn_bias, running_mean=None, running_var=None,
                  train=True, eps=1e-5, lengths=None):
    """The light Bayesian recurrent unit over a sequence (EQUATIONS.md §8); weights have row
    blocks z, c. The state holds log-probabilities (``h0`` None: zeros). Batch normalisation as
    in :func:`ligru_forward`. Past its length a row keeps its state and outputs zeros.
    Returns ``(y, h_n, cache)``.
    """
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    real = _real_steps(T, B, lengths)
    a, norm = _batch_norm(x @ weight_ih.T, real, bn_weight, bn_bias, running_mean, running_var, train, eps)
    W_hz, W_hc = weight_hh[:H], weight_hh[H:]
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0
    y = np.zeros((T, B, H), dtype=x.dtype)
    steps = []
    for t in range(T):
        a_z = a[t, :, :H] + h @ W_hz.T
        a_c = a[t, :, H:] + h @ W_hc.T
        # log z = −softplus(−a_z), log(1 − z) = −softplus(a_z), c = softplus(a_c)
        kept = h - _softplus(-a_z)
        new = _softplus(a_c) - _softplus(a_z)
        h_new = np.logaddexp(kept, new)
        m = real[t][:, None]
        steps.append({"h_prev": h, "a_z": a_z, "a_c": a_c, "kept_share": np.exp(kept - h_new), "real": m})
        h = np.where(m, h_new, h)
        y[t] = np.where(m, h_new, 0)
    cache = {"x": x, "steps": steps, "weight_ih": weight_ih, "weight_hh": weight_hh, "norm": norm,
             "batch_mean": norm["mean"], "batch_var": norm["var"], "count": int(real.sum())}
    return y, h, cache


def libru_backward(cache, dy, dh_n=None):
    """Backpropagation through :func:`libru_forward`, through the batch statistics in training.

    With w = z e^ĥ / e^ĥ' (the share of the kept state in the new one): dL/da_z = g (w − z),
    dL/da_c = g (1 − w) σ(a_c), and ĥ' depends on ĥ directly with weight w. Returns ``dx``,
    ``dh0`` and the gradients ``weight_ih``, ``weight_hh``, ``bn_weight`` and ``bn_bias``.
    """
    x, steps = cache["x"], cache["steps"]
    weight_ih, weight_hh = cache["weight_ih"], cache["weight_hh"]
    H = weight_hh.shape[1]
    T = len(steps)
    da = np.zeros((T,) + dy.shape[1:2] + (2 * H,), dtype=dy.dtype)
    d_weight_hh = np.zeros_like(weight_hh, dtype=dy.dtype)
    dh = np.zeros(dy.shape[1:], dtype=dy.dtype) if dh_n is None else dh_n.copy()
    for t in reversed(range(T)):
        s = steps[t]
        h, w, m = s["h_prev"], s["kept_share"], s["real"]
        g = (dh + dy[t]) * m
        # σ(a) = e^(−softplus(−a)): no overflow where a is very negative.
        z, dc = np.exp(-_softplus(-s["a_z"])), np.exp(-_softplus(-s["a_c"]))
        da[t] = np.concatenate([g * (w - z), g * (1 - w) * dc], axis=1)
        d_weight_hh += da[t].T @ h
        dh = dh * ~m + g * w + da[t] @ weight_hh
    d_projection, d_bn_weight, d_bn_bias = _batch_norm_backward(cache["norm"], da)
    return {"dx": d_projection @ weight_ih, "dh0": dh,
            "weight_ih": np.einsum("tbg,tbi->gi", d_projection, x), "weight_hh": d_weight_hh,
            "bn_weight": d_bn_weight, "bn_bias": d_bn_bias}


def libru_network_forward(x, h0, params, num_layers=1, bidirectional=False, train=True, eps=1e-5, lengths=None,
                          batch_first=False):
    """A stacked, optionally bidirectional LiBRU (EQUATIONS.md §8), layer by layer, as
    :func:`ligru_network_forward` with the LiBRU's names (the same as the LiGRU's)."""
    return _normalised_network_forward(libru_forward, x, h0, params, num_layers, bidirectional, lengths,
                                       batch_first, train=train, eps=eps)


def libru_network_backward(cache, dy, dh_n=None):
    """Backpropagation through :func:`libru_network_forward`: ``dx``, ``dh0`` and ``grads``
    (name -> gradient, the buffers excepted)."""
    return _normalised_network_backward(libru_backward, cache, dy, dh_n)
