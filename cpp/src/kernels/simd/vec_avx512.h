// float32 × 16 in AVX-512F registers. Include only from files compiled with -mavx512f.
#pragma once

#include <immintrin.h>

#include "kernels/simd/fast_activations.h"

namespace fastgru::kernels {

struct VecAvx512F32 {
  using Real = float;
  using V = __m512;
  static constexpr int kWidth = 16;

  static __mmask16 lane_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_n(const float* p, int n) {
    return n >= kWidth ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lane_mask(n), p);
  }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, V v, int n) {
    if (n >= kWidth) {
      _mm512_storeu_ps(p, v);
    } else {
      _mm512_mask_storeu_ps(p, lane_mask(n), v);
    }
  }
  // A vector is one cache line: stream() writes it around the caches (p 64-byte aligned), and
  // stream_fence() orders those writes before the caller's later stores.
  static constexpr bool kStoresLines = true;
  static void stream(float* p, V v) { _mm512_stream_ps(p, v); }
  static void stream_fence() { _mm_sfence(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  // 1 in the lanes where a > 0, else 0.
  static V positive(V a) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
  }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // p · 2^n, and 0 where n <= −127 (e^x below float32's normal range, x clamped at −88), as
  // AVX2's exponent bits give it: the ISAs agree there. A NaN n stays NaN (unordered: kept).
  static V scale_by_pow2(V p, V n) {
    return _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(n, _mm512_set1_ps(-127.0f), _CMP_NLE_UQ), p, n);
  }
  static V sigmoid(V a) { return fast_sigmoid<VecAvx512F32>(a); }
  static V tanh(V a) { return fast_tanh<VecAvx512F32>(a); }
  static V exp(V a) { return fast_exp<VecAvx512F32>(a); }
  // log(1 + e^−t) for t >= 0.
  static V log1p_exp_negative(V t) { return fast_log1p_exp_negative<VecAvx512F32>(t); }
};

}  // namespace fastgru::kernels
