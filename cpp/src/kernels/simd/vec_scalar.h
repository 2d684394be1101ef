// Portable "vector" of four scalars: the SIMD kernel templates instantiated with it are the
// scalar path (any x86-64, and float64), with the standard library's exact exp, tanh and log1p.
#pragma once

#include <cmath>

namespace fastgru::kernels {

template <typename RealType>
struct VecScalar {
  using Real = RealType;
  static constexpr int kWidth = 4;
  struct V {
    Real lane[kWidth];
  };

  template <typename Op>
  static V map(V a, Op op) {
    V out;
    for (int i = 0; i < kWidth; ++i) out.lane[i] = op(a.lane[i]);
    return out;
  }
  template <typename Op>
  static V zip(V a, V b, Op op) {
    V out;
    for (int i = 0; i < kWidth; ++i) out.lane[i] = op(a.lane[i], b.lane[i]);
    return out;
  }

  static V zero() { return set1(Real(0)); }
  static V set1(Real v) {
    V out;
    for (int i = 0; i < kWidth; ++i) out.lane[i] = v;
    return out;
  }
  static V load(const Real* p) { return load_n(p, kWidth); }
  static V load_n(const Real* p, int n) {
    V out = zero();
    for (int i = 0; i < n; ++i) out.lane[i] = p[i];
    return out;
  }
  static void store(Real* p, V v) { store_n(p, v, kWidth); }
  static void store_n(Real* p, V v, int n) {
    for (int i = 0; i < n; ++i) p[i] = v.lane[i];
  }
  static constexpr bool kStoresLines = false;  // no streaming stores (see VecAvx512F32)
  static V fma(V a, V b, V c) {
    V out;
    for (int i = 0; i < kWidth; ++i) out.lane[i] = a.lane[i] * b.lane[i] + c.lane[i];
    return out;
  }
  static V add(V a, V b) { return zip(a, b, [](Real x, Real y) { return x + y; }); }
  static V sub(V a, V b) { return zip(a, b, [](Real x, Real y) { return x - y; }); }
  static V mul(V a, V b) { return zip(a, b, [](Real x, Real y) { return x * y; }); }
  static V min(V a, V b) { return zip(a, b, [](Real x, Real y) { return x < y ? x : y; }); }
  static V max(V a, V b) { return zip(a, b, [](Real x, Real y) { return x > y ? x : y; }); }
  // 1 in the lanes where a > 0, else 0.
  static V positive(V a) {
    return map(a, [](Real x) { return x > 0 ? Real(1) : Real(0); });
  }
  static V sigmoid(V a) {
    return map(a, [](Real x) { return Real(1) / (Real(1) + std::exp(-x)); });
  }
  static V tanh(V a) {
    return map(a, [](Real x) { return std::tanh(x); });
  }
  static V exp(V a) {
    return map(a, [](Real x) { return std::exp(x); });
  }
  // log(1 + e^−t) for t >= 0.
  static V log1p_exp_negative(V t) {
    return map(t, [](Real x) { return std::log1p(std::exp(-x)); });
  }
};

}  // namespace fastgru::kernels
