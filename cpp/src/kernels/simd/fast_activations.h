// Vectorized exp, sigmoid and tanh for float32 SIMD types, written once over a traits class S
// (S supplies set1, fma, add, sub, mul, div, min, max, round, scale_by_pow2).
// exp: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r, then e^r · 2^n.
// Inputs are clamped to ±88 (keeping NaN: x86 min/max return their second operand on NaN), so
// ±Inf saturate like the exact functions. Measured on [-30, 30]: sigmoid within 9.2e-8 and tanh
// within 1.8e-7 absolute of the float64 values (tests/test_runtime.py bounds them).
#pragma once

namespace fastgru::kernels {

template <class S>
inline typename S::V fast_exp(typename S::V x) {
  using V = typename S::V;
  x = S::min(S::set1(88.0f), x);
  x = S::max(S::set1(-88.0f), x);
  const V n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  V r = S::fma(n, S::set1(-0.693145751953125f), x);
  r = S::fma(n, S::set1(-1.428606765330187045e-06f), r);
  V p = S::set1(1.0f / 720);
  p = S::fma(p, r, S::set1(1.0f / 120));
  p = S::fma(p, r, S::set1(1.0f / 24));
  p = S::fma(p, r, S::set1(1.0f / 6));
  p = S::fma(p, r, S::set1(0.5f));
  p = S::fma(p, r, S::set1(1.0f));
  p = S::fma(p, r, S::set1(1.0f));
  return S::scale_by_pow2(p, n);
}

template <class S>
inline typename S::V fast_sigmoid(typename S::V x) {
  const typename S::V one = S::set1(1.0f);
  return S::div(one, S::add(one, fast_exp<S>(S::sub(S::zero(), x))));
}

// tanh(x) = 1 − 2 / (1 + e^{2x}): absolute error of a few float32 ulps of 1.
template <class S>
inline typename S::V fast_tanh(typename S::V x) {
  const typename S::V one = S::set1(1.0f);
  const typename S::V two = S::set1(2.0f);
  return S::sub(one, S::div(two, S::add(one, fast_exp<S>(S::mul(two, x)))));
}

}  // namespace fastgru::kernels
