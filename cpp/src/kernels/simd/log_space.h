// softplus and logaddexp over a SIMD traits class S, in the forms that never overflow
// (EQUATIONS.md §8): the exponential is only ever taken of a number <= 0.
#pragma once

namespace fastgru::kernels {

template <class S>
inline typename S::V absolute(typename S::V a) {
  return S::max(a, S::sub(S::zero(), a));
}

// softplus(a) = log(1 + e^a) = max(a, 0) + log(1 + e^−|a|).
template <class S>
inline typename S::V softplus(typename S::V a) {
  return S::add(S::max(a, S::zero()), S::log1p_exp_negative(absolute<S>(a)));
}

// logaddexp(u, v) = log(e^u + e^v) = max(u, v) + log(1 + e^−|u − v|).
template <class S>
inline typename S::V logaddexp(typename S::V u, typename S::V v) {
  return S::add(S::max(u, v), S::log1p_exp_negative(absolute<S>(S::sub(u, v))));
}

}  // namespace fastgru::kernels
