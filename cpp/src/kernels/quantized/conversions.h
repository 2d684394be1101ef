// The reduced-precision scheme's conversions, one value at a time (EQUATIONS.md §9,
// python/fastgru/reference_quantized.py): bf16 rounding and symmetric per-row int8 quantization.
// The packers, the portable kernels and the tests' model all use these; the vector versions
// (vec_*_quantized.h) must give the same bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"

namespace fastgru::kernels {

using Bf16 = std::uint16_t;  // the top 16 bits of a float32

// Quantized values reach ±127 (symmetric: −128 is never used).
constexpr int kInt8Limit = 127;
// An int8 product sums at most this many terms of |q_x q_w| ≤ 127² in int32 without overflow.
constexpr Index kMaxInt8Depth = 2147483647 / (kInt8Limit * kInt8Limit);
// The quantized layouts group the depth in pairs (quantized_product.h): a weight panel and an
// input row are padded with zeros to an even depth.
constexpr Index kQuantizedDepthGroup = 2;

inline Index padded_depth(Index depth, Index group = kQuantizedDepthGroup) {
  return (depth + group - 1) / group * group;
}

// Where the ISA multiplies int8 quads (vpdpbusd), int8 panels group the depth in fours and an
// input row is stored unsigned, q + 128 (zero in its padding): the product's sum is then
// Σ q_x q_w + 128 Σ q_w, and the panel's column sums of q_w take the second term back out.
constexpr Index kInt8QuadGroup = 4;
constexpr int kUnsignedOffset = 128;

// Returned by the int8 row quantizers when every row was finite.
constexpr Index kAllRowsFinite = -1;

inline std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float float_from_bits(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// float32 → bf16, to nearest with ties to even; overflow gives ±inf. A NaN stays a NaN (quiet):
// rounding its payload could carry into the exponent and make it inf.
inline Bf16 bf16_from_float(float value) {
  const std::uint32_t bits = float_bits(value);
  if (std::isnan(value)) return static_cast<Bf16>((bits >> 16) | 0x0040u);
  return static_cast<Bf16>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

inline float float_from_bf16(Bf16 value) { return float_from_bits(std::uint32_t(value) << 16); }

// The float32 rounded to bf16 and widened back: what a bf16 product reads.
inline float round_to_bf16(float value) { return float_from_bf16(bf16_from_float(value)); }

// |value|'s bits: for finite values ordered like |value|; inf and NaN at or above kInfBits.
inline std::uint32_t magnitude_bits(float value) { return float_bits(value) & 0x7FFFFFFFu; }
constexpr std::uint32_t kInfBits = 0x7F800000u;

// A row's int8 scaling: scale = max|row| / 127 and the float32 reciprocal 127 / max|row| that
// the values are multiplied by (0 for an all-zero row).
struct Int8RowScaling {
  float scale;
  float inverse;
};

inline Int8RowScaling int8_row_scaling(float largest_magnitude) {
  if (largest_magnitude == 0.0f) return {0.0f, 0.0f};
  return {largest_magnitude / float(kInt8Limit), float(kInt8Limit) / largest_magnitude};
}

// One value of a row: rint(value · inverse), ties to even, clamped to ±127. Below
// max|row| ≈ 3.7e-37 the reciprocal overflows to inf: zeros stay 0 (not 0 · inf = NaN) and
// every other value saturates, as the limit of the definition does.
inline int quantize_int8(float value, float inverse) {
  if (value == 0.0f) return 0;
  const float scaled = std::nearbyint(value * inverse);
  return static_cast<int>(std::fmin(std::fmax(scaled, -float(kInt8Limit)), float(kInt8Limit)));
}

// The largest |value| of a row as its magnitude bits (≥ kInfBits when the row is not finite).
inline std::uint32_t largest_magnitude_bits(Index count, const float* row) {
  std::uint32_t largest = 0;
  for (Index k = 0; k < count; ++k) {
    const std::uint32_t bits = magnitude_bits(row[k]);
    largest = bits > largest ? bits : largest;
  }
  return largest;
}

}  // namespace fastgru::kernels
