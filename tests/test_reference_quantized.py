"""The NumPy definition of bf16 and int8 inference (EQUATIONS.md §9)."""

import numpy as np
import pytest

from fastgru import reference, reference_quantized as rq

from .helpers import normalised_error

# NumPy only: no kernel runs here, so once is enough.
pytestmark = pytest.mark.best_isa_only


def test_bf16_rounds_to_nearest_even():
    ulp = 2.0**-7  # bf16 keeps 8 significant bits: the spacing above 1
    values = np.float32([1 + ulp / 2, 1 + 3 * ulp / 2, 1 + ulp / 2 + 2**-20, -(1 + 3 * ulp / 2), 3.4e38, -0.0, 1e-40])
    # 1e-40 is subnormal, in bf16 too: it rounds to the nearest bf16 subnormal, 2^-133.
    expected = np.float32([1, 1 + 2 * ulp, 1 + ulp, -(1 + 2 * ulp), np.inf, -0.0, 2.0**-133])
    got = rq.round_to_bf16(values)
    np.testing.assert_array_equal(got, expected)
    assert np.signbit(got[5])
    nan = np.uint32(0x7F800001).view(np.float32)  # a NaN whose payload lies in the dropped bits
    assert np.isnan(rq.round_to_bf16(np.float32([nan, np.nan]))).all()


def test_bf16_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(10000), rng.standard_normal(1000) * 1e30,
                             rng.standard_normal(1000) * 1e-38]).astype(np.float32)
    expected = torch.from_numpy(values).to(torch.bfloat16).to(torch.float32).numpy()
    np.testing.assert_array_equal(rq.round_to_bf16(values), expected)


def test_int8_rows_use_their_full_range_and_round_to_nearest():
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((5, 33)).astype(np.float32)
    rows[3] = 0
    q, scale = rq.quantize_rows_int8(rows)
    assert q.dtype == np.int8 and scale.dtype == np.float32
    assert scale[3] == 0 and not q[3].any()
    for i in (0, 1, 2, 4):
        assert np.abs(q[i]).max() == 127
        assert np.abs(q[i] * scale[i] - rows[i]).max() <= scale[i] / 2 * (1 + 1e-6)
    assert np.abs(q).max() <= 127


def test_int8_refuses_what_it_cannot_scale():
    with pytest.raises(ValueError, match="finite"):
        rq.quantize_rows_int8(np.float32([[1, np.inf]]))
    with pytest.raises(ValueError, match="2-D"):
        rq.quantize_rows_int8(np.float32([1, 2]))
    with pytest.raises(ValueError, match="mode: expected one of"):
        rq.quantize_matrix(np.zeros((2, 2)), "int4")


def test_products_are_exact_over_the_quantized_values():
    rng = np.random.default_rng(2)
    rows, weight = rng.standard_normal((3, 70)).astype(np.float32), rng.standard_normal((9, 70)).astype(np.float32)
    w8 = rq.quantize_matrix(weight, "int8")
    q, s = rq.quantize_rows_int8(rows)
    exact = (q.astype(np.int64) @ w8.values.astype(np.int64).T) * np.outer(s.astype(np.float64), w8.scale.astype(np.float64))
    np.testing.assert_array_equal(rq.quantized_product(rows, w8), exact)
    w16 = rq.quantize_matrix(weight, "bf16")
    expected = rq.round_to_bf16(rows).astype(np.float64) @ rq.round_to_bf16(weight).astype(np.float64).T
    np.testing.assert_array_equal(rq.quantized_product(rows, w16), expected)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("mode,recurrent_mode,bound", [("bf16", None, 1e-2), ("int8", None, 3e-2), ("int8", "bf16", 3e-2)])
def test_quantized_gru_stays_near_float(mode, recurrent_mode, bound, reset_after):
    """Close to the float64 GRU, and not equal to it: the products really are quantized."""
    rng = np.random.default_rng(3)
    T, B, I, H = 20, 3, 24, 40
    k = 1 / np.sqrt(H)
    w_ih, w_hh = rng.uniform(-k, k, (3 * H, I)).astype(np.float32), rng.uniform(-k, k, (3 * H, H)).astype(np.float32)
    b_ih, b_hh = rng.uniform(-k, k, 3 * H).astype(np.float32), rng.uniform(-k, k, 3 * H).astype(np.float32)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y, h_n = rq.gru_forward_quantized(x, None, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after, mode=mode,
                                      recurrent_mode=recurrent_mode)
    expected, _, _ = reference.gru_forward(x.astype(np.float64), None, w_ih.astype(np.float64),
                                           w_hh.astype(np.float64), b_ih.astype(np.float64),
                                           b_hh.astype(np.float64), reset_after=reset_after)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(h_n, y[-1])
    assert 1e-5 < normalised_error(y, expected) <= bound


def test_rows_too_small_for_the_reciprocal_keep_their_zeros():
    from fastgru.reference_quantized import quantize_rows_int8

    rows = np.array([[1e-38, 0.0, -5e-39]], np.float32)
    q, scale = quantize_rows_int8(rows)
    assert q.tolist() == [[127, 0, -127]] and scale[0] == np.float32(1e-38) / np.float32(127)
