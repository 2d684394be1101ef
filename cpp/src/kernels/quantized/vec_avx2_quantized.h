// The AVX2 quantized traits: VecAvx2F32 with the quantized panels' loads and integer arithmetic
// (quantized_product.h). Include only from files compiled with -mavx2 -mfma.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/quantized/conversions.h"
#include "kernels/simd/vec_avx2.h"

namespace fastgru::kernels {

struct VecAvx2Quantized : VecAvx2F32 {
  // bf16 products widen both factors to float32 and sum with FMAs (no pair instruction).
  static constexpr bool kBf16DotPairs = false;
  // int8 panels group the depth in pairs (vpmaddwd and its emulation).
  static constexpr int kInt8DepthGroup = 2;
  // Rows of a tile that a product runs over the panel at once: what 16 registers hold
  // (quantized_product.h).
  static constexpr int kMaxPassRows = 3;
  using I = __m256i;      // 8 int32 sums
  using Pairs = __m256i;  // 8 pairs of int16

  // 8 columns' (k, k+1) pairs of bf16, one 32-bit lane each, as float32: the values at k are
  // the lanes shifted left by 16, those at k + 1 the lanes with their low half cleared.
  static V load_bf16_even(const Bf16* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(load_pairs(p), 16));
  }
  static V load_bf16_odd(const Bf16* p) {
    const __m256i top_halves = _mm256_set1_epi32(int(0xFFFF0000u));
    return _mm256_castsi256_ps(_mm256_and_si256(load_pairs(p), top_halves));
  }
  static __m256i load_pairs(const Bf16* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static Pairs load_int8_pairs(const std::int8_t* p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static Pairs set1_pair(const std::int16_t* p) {
    std::int32_t pair;
    std::memcpy(&pair, p, sizeof pair);
    return _mm256_set1_epi32(pair);
  }
  static I zero_i32() { return _mm256_setzero_si256(); }
  // Exact: each pair sums to at most 2 · 127² in magnitude.
  static I madd_add(Pairs a, Pairs b, I acc) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
  }
  static V to_float(I a) { return _mm256_cvtepi32_ps(a); }
  static V fused_multiply_add(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }

  static void round_row_to_bf16(Index count, const float* in, float* out) {
    const __m256i ones = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7FFF);
    const __m256i top = _mm256_set1_epi32(int(0xFFFF0000u)), quiet = _mm256_set1_epi32(0x00400000);
    Index k = 0;
    for (; k + kWidth <= count; k += kWidth) {
      const __m256 x = _mm256_loadu_ps(in + k);
      const __m256i bits = _mm256_castps_si256(x);
      const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), ones);
      const __m256i rounded =
          _mm256_and_si256(_mm256_add_epi32(bits, _mm256_add_epi32(half, odd)), top);
      const __m256i nan = _mm256_or_si256(_mm256_and_si256(bits, top), quiet);
      const __m256 is_nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
      _mm256_storeu_ps(out + k, _mm256_blendv_ps(_mm256_castsi256_ps(rounded),
                                                 _mm256_castsi256_ps(nan), is_nan));
    }
    for (; k < count; ++k) out[k] = round_to_bf16(in[k]);
  }

  // Integer max of the magnitude bits: ordered as the magnitudes, and inf or NaN end above every
  // finite value (a float max would drop NaN).
  static std::uint32_t largest_magnitude_bits(Index count, const float* row) {
    const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
    __m256i largest = _mm256_setzero_si256();
    Index k = 0;
    for (; k + kWidth <= count; k += kWidth)
      largest = _mm256_max_epi32(largest, _mm256_and_si256(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k)), magnitude));
    alignas(32) std::uint32_t lanes[kWidth];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), largest);
    std::uint32_t result = kernels::largest_magnitude_bits(count - k, row + k);
    for (std::uint32_t lane : lanes) result = lane > result ? lane : result;
    return result;
  }

  // inverse is finite, so |row · inverse| ≤ 127 up to rounding; the conversion rounds to
  // nearest even (the default MXCSR mode, as std::nearbyint in the scalar tail).
  static void quantize_row_int8(Index count, const float* row, float inverse, std::int16_t* out) {
    const __m256 scale = _mm256_set1_ps(inverse);
    const __m256i high = _mm256_set1_epi32(kInt8Limit), low = _mm256_set1_epi32(-kInt8Limit);
    Index k = 0;
    for (; k + kWidth <= count; k += kWidth) {
      __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + k), scale));
      q = _mm256_max_epi32(_mm256_min_epi32(q, high), low);
      const __m128i packed =
          _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), packed);
    }
    for (; k < count; ++k) out[k] = static_cast<std::int16_t>(quantize_int8(row[k], inverse));
  }
};

}  // namespace fastgru::kernels
