"""Bad input gives clear exceptions; odd-but-valid input works."""

import time

import numpy as np
import pytest

import fastgru
from fastgru.reference import gru_forward

T, B, I, H = 5, 3, 4, 6
PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def make_layer(dtype="float32", bias=True, reset_after=True, seed=0):
    return fastgru.GRU(I, H, bias=bias, reset_after=reset_after, dtype=dtype, seed=seed)


def make_data(dtype=np.float32, seed=1, t=T, b=B):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, b, I)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((1, b, H))).astype(dtype)
    dy = rng.standard_normal((t, b, H)).astype(dtype)
    dh_n = rng.standard_normal((1, b, H)).astype(dtype)
    return x, h0, dy, dh_n


def reference(layer, x, h0=None):
    sd = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    with np.errstate(all="ignore"):
        y, h_n, _ = gru_forward(
            np.asarray(x, np.float64),
            None if h0 is None else np.asarray(h0, np.float64)[0],
            sd["weight_ih_l0"],
            sd["weight_hh_l0"],
            sd.get("bias_ih_l0"),
            sd.get("bias_hh_l0"),
            reset_after=layer.reset_after,
        )
    return y, h_n[np.newaxis]


def grads_after(layer, x, h0, dy, dh_n):
    layer.zero_grad()
    layer.forward(x, h0, train=True)
    dx, dh0 = layer.backward(dy, dh_n)
    return dx.copy(), dh0.copy(), {k: v.copy() for k, v in layer.grads.items()}


# ================================================================== constructor


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(input_size=0, hidden_size=H), ValueError, "input_size"),
        (dict(input_size=-3, hidden_size=H), ValueError, "input_size"),
        (dict(input_size=I, hidden_size=0), ValueError, "hidden_size"),
        (dict(input_size=I, hidden_size=-1), ValueError, "hidden_size"),
        (dict(input_size=2.5, hidden_size=H), TypeError, "input_size"),
        (dict(input_size=I, hidden_size=2.5), TypeError, "hidden_size"),
        (dict(input_size="4", hidden_size=H), TypeError, "input_size"),
        (dict(input_size=True, hidden_size=H), TypeError, "input_size"),
        (dict(input_size=I, hidden_size=None), TypeError, "hidden_size"),
        (dict(input_size=I, hidden_size=H, num_layers=0), ValueError, "num_layers"),
        (dict(input_size=I, hidden_size=H, dropout=1.5), ValueError, "dropout"),
        (dict(input_size=I, hidden_size=H, dropout=-0.1), ValueError, "dropout"),
        (dict(input_size=I, hidden_size=H, dropout=1.0), ValueError, "dropout"),
    ],
)
def test_constructor_rejects_bad_sizes(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        fastgru.GRU(**kwargs)


@pytest.mark.parametrize("dtype", ["int32", "float16", np.int64, "complex64", "bogus", object])
def test_constructor_rejects_bad_dtype(dtype):
    with pytest.raises((TypeError, ValueError), match="dtype"):
        fastgru.GRU(I, H, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.dtype("float64")])
def test_constructor_accepts_float_dtypes(dtype):
    layer = fastgru.GRU(I, H, dtype=dtype, seed=0)
    assert layer.dtype == np.dtype(dtype)
    for name, arr in layer.state_dict().items():
        assert arr.dtype == np.dtype(dtype), name


def test_seed_is_deterministic_and_init_bounded():
    a = fastgru.GRU(I, H, seed=123).state_dict()
    b = fastgru.GRU(I, H, seed=123).state_dict()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert np.all(np.abs(a[name]) <= 1 / np.sqrt(H) + 1e-7)


# ================================================================== forward: bad input


@pytest.mark.parametrize("shape", [(T, B, 1, I), (I,), ()])  # (T, I) is one unbatched sequence
def test_x_wrong_ndim(shape):
    layer = make_layer()
    x = np.zeros(shape, np.float32)
    for call in (lambda: layer(x), lambda: layer.forward(x, train=True)):
        with pytest.raises(ValueError, match=r"\bx\b") as info:
            call()
        assert str(shape) in str(info.value), str(info.value)


@pytest.mark.parametrize("features", [I - 1, I + 1, 1])
def test_x_wrong_feature_size(features):
    layer = make_layer()
    x = np.zeros((T, B, features), np.float32)
    with pytest.raises(ValueError, match=r"\bx\b") as info:
        layer(x)
    msg = str(info.value)
    assert str(I) in msg and str(features) in msg


@pytest.mark.parametrize("shape", [(1, B + 1, H), (1, B, H + 1), (2, B, H), (B, H), (1, 1, B, H), (1, 1, H)])
def test_h0_wrong_shape(shape):
    layer = make_layer()
    x, _, _, _ = make_data()
    h0 = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="h0") as info:
        layer(x, h0)
    msg = str(info.value)
    assert str(tuple(shape)) in msg, msg
    assert str((1, B, H)) in msg, msg
    with pytest.raises(ValueError, match="h0"):
        layer.forward(x, h0, train=True)


def _bad_dtype_arrays(shape):
    return {
        "str": np.full(shape, "a"),
        "bytes": np.full(shape, b"a"),
        "object": np.full(shape, 1.0, dtype=object),
        "complex64": np.zeros(shape, np.complex64),
        "complex128": np.ones(shape, np.complex128),
        "datetime": np.zeros(shape, "datetime64[s]"),
    }


@pytest.mark.parametrize("kind", list(_bad_dtype_arrays((1,))))
def test_x_non_numeric_dtype(kind):
    layer = make_layer()
    x = _bad_dtype_arrays((T, B, I))[kind]
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer(x)
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer.forward(x, train=True)


def test_x_nested_strings_and_none():
    layer = make_layer()
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer([[["a"] * I] * B] * T)
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer([[[None] * I] * B] * T)


@pytest.mark.parametrize("kind", list(_bad_dtype_arrays((1,))))
def test_h0_non_numeric_dtype(kind):
    layer = make_layer()
    x, _, _, _ = make_data()
    h0 = _bad_dtype_arrays((1, B, H))[kind]
    with pytest.raises(TypeError, match="h0"):
        layer(x, h0)


@pytest.mark.parametrize("kind", list(_bad_dtype_arrays((1,))))
def test_dy_and_dh_n_non_numeric_dtype(kind):
    layer = make_layer()
    x, h0, dy, dh_n = make_data()
    layer.forward(x, h0, train=True)
    with pytest.raises(TypeError, match="dy"):
        layer.backward(_bad_dtype_arrays((T, B, H))[kind], dh_n)
    with pytest.raises(TypeError, match="dh_n"):
        layer.backward(dy, _bad_dtype_arrays((1, B, H))[kind])


# ================================================================== backward: bad use


def test_backward_without_forward():
    layer = make_layer()
    _, _, dy, dh_n = make_data()
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dy, dh_n)


def test_backward_after_inference_forward():
    layer = make_layer()
    x, h0, dy, dh_n = make_data()
    layer(x, h0)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dy, dh_n)
    layer.forward(x, h0, train=False)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dy, dh_n)


def test_inference_between_forward_and_backward_leaves_the_training_cache_alone():
    """backward differentiates the last forward(train=True); inference calls in between
    (validation, streaming) neither consume nor change its cache."""
    x, h0, dy, dh_n = make_data()
    expected = make_layer()
    expected.forward(x, h0, train=True)
    dx_expected, dh0_expected = expected.backward(dy, dh_n)
    layer = make_layer()
    layer.forward(x, h0, train=True)
    layer(2 * x, h0)
    dx, dh0 = layer.backward(dy, dh_n)
    np.testing.assert_array_equal(dx, dx_expected)
    np.testing.assert_array_equal(dh0, dh0_expected)
    for name, grad in expected.grads.items():
        np.testing.assert_array_equal(layer.grads[name], grad)


def test_backward_twice():
    layer = make_layer()
    x, h0, dy, dh_n = make_data()
    layer.forward(x, h0, train=True)
    layer.backward(dy, dh_n)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dy, dh_n)
    for k in grads:  # the refused call added nothing
        np.testing.assert_array_equal(layer.grads[k], grads[k])


def test_backward_after_load_state_dict_refused():
    layer = make_layer()
    x, h0, dy, dh_n = make_data()
    layer.forward(x, h0, train=True)
    layer.load_state_dict(make_layer(seed=5).state_dict())
    with pytest.raises(RuntimeError):
        layer.backward(dy, dh_n)


@pytest.mark.parametrize("shape", [(T, B, H + 1), (T + 1, B, H), (T, B + 1, H), (B, H), (T, B, I), (1, T, B, H)])
def test_dy_wrong_shape(shape):
    layer = make_layer()
    x, h0, dy, dh_n = make_data()
    layer.forward(x, h0, train=True)
    with pytest.raises(ValueError, match="dy") as info:
        layer.backward(np.zeros(shape, np.float32), dh_n)
    msg = str(info.value)
    assert str(tuple(shape)) in msg and str((T, B, H)) in msg, msg
    # The refused call neither consumed the forward nor touched the gradients.
    for k, g in layer.grads.items():
        assert not np.any(g), k
    expected = grads_after(make_layer(), x, h0, dy, dh_n)
    dx, dh0 = layer.backward(dy, dh_n)
    np.testing.assert_allclose(dx, expected[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dh0, expected[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(1, B, H + 1), (1, B + 1, H), (2, B, H), (B, H), (H,)])
def test_dh_n_wrong_shape(shape):
    layer = make_layer()
    x, h0, dy, _ = make_data()
    layer.forward(x, h0, train=True)
    with pytest.raises(ValueError, match="dh_n") as info:
        layer.backward(dy, np.zeros(shape, np.float32))
    msg = str(info.value)
    assert str(tuple(shape)) in msg and str((1, B, H)) in msg, msg
    for k, g in layer.grads.items():
        assert not np.any(g), k
    layer.backward(dy)  # still differentiable once


# ================================================================== load_state_dict


def _snapshot(layer):
    return {k: v.copy() for k, v in layer.state_dict().items()}


def _assert_unchanged(layer, before, x, h0, y_before):
    after = layer.state_dict()
    assert set(after) == set(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    y, _ = layer(x, h0)
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize("missing", PARAM_NAMES)
def test_load_state_dict_missing_key(missing):
    layer = make_layer()
    x, h0, _, _ = make_data()
    before, (y_before, _) = _snapshot(layer), layer(x, h0)
    new = make_layer(seed=9).state_dict()
    del new[missing]
    with pytest.raises(KeyError, match=missing):
        layer.load_state_dict(new)
    _assert_unchanged(layer, before, x, h0, y_before)


@pytest.mark.parametrize("extra", ["weight_ih_l1", "bias", "weight_hh_l0_reverse"])
def test_load_state_dict_unexpected_key(extra):
    layer = make_layer()
    x, h0, _, _ = make_data()
    before, (y_before, _) = _snapshot(layer), layer(x, h0)
    new = make_layer(seed=9).state_dict()
    new[extra] = np.zeros(3)
    with pytest.raises(KeyError, match=extra):
        layer.load_state_dict(new)
    _assert_unchanged(layer, before, x, h0, y_before)


def test_load_state_dict_bias_keys_into_bias_free_layer():
    layer = make_layer(bias=False)
    with pytest.raises(KeyError, match="bias_ih_l0"):
        layer.load_state_dict(make_layer(bias=True).state_dict())
    biased = make_layer(bias=True)
    with pytest.raises(KeyError, match="bias_hh_l0"):
        biased.load_state_dict(make_layer(bias=False).state_dict())


@pytest.mark.parametrize(
    "name, shape",
    [
        ("weight_ih_l0", (3 * H, I + 1)),
        ("weight_ih_l0", (I, 3 * H)),
        ("weight_hh_l0", (3 * H, H, 1)),
        ("weight_hh_l0", (3 * H * H,)),
        ("bias_ih_l0", (3 * H + 1,)),
        ("bias_hh_l0", (1, 3 * H)),
    ],
)
def test_load_state_dict_misshapen(name, shape):
    layer = make_layer()
    x, h0, _, _ = make_data()
    before, (y_before, _) = _snapshot(layer), layer(x, h0)
    new = make_layer(seed=9).state_dict()
    new[name] = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match=name) as info:
        layer.load_state_dict(new)
    assert str(tuple(shape)) in str(info.value)
    _assert_unchanged(layer, before, x, h0, y_before)


@pytest.mark.parametrize("name", PARAM_NAMES)
def test_load_state_dict_non_numeric(name):
    layer = make_layer()
    x, h0, _, _ = make_data()
    before, (y_before, _) = _snapshot(layer), layer(x, h0)
    new = make_layer(seed=9).state_dict()
    new[name] = np.full(new[name].shape, "a")
    with pytest.raises(TypeError, match=name):
        layer.load_state_dict(new)
    _assert_unchanged(layer, before, x, h0, y_before)


def test_load_state_dict_copies_its_input():
    layer = make_layer()
    x, h0, _, _ = make_data()
    new = make_layer(seed=9).state_dict()
    layer.load_state_dict(new)
    y_before, _ = layer(x, h0)
    for arr in new.values():
        arr[...] = 0  # the caller's arrays are not the layer's
    y_after, _ = layer(x, h0)
    np.testing.assert_array_equal(y_after, y_before)


def test_load_state_dict_converts_dtype():
    layer = make_layer("float32")
    src = make_layer("float64", seed=4)
    layer.load_state_dict(src.state_dict())
    for k, v in layer.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, src.state_dict()[k].astype(np.float32))


# ================================================================== read-only parameters


@pytest.mark.parametrize("name", PARAM_NAMES)
def test_parameter_attributes_are_read_only(name):
    layer = make_layer()
    x, h0, _, _ = make_data()
    y_before, _ = layer(x, h0)
    arr = getattr(layer, name)
    assert arr.shape == layer.state_dict()[name].shape
    with pytest.raises(ValueError):
        arr[0] = 1.0
    with pytest.raises(ValueError):
        arr[...] = 0.0
    with pytest.raises(ValueError):
        arr += 1.0
    with pytest.raises(ValueError):
        np.copyto(arr, 0.0)
    y_after, _ = layer(x, h0)
    np.testing.assert_array_equal(y_after, y_before)


def test_state_dict_returns_copies():
    layer = make_layer()
    x, h0, _, _ = make_data()
    y_before, _ = layer(x, h0)
    sd = layer.state_dict()
    for arr in sd.values():
        arr[...] = 0.0
    y_after, _ = layer(x, h0)
    np.testing.assert_array_equal(y_after, y_before)


def test_unknown_attribute():
    layer = make_layer(bias=False)
    with pytest.raises(AttributeError):
        layer.bias_ih_l0
    with pytest.raises(AttributeError):
        layer.weight_ih_l1


# ================================================================== inputs that work


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("src", [np.int32, np.int64, np.int8, np.uint8, np.int16])
def test_integer_input_converted(dtype, src):
    layer = make_layer(dtype)
    rng = np.random.default_rng(2)
    low = -3 if np.issubdtype(src, np.signedinteger) else 0
    xi = rng.integers(low, 4, size=(T, B, I)).astype(src)
    h0i = np.ones((1, B, H), src)
    y_ref, hn_ref = layer(xi.astype(dtype), h0i.astype(dtype))
    y, h_n = layer(xi, h0i)
    assert y.dtype == np.dtype(dtype) and h_n.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(h_n, hn_ref)

    # training path and backward with integer dy / dh_n
    dyi = rng.integers(-2, 3, size=(T, B, H)).astype(np.int64)
    dhi = rng.integers(-2, 3, size=(1, B, H)).astype(np.int64)
    as_float = [a.astype(dtype) for a in (xi, h0i, dyi, dhi)]
    expected = grads_after(make_layer(dtype), *as_float)
    got = grads_after(layer, xi, h0i, dyi, dhi)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    for k in expected[2]:
        np.testing.assert_array_equal(got[2][k], expected[2][k])


def test_bool_and_list_input():
    layer = make_layer()
    xb = np.random.default_rng(3).integers(0, 2, size=(T, B, I)).astype(bool)
    y_ref, _ = layer(xb.astype(np.float32))
    np.testing.assert_array_equal(layer(xb)[0], y_ref)
    np.testing.assert_array_equal(layer(xb.astype(np.float32).tolist())[0], y_ref)


def test_float64_input_to_float32_layer():
    layer = make_layer("float32")
    x64, h064, dy64, dh64 = make_data(np.float64)
    x32, h032, dy32, dh32 = (a.astype(np.float32) for a in (x64, h064, dy64, dh64))
    y_ref, hn_ref = layer(x32, h032)
    y, h_n = layer(x64, h064)
    assert y.dtype == np.float32 and h_n.dtype == np.float32
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(h_n, hn_ref)

    expected = grads_after(make_layer("float32"), x32, h032, dy32, dh32)
    got = grads_after(layer, x64, h064, dy64, dh64)
    assert got[0].dtype == np.float32 and got[1].dtype == np.float32
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    for k in expected[2]:
        assert got[2][k].dtype == np.float32
        np.testing.assert_array_equal(got[2][k], expected[2][k])


def test_float32_input_to_float64_layer():
    layer = make_layer("float64")
    x32, h032, _, _ = make_data(np.float32)
    y, h_n = layer(x32, h032)
    assert y.dtype == np.float64
    y_ref, hn_ref = layer(x32.astype(np.float64), h032.astype(np.float64))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(h_n, hn_ref)


def _non_contiguous_views():
    rng = np.random.default_rng(4)
    big = rng.standard_normal((2 * T, B, I)).astype(np.float32)
    btI = rng.standard_normal((B, T, I)).astype(np.float32)
    ItB = rng.standard_normal((I, B, T)).astype(np.float32)
    wide = rng.standard_normal((T, 2 * B, 2 * I)).astype(np.float32)
    neg = rng.standard_normal((T, B, I)).astype(np.float32)
    return {
        "every-other-step": big[::2],
        "transposed-TB": btI.transpose(1, 0, 2),
        "transposed-all": ItB.transpose(2, 1, 0),
        "strided-BI": wide[:, ::2, 1::2],
        "negative-stride": neg[::-1, :, ::-1],
        "fortran": np.asfortranarray(neg),
        "float64-strided": big.astype(np.float64)[1::2],
    }


@pytest.mark.parametrize("kind", list(_non_contiguous_views()))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_contiguous_input(kind, dtype):
    layer = make_layer(dtype)
    x = _non_contiguous_views()[kind]
    assert x.shape == (T, B, I)
    xc = np.ascontiguousarray(x, dtype=dtype)
    h0_base = np.random.default_rng(5).standard_normal((B, 1, 2 * H)).astype(dtype)
    h0 = h0_base[:, :, ::2].transpose(1, 0, 2)  # (1, B, H), non-contiguous
    h0c = np.ascontiguousarray(h0)
    y_ref, hn_ref = layer(xc, h0c)
    y, h_n = layer(x, h0)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(h_n, hn_ref)

    rng = np.random.default_rng(6)
    dy_base = rng.standard_normal((H, B, T)).astype(dtype)
    dy = dy_base.transpose(2, 1, 0)
    dh_n = rng.standard_normal((1, B, 2 * H)).astype(dtype)[:, :, ::2]
    expected = grads_after(make_layer(dtype), xc, h0c, np.ascontiguousarray(dy), np.ascontiguousarray(dh_n))
    got = grads_after(layer, x, h0, dy, dh_n)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    for k in expected[2]:
        np.testing.assert_array_equal(got[2][k], expected[2][k])


def test_input_not_modified():
    layer = make_layer()
    x, h0, dy, dh_n = make_data()
    copies = [a.copy() for a in (x, h0, dy, dh_n)]
    layer(x, h0)
    layer.forward(x, h0, train=True)
    layer.backward(dy, dh_n)
    for a, c in zip((x, h0, dy, dh_n), copies):
        np.testing.assert_array_equal(a, c)


# ================================================================== NaN / Inf


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bad", [np.nan, "all-inf", "one-inf", "neg-inf"])
def test_nan_inf_in_x_propagate(bad, reset_after):
    layer = make_layer(reset_after=reset_after)
    x, h0, dy, dh_n = make_data()
    t_bad, b_bad = 2, 1
    x_bad = x.copy()
    if bad == "all-inf":
        x_bad[t_bad, b_bad, :] = np.inf
    elif bad == "one-inf":
        x_bad[t_bad, b_bad, 0] = np.inf
    elif bad == "neg-inf":
        x_bad[t_bad, b_bad, :] = -np.inf
    else:
        x_bad[t_bad, b_bad, 0] = np.nan

    y_clean, hn_clean = layer(x, h0)
    y, h_n = layer(x_bad, h0)  # no crash
    assert y.shape == (T, B, H) and h_n.shape == (1, B, H)

    others = [b for b in range(B) if b != b_bad]
    # Rows without bad input are unaffected, steps before the bad one too.
    np.testing.assert_allclose(y[:, others], y_clean[:, others], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h_n[:, others], hn_clean[:, others], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y[:t_bad, b_bad], y_clean[:t_bad, b_bad], rtol=1e-6, atol=1e-7)
    assert np.all(np.isfinite(y[:, others]))

    # The affected row follows IEEE arithmetic as the float64 reference does.
    y_ref, hn_ref = reference(layer, x_bad, h0)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(h_n, hn_ref, rtol=1e-5, atol=1e-5, equal_nan=True)
    if bad is np.nan or bad == "all-inf":
        # NaN in x reaches every unit of that row from t_bad on; so does +inf over the whole
        # row (a sum of +inf and -inf terms), at the latest from the step after it.
        first = t_bad if bad is np.nan else t_bad + 1
        assert np.all(np.isnan(y[first:, b_bad]))
        assert np.all(np.isnan(h_n[0, b_bad]))

    # Training path and backward: no crash, other rows' dx and dh0 unaffected.
    layer.forward(x, h0, train=True)
    dx_clean, dh0_clean = layer.backward(dy, dh_n)
    y_tr, _ = layer.forward(x_bad, h0, train=True)
    np.testing.assert_array_equal(np.isnan(y_tr), np.isnan(y))
    dx, dh0 = layer.backward(dy, dh_n)
    assert dx.shape == (T, B, I) and dh0.shape == (1, B, H)
    np.testing.assert_allclose(dx[:, others], dx_clean[:, others], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dh0[:, others], dh0_clean[:, others], rtol=1e-5, atol=1e-6)


def test_nan_in_h0_row_propagates():
    layer = make_layer()
    x, h0, _, _ = make_data()
    y_clean, _ = layer(x, h0)
    h0_bad = h0.copy()
    h0_bad[0, 0, 3] = np.nan
    y, h_n = layer(x, h0_bad)
    assert np.all(np.isnan(y[:, 0])) and np.all(np.isnan(h_n[0, 0]))
    np.testing.assert_allclose(y[:, 1:], y_clean[:, 1:], rtol=1e-6, atol=1e-7)


def test_large_finite_input_saturates_without_nan():
    layer = make_layer()
    x, h0, _, _ = make_data()
    for scale in (1e4, 1e20, 1e38):
        y, h_n = layer(x * np.float32(scale), h0)
        assert np.all(np.isfinite(y)), scale
        assert np.all(np.abs(y) <= 1.0 + 1e-6), scale
        y_ref, _ = reference(layer, x * np.float32(scale), h0)
        np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)


# ================================================================== empty shapes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_h0", [True, False])
def test_zero_batch(dtype, with_h0):
    layer = make_layer(dtype)
    x = np.zeros((T, 0, I), dtype)
    h0 = np.zeros((1, 0, H), dtype) if with_h0 else None
    y, h_n = layer(x, h0)
    assert y.shape == (T, 0, H) and h_n.shape == (1, 0, H)
    assert y.dtype == np.dtype(dtype)
    y, h_n = layer.forward(x, h0, train=True)
    assert y.shape == (T, 0, H) and h_n.shape == (1, 0, H)
    dx, dh0 = layer.backward(np.zeros((T, 0, H), dtype), np.zeros((1, 0, H), dtype))
    assert dx.shape == (T, 0, I) and dh0.shape == (1, 0, H)
    assert dx.dtype == np.dtype(dtype)
    for k, g in layer.grads.items():
        assert not np.any(g), k
        assert g.shape == layer.state_dict()[k].shape


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_steps(dtype, reset_after):
    layer = make_layer(dtype, reset_after=reset_after)
    _, h0, _, dh_n = make_data(dtype)
    x = np.zeros((0, B, I), dtype)
    y, h_n = layer(x, h0)
    assert y.shape == (0, B, H) and h_n.shape == (1, B, H)
    np.testing.assert_array_equal(h_n, h0)
    y, h_n = layer(x)
    assert y.shape == (0, B, H)
    np.testing.assert_array_equal(h_n, np.zeros((1, B, H), dtype))

    y, h_n = layer.forward(x, h0, train=True)
    assert y.shape == (0, B, H)
    np.testing.assert_array_equal(h_n, h0)
    dx, dh0 = layer.backward(np.zeros((0, B, H), dtype), dh_n)
    assert dx.shape == (0, B, I) and dh0.shape == (1, B, H)
    np.testing.assert_array_equal(dh0, dh_n)  # h_n = h0, so dL/dh0 = dL/dh_n
    for k, g in layer.grads.items():
        # With no steps there is nothing to differentiate: every gradient stays exactly zero.
        assert not np.any(g), f"T=0 backward with h0 given changed grads[{k!r}]: max |g| = {np.abs(g).max()}"

    # Same with h0=None (zeros) and dh_n=None.
    layer.forward(x, None, train=True)
    dx, dh0 = layer.backward(np.zeros((0, B, H), dtype))
    assert dx.shape == (0, B, I)
    np.testing.assert_array_equal(dh0, np.zeros((1, B, H), dtype))
    for k, g in layer.grads.items():
        assert not np.any(g), k

    # h_n is not the caller's h0 (a later in-place change of one leaves the other alone)
    y, h_n = layer(x, h0)
    h_n[...] = 42
    assert not np.any(h0 == 42)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("cell", [fastgru.GRU, fastgru.MGU])
def test_zero_steps_and_batch(cell, batch_first):
    layer = cell(I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    y, h_n = layer(np.zeros((0, 0, I), np.float32))
    assert y.shape == (0, 0, 2 * H) and h_n.shape == (4, 0, H)
    layer.forward(np.zeros((0, 0, I), np.float32), np.zeros((4, 0, H)), train=True)
    dx, dh0 = layer.backward(np.zeros((0, 0, 2 * H)), np.zeros((4, 0, H)))
    assert dx.shape == (0, 0, I) and dh0.shape == (4, 0, H)
    y_t, h = cell(I, H, batch_first=batch_first).step(np.zeros((0, I)))
    assert y_t.shape == (0, H) and h.shape == (1, 0, H)


def test_empty_batch_of_many_steps_returns_at_once():
    # Nothing to compute at any step: the step count must not matter (it took seconds at 10**7).
    layer = make_layer()
    steps = 10**7
    start = time.perf_counter()
    y, h_n = layer(np.zeros((steps, 0, I), np.float32))
    assert y.shape == (steps, 0, H) and h_n.shape == (1, 0, H)
    layer.forward(np.zeros((steps, 0, I), np.float32), train=True)
    dx, dh0 = layer.backward(np.zeros((steps, 0, H), np.float32))
    assert dx.shape == (steps, 0, I) and dh0.shape == (1, 0, H)
    assert time.perf_counter() - start < 1.0
    for name, grad in layer.grads.items():
        assert not grad.any(), name


def test_zero_batch_wrong_features_still_rejected():
    layer = make_layer()
    with pytest.raises(ValueError, match=r"\bx\b"):
        layer(np.zeros((T, 0, I + 1), np.float32))


# ================================================================== private copies


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.int64])
def test_in_place_changes_between_forward_and_backward(reset_after, x_dtype):
    """Changing the caller's x and h0, or the returned y and h_n, between forward(train=True)
    and backward must not change what backward computes (the training cache owns copies)."""
    rng = np.random.default_rng(7)
    if x_dtype is np.int64:
        x = rng.integers(-2, 3, size=(T, B, I)).astype(x_dtype)
    else:
        x = rng.standard_normal((T, B, I)).astype(x_dtype)
    h0 = (0.5 * rng.standard_normal((1, B, H))).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)
    dh_n = rng.standard_normal((1, B, H)).astype(np.float32)

    expected = grads_after(make_layer(reset_after=reset_after), x.copy(), h0.copy(), dy, dh_n)

    layer = make_layer(reset_after=reset_after)
    layer.zero_grad()
    y, h_n = layer.forward(x, h0, train=True)
    x[...] = 7
    h0[...] = -3
    y[...] = 0.25
    h_n[...] = 0.5
    dx, dh0 = layer.backward(dy, dh_n)
    np.testing.assert_array_equal(dx, expected[0])
    np.testing.assert_array_equal(dh0, expected[1])
    for k in expected[2]:
        np.testing.assert_array_equal(layer.grads[k], expected[2][k])


def test_modifying_dy_after_backward_and_outputs_independent():
    layer = make_layer()
    x, h0, dy, dh_n = make_data()
    y2, h2 = layer(x, h0)
    y1, h1 = layer.forward(x, h0, train=True)
    assert not np.shares_memory(y1, y2) and not np.shares_memory(h1, h2)
    assert not np.shares_memory(y1, h1)
    assert not np.shares_memory(y1, x) and not np.shares_memory(h1, h0)
    dx, dh0 = layer.backward(dy, dh_n)
    assert not np.shares_memory(dx, dy) and not np.shares_memory(dh0, dh_n)
    for g in layer.grads.values():
        assert not np.shares_memory(dx, g) and not np.shares_memory(dh0, g)
