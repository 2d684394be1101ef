// float32 × 8 in AVX2 + FMA registers. Include only from files compiled with -mavx2 -mfma.
#pragma once

#include <immintrin.h>

#include "kernels/simd/fast_activations.h"

namespace fastgru::kernels {

struct VecAvx2F32 {
  using Real = float;
  using V = __m256;
  static constexpr int kWidth = 8;

  static __m256i lane_mask(int n) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes);
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_n(const float* p, int n) {
    return n >= kWidth ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lane_mask(n));
  }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, V v, int n) {
    if (n >= kWidth) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, lane_mask(n), v);
    }
  }
  // Half a cache line: streaming stores would flush partial lines, so none (see VecAvx512F32).
  static constexpr bool kStoresLines = false;
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  // 1 in the lanes where a > 0, else 0.
  static V positive(V a) {
    return _mm256_and_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f));
  }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // p · 2^n for integral n in [-127, 127] (2^-127 flushes to zero, below float32's normal range).
  static V scale_by_pow2(V p, V n) {
    const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
  }
  static V sigmoid(V a) { return fast_sigmoid<VecAvx2F32>(a); }
  static V tanh(V a) { return fast_tanh<VecAvx2F32>(a); }
  static V exp(V a) { return fast_exp<VecAvx2F32>(a); }
  // log(1 + e^−t) for t >= 0.
  static V log1p_exp_negative(V t) { return fast_log1p_exp_negative<VecAvx2F32>(t); }
};

}  // namespace fastgru::kernels
