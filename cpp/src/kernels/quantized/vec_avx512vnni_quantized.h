// The AVX512-VNNI quantized traits: VecAvx512Bf16Quantized whose int8 products multiply quads
// of unsigned input bytes by signed weight bytes and add the four products to int32 sums in one
// instruction (vpdpbusd): twice the pairs' multiply-adds per instruction, with no widening of
// the weights. Inputs are stored as q + 128 (quantized_product.h, quantize_rows_unsigned).
// Include only from files compiled with -mavx512f -mavx512bw -mavx512bf16 -mavx512vnni.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/quantized/vec_avx512bf16_quantized.h"

namespace fastgru::kernels {

struct VecAvx512VnniQuantized : VecAvx512Bf16Quantized {
  static constexpr int kInt8DepthGroup = int(kInt8QuadGroup);

  // 16 columns' quads (k..k+3) of int8 weights, one 32-bit lane each.
  static I load_int8_quads(const std::int8_t* p) { return _mm512_loadu_si512(p); }
  static I load_i32(const std::int32_t* p) { return _mm512_loadu_si512(p); }
  // The input row's quad (a[0..3], unsigned bytes) in every lane.
  static I set1_quad(const std::uint8_t* a) {
    std::int32_t quad;
    std::memcpy(&quad, a, sizeof quad);
    return _mm512_set1_epi32(quad);
  }
  // acc + Σ of the four products u8 · s8 of each lane (wrapping, never saturating). In inline
  // assembly, accumulating in place: GCC 12 copies the accumulator around each intrinsic call
  // (a vmovdqa64 per vpdpbusd, and spills), which made the product 4× slower.
  static I dot_quads(I acc, I a, I b) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
  }

  // As quantize_row_int8, stored as q + 128 in bytes.
  static void quantize_row_unsigned(Index count, const float* row, float inverse,
                                    std::uint8_t* out) {
    const __m512 scale = _mm512_set1_ps(inverse);
    const __m512i high = _mm512_set1_epi32(kInt8Limit), low = _mm512_set1_epi32(-kInt8Limit);
    const __m512i offset = _mm512_set1_epi32(kUnsignedOffset);
    Index k = 0;
    for (; k + kWidth <= count; k += kWidth) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + k), scale));
      q = _mm512_add_epi32(_mm512_max_epi32(_mm512_min_epi32(q, high), low), offset);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm512_cvtepi32_epi8(q));
    }
    for (; k < count; ++k)
      out[k] = static_cast<std::uint8_t>(quantize_int8(row[k], inverse) + kUnsignedOffset);
  }
};

}  // namespace fastgru::kernels
