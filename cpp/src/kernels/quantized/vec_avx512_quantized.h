// The AVX-512 quantized traits: VecAvx512F32 with the quantized panels' loads and integer
// arithmetic (quantized_product.h). The int8 loads and vpmaddwd need AVX-512BW besides F.
// Include only from files compiled with -mavx512f -mavx512bw.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/quantized/conversions.h"
#include "kernels/simd/vec_avx512.h"

namespace fastgru::kernels {

struct VecAvx512Quantized : VecAvx512F32 {
  // bf16 products widen both factors to float32 and sum with FMAs (no pair instruction).
  static constexpr bool kBf16DotPairs = false;
  // int8 panels group the depth in pairs (vpmaddwd and its emulation).
  static constexpr int kInt8DepthGroup = 2;
  // Rows of a tile that a product runs over the panel at once: GCC keeps bf16 accumulators on
  // the stack beyond 4 rows of 3 vectors (even with 32 registers), so 8 rows run as 4 + 4.
  static constexpr int kMaxPassRows = 4;
  using I = __m512i;      // 16 int32 sums
  using Pairs = __m512i;  // 16 pairs of int16

  // 16 columns' (k, k+1) pairs of bf16, one 32-bit lane each, as float32: the values at k are
  // the lanes shifted left by 16, those at k + 1 the lanes with their low half cleared.
  static V load_bf16_even(const Bf16* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(p), 16));
  }
  static V load_bf16_odd(const Bf16* p) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_loadu_si512(p), _mm512_set1_epi32(int(0xFFFF0000u))));
  }
  static Pairs load_int8_pairs(const std::int8_t* p) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static Pairs set1_pair(const std::int16_t* p) {
    std::int32_t pair;
    std::memcpy(&pair, p, sizeof pair);
    return _mm512_set1_epi32(pair);
  }
  static I zero_i32() { return _mm512_setzero_si512(); }
  // Exact: each pair sums to at most 2 · 127² in magnitude.
  static I madd_add(Pairs a, Pairs b, I acc) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
  }
  // All lanes (a full mask): GCC's unmasked form reads an undefined vector that its own
  // -Wuninitialized then reports.
  static V to_float(I a) { return _mm512_maskz_cvtepi32_ps(__mmask16(0xFFFF), a); }
  static V fused_multiply_add(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }

  static void round_row_to_bf16(Index count, const float* in, float* out) {
    const __m512i ones = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7FFF);
    const __m512i top = _mm512_set1_epi32(int(0xFFFF0000u)), quiet = _mm512_set1_epi32(0x00400000);
    Index k = 0;
    for (; k + kWidth <= count; k += kWidth) {
      const __m512 x = _mm512_loadu_ps(in + k);
      const __m512i bits = _mm512_castps_si512(x);
      const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), ones);
      const __m512i rounded =
          _mm512_and_si512(_mm512_add_epi32(bits, _mm512_add_epi32(half, odd)), top);
      const __m512i nan = _mm512_or_si512(_mm512_and_si512(bits, top), quiet);
      const __mmask16 is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
      _mm512_storeu_si512(out + k, _mm512_mask_blend_epi32(is_nan, rounded, nan));
    }
    for (; k < count; ++k) out[k] = round_to_bf16(in[k]);
  }

  // Integer max of the magnitude bits: ordered as the magnitudes, and inf or NaN end above every
  // finite value (a float max would drop NaN).
  static std::uint32_t largest_magnitude_bits(Index count, const float* row) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i largest = _mm512_setzero_si512();
    Index k = 0;
    for (; k + kWidth <= count; k += kWidth)
      largest = _mm512_max_epi32(largest, _mm512_and_si512(_mm512_loadu_si512(row + k), magnitude));
    const auto vector_largest = static_cast<std::uint32_t>(_mm512_reduce_max_epi32(largest));
    const std::uint32_t tail_largest = kernels::largest_magnitude_bits(count - k, row + k);
    return vector_largest > tail_largest ? vector_largest : tail_largest;
  }

  // inverse is finite, so |row · inverse| ≤ 127 up to rounding; the conversion rounds to
  // nearest even (the default MXCSR mode, as std::nearbyint in the scalar tail).
  static void quantize_row_int8(Index count, const float* row, float inverse, std::int16_t* out) {
    const __m512 scale = _mm512_set1_ps(inverse);
    const __m512i high = _mm512_set1_epi32(kInt8Limit), low = _mm512_set1_epi32(-kInt8Limit);
    Index k = 0;
    for (; k + kWidth <= count; k += kWidth) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + k), scale));
      q = _mm512_max_epi32(_mm512_min_epi32(q, high), low);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), _mm512_cvtepi32_epi16(q));
    }
    for (; k < count; ++k) out[k] = static_cast<std::int16_t>(quantize_int8(row[k], inverse));
  }
};

}  // namespace fastgru::kernels
