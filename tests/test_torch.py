"""fastgru against torch.nn.GRU: outputs, input/state gradients and all parameter gradients."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastgru  # noqa: E402

from .helpers import normalised_error as rel_err  # noqa: E402

TOL = {"float32": 1e-5, "float64": 1e-10}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}
PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")

# (T, B, I, H, bias)
SHAPES = [
    pytest.param(1, 1, 1, 1, True, id="T1-B1-I1-H1"),
    pytest.param(7, 3, 5, 13, True, id="T7-B3-I5-H13"),
    pytest.param(20, 17, 9, 33, True, id="T20-B17-I9-H33"),
    pytest.param(6, 4, 3, 10, False, id="T6-B4-I3-H10-nobias"),
    # Records and dL/d(W_i x) over 2 MB are written around the caches (float32, AVX-512, H a
    # multiple of 16); at H = 264 the same sizes are written the ordinary way.
    pytest.param(48, 16, 8, 256, True, id="T48-B16-I8-H256-streamed"),
    pytest.param(48, 16, 8, 264, True, id="T48-B16-I8-H264-large"),
]


def assert_close(name, actual, expected, tol):
    err = rel_err(actual, expected)
    assert np.isfinite(err) and err <= tol, f"{name}: normalised error {err:.3e} > {tol:.0e}"


def make_pair(I, H, bias, dtype, seed):
    torch.manual_seed(seed)
    ref = torch.nn.GRU(I, H, num_layers=1, bias=bias, dtype=TORCH_DTYPE[dtype])
    layer = fastgru.GRU(I, H, bias=bias, dtype=dtype, seed=seed + 1)
    layer.load_state_dict(ref.state_dict())
    return ref, layer


def make_data(T, B, I, H, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((1, B, H))).astype(dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    dh_n = rng.standard_normal((1, B, H)).astype(dtype)
    return x, h0, dy, dh_n


def torch_forward_backward(ref, x, h0, dy, dh_n):
    ref.zero_grad(set_to_none=True)
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    y, h_n = ref(xt, h0t)
    loss = (y * torch.tensor(dy)).sum() + (h_n * torch.tensor(dh_n)).sum()
    loss.backward()
    grads = {name: p.grad.detach().numpy().copy() for name, p in ref.named_parameters()}
    return (
        y.detach().numpy(),
        h_n.detach().numpy(),
        xt.grad.numpy(),
        h0t.grad.numpy(),
        grads,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("T,B,I,H,bias", SHAPES)
def test_state_dict_loads_unchanged(T, B, I, H, bias, dtype):
    ref, layer = make_pair(I, H, bias, dtype, seed=T * 100 + H)
    sd = layer.state_dict()
    assert set(sd) == {k for k, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert sd[name].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(sd[name], p.detach().numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("T,B,I,H,bias", SHAPES)
def test_inference_matches_torch(T, B, I, H, bias, dtype):
    tol = TOL[dtype]
    ref, layer = make_pair(I, H, bias, dtype, seed=T * 100 + H)
    x, h0, _, _ = make_data(T, B, I, H, dtype, seed=7 + T)
    with torch.no_grad():
        y_ref, hn_ref = ref(torch.tensor(x), torch.tensor(h0))
        y_ref0, hn_ref0 = ref(torch.tensor(x))

    y, h_n = layer(x, h0)
    assert y.shape == (T, B, H) and h_n.shape == (1, B, H)
    assert y.dtype == np.dtype(dtype) and h_n.dtype == np.dtype(dtype)
    assert_close("y", y, y_ref.numpy(), tol)
    assert_close("h_n", h_n, hn_ref.numpy(), tol)

    # h0=None means zeros
    y0, h_n0 = layer(x)
    assert_close("y (h0=None)", y0, y_ref0.numpy(), tol)
    assert_close("h_n (h0=None)", h_n0, hn_ref0.numpy(), tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("T,B,I,H,bias", SHAPES)
def test_forward_backward_matches_torch(T, B, I, H, bias, dtype):
    tol = TOL[dtype]
    ref, layer = make_pair(I, H, bias, dtype, seed=T * 100 + H + 1)
    x, h0, dy, dh_n = make_data(T, B, I, H, dtype, seed=11 + T)
    y_ref, hn_ref, dx_ref, dh0_ref, g_ref = torch_forward_backward(ref, x, h0, dy, dh_n)

    layer.zero_grad()
    y, h_n = layer.forward(x, h0, train=True)
    assert_close("y (train)", y, y_ref, tol)
    assert_close("h_n (train)", h_n, hn_ref, tol)

    dx, dh0 = layer.backward(dy, dh_n)
    assert dx.shape == (T, B, I) and dh0.shape == (1, B, H)
    assert dx.dtype == np.dtype(dtype) and dh0.dtype == np.dtype(dtype)
    assert_close("dx", dx, dx_ref, tol)
    assert_close("dh0", dh0, dh0_ref, tol)

    assert set(layer.grads) == set(g_ref)
    expected_names = PARAM_NAMES if bias else PARAM_NAMES[:2]
    assert set(layer.grads) == set(expected_names)
    for name in expected_names:
        assert layer.grads[name].shape == g_ref[name].shape
        assert_close(f"grad {name}", layer.grads[name], g_ref[name], tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backward_without_dh_n_matches_torch(dtype):
    T, B, I, H = 5, 4, 6, 11
    tol = TOL[dtype]
    ref, layer = make_pair(I, H, True, dtype, seed=3)
    x, h0, dy, _ = make_data(T, B, I, H, dtype, seed=4)
    zeros = np.zeros((1, B, H), dtype)
    _, _, dx_ref, dh0_ref, g_ref = torch_forward_backward(ref, x, h0, dy, zeros)

    layer.forward(x, h0, train=True)
    dx, dh0 = layer.backward(dy)  # dh_n=None means zeros
    assert_close("dx", dx, dx_ref, tol)
    assert_close("dh0", dh0, dh0_ref, tol)
    for name in PARAM_NAMES:
        assert_close(f"grad {name}", layer.grads[name], g_ref[name], tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_accumulate_and_zero_grad_clears(dtype, bias):
    T, B, I, H = 7, 3, 5, 13
    tol = TOL[dtype]
    ref, layer = make_pair(I, H, bias, dtype, seed=21)
    x, h0, dy, dh_n = make_data(T, B, I, H, dtype, seed=22)
    _, _, dx_ref, dh0_ref, g_ref = torch_forward_backward(ref, x, h0, dy, dh_n)

    layer.zero_grad()
    for _ in range(2):
        layer.forward(x, h0, train=True)
        dx, dh0 = layer.backward(dy, dh_n)
        # dx and dh0 are per-call, never accumulated
        assert_close("dx", dx, dx_ref, tol)
        assert_close("dh0", dh0, dh0_ref, tol)
    for name, g in g_ref.items():
        assert_close(f"2x grad {name}", layer.grads[name], 2 * g, tol)

    # Accumulation across *different* inputs: grads(a) + grads(b)
    x2, h02, dy2, dh_n2 = make_data(T, B, I, H, dtype, seed=23)
    _, _, _, _, g_ref2 = torch_forward_backward(ref, x2, h02, dy2, dh_n2)
    layer.zero_grad()
    layer.forward(x, h0, train=True)
    layer.backward(dy, dh_n)
    layer.forward(x2, h02, train=True)
    layer.backward(dy2, dh_n2)
    for name in g_ref:
        assert_close(f"sum grad {name}", layer.grads[name], g_ref[name] + g_ref2[name], tol)

    grads_before = {name: id(g) for name, g in layer.grads.items()}
    layer.zero_grad()
    for name, g in layer.grads.items():
        assert g.dtype == np.dtype(dtype)
        assert not np.any(g), f"zero_grad left nonzero entries in {name}"
    # zero_grad clears in place and keeps the dict's keys
    assert {name: id(g) for name, g in layer.grads.items()} == grads_before

    # After zero_grad a single pass gives exactly one pass's gradients again
    layer.forward(x, h0, train=True)
    layer.backward(dy, dh_n)
    for name, g in g_ref.items():
        assert_close(f"grad after zero_grad {name}", layer.grads[name], g, tol)


def test_inference_forward_does_not_touch_grads():
    T, B, I, H = 4, 2, 3, 5
    ref, layer = make_pair(I, H, True, "float64", seed=5)
    x, h0, dy, dh_n = make_data(T, B, I, H, "float64", seed=6)
    layer.forward(x, h0, train=True)
    layer.backward(dy, dh_n)
    snapshot = {k: v.copy() for k, v in layer.grads.items()}
    layer(x, h0)
    layer.forward(x, h0, train=False)
    for k in snapshot:
        np.testing.assert_array_equal(layer.grads[k], snapshot[k])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_and_inference_forward_agree(dtype):
    T, B, I, H = 9, 5, 4, 17
    _, layer = make_pair(I, H, True, dtype, seed=8)
    x, h0, _, _ = make_data(T, B, I, H, dtype, seed=9)
    y_inf, hn_inf = layer(x, h0)
    y_tr, hn_tr = layer.forward(x, h0, train=True)
    assert_close("y", y_tr, y_inf, TOL[dtype])
    assert_close("h_n", hn_tr, hn_inf, TOL[dtype])
    np.testing.assert_array_equal(hn_tr[0], y_tr[-1])


def test_accepts_torch_tensors_as_input():
    T, B, I, H = 4, 3, 5, 7
    ref, layer = make_pair(I, H, True, "float32", seed=10)
    x, h0, dy, dh_n = make_data(T, B, I, H, "float32", seed=11)
    xt = torch.tensor(x, requires_grad=True)  # detached by fastgru
    y_np, hn_np = layer(x, h0)
    y_t, hn_t = layer(xt, torch.tensor(h0))
    np.testing.assert_array_equal(y_t, y_np)
    np.testing.assert_array_equal(hn_t, hn_np)
    layer.forward(xt, torch.tensor(h0), train=True)
    dx_t, dh0_t = layer.backward(torch.tensor(dy), torch.tensor(dh_n))
    layer.forward(x, h0, train=True)
    dx_np, dh0_np = layer.backward(dy, dh_n)
    np.testing.assert_array_equal(dx_t, dx_np)
    np.testing.assert_array_equal(dh0_t, dh0_np)
