// The portable quantized traits: VecScalar<float> (four scalars) with the quantized panels'
// loads and integer arithmetic (quantized_product.h), lane by lane.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/quantized/conversions.h"
#include "kernels/simd/vec_scalar.h"

namespace fastgru::kernels {

struct VecScalarQuantized : VecScalar<float> {
  // bf16 products widen both factors to float32 and sum with FMAs (no pair instruction).
  static constexpr bool kBf16DotPairs = false;
  // int8 panels group the depth in pairs (vpmaddwd and its emulation).
  static constexpr int kInt8DepthGroup = 2;
  // Rows of a tile that a product runs over the panel at once: AVX2's, so that the two sum in
  // the same order (quantized_product.h).
  static constexpr int kMaxPassRows = 3;
  struct I {  // kWidth int32 sums
    std::int32_t lane[kWidth];
  };
  struct Pairs {  // kWidth pairs of int16: lane j is (value[2j], value[2j + 1])
    std::int16_t value[2 * kWidth];
  };

  // kWidth columns' (k, k+1) pairs of bf16: the values at k, and those at k + 1.
  static V load_bf16_even(const Bf16* p) {
    V out;
    for (int j = 0; j < kWidth; ++j) out.lane[j] = float_from_bf16(p[2 * j]);
    return out;
  }
  static V load_bf16_odd(const Bf16* p) {
    V out;
    for (int j = 0; j < kWidth; ++j) out.lane[j] = float_from_bf16(p[2 * j + 1]);
    return out;
  }
  static Pairs load_int8_pairs(const std::int8_t* p) {
    Pairs out;
    for (int j = 0; j < 2 * kWidth; ++j) out.value[j] = p[j];
    return out;
  }
  static Pairs set1_pair(const std::int16_t* p) {
    Pairs out;
    for (int j = 0; j < kWidth; ++j) {
      out.value[2 * j] = p[0];
      out.value[2 * j + 1] = p[1];
    }
    return out;
  }
  static I zero_i32() { return I{}; }
  // acc + the pairwise sums of a · b (vpmaddwd then vpaddd).
  static I madd_add(Pairs a, Pairs b, I acc) {
    for (int j = 0; j < kWidth; ++j)
      acc.lane[j] += std::int32_t(a.value[2 * j]) * b.value[2 * j] +
                     std::int32_t(a.value[2 * j + 1]) * b.value[2 * j + 1];
    return acc;
  }
  static V to_float(I a) {
    V out;
    for (int j = 0; j < kWidth; ++j) out.lane[j] = static_cast<float>(a.lane[j]);
    return out;
  }

  // a · b + c rounded once (VecScalar::fma rounds twice where the target has no FMA).
  static V fused_multiply_add(V a, V b, V c) {
    V out;
    for (int j = 0; j < kWidth; ++j) out.lane[j] = std::fma(a.lane[j], b.lane[j], c.lane[j]);
    return out;
  }

  static void round_row_to_bf16(Index count, const float* in, float* out) {
    for (Index k = 0; k < count; ++k) out[k] = round_to_bf16(in[k]);
  }
  static std::uint32_t largest_magnitude_bits(Index count, const float* row) {
    return kernels::largest_magnitude_bits(count, row);
  }
  // inverse is finite (int8_row_scaling of a finite, not tiny row).
  static void quantize_row_int8(Index count, const float* row, float inverse, std::int16_t* out) {
    for (Index k = 0; k < count; ++k)
      out[k] = static_cast<std::int16_t>(quantize_int8(row[k], inverse));
  }
};

}  // namespace fastgru::kernels
