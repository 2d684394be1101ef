// The AVX512-BF16 quantized traits: VecAvx512Quantized whose bf16 products multiply pairs of
// bf16 and add both products to float32 sums in one instruction (vdpbf16ps), reading the
// panels' (k, k+1) lanes as they are. vdpbf16ps treats subnormal inputs and results as zero
// whatever MXCSR says: a term with a subnormal factor is lost, and each sum may lose up to 2^-126.
// Include only from files compiled with -mavx512f -mavx512bw -mavx512bf16.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/quantized/vec_avx512_quantized.h"

namespace fastgru::kernels {

struct VecAvx512Bf16Quantized : VecAvx512Quantized {
  static constexpr bool kBf16DotPairs = true;
  using Bf16Pairs = __m512bh;

  static Bf16Pairs load_bf16_pairs(const Bf16* p) {
    return reinterpret_cast<Bf16Pairs>(_mm512_loadu_si512(p));
  }
  // A packed pair (round_row_to_bf16_pairs) in every lane: one broadcast load.
  static Bf16Pairs set1_bf16_pair(const std::uint32_t* pair) {
    return reinterpret_cast<Bf16Pairs>(_mm512_set1_epi32(int(*pair)));
  }
  // acc + a.pair[lane] · b.pair[lane], both products of each lane's pair. In inline assembly,
  // accumulating in place, as GCC may copy the accumulator around the intrinsic.
  static V dot_pairs(V acc, Bf16Pairs a, Bf16Pairs b) {
    __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
  }

  // The row rounded to bf16 as round_row_to_bf16 rounds it, packed in pairs: out[p] holds the
  // values at 2p (low half) and 2p + 1 (high half; zero past count), the layout vdpbf16ps reads.
  static void round_row_to_bf16_pairs(Index count, const float* in, std::uint32_t* out) {
    alignas(64) float rounded[2 * kWidth];
    // The top halves of 32 rounded values, in order: words 1, 3, ..., 31 of each vector.
    alignas(64) static constexpr std::uint16_t kOddWords[32] = {
        1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
        33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
    const __m512i pick = _mm512_load_si512(kOddWords);
    Index k = 0;
    for (; k + 2 * kWidth <= count; k += 2 * kWidth) {
      round_row_to_bf16(2 * kWidth, in + k, rounded);
      const __m512i low = _mm512_load_si512(rounded), high = _mm512_load_si512(rounded + kWidth);
      _mm512_storeu_si512(out + k / 2, _mm512_permutex2var_epi16(low, pick, high));
    }
    for (; k < count; k += 2) {
      const std::uint32_t even = bf16_from_float(in[k]);
      const std::uint32_t odd = k + 1 < count ? bf16_from_float(in[k + 1]) : 0u;
      out[k / 2] = even | odd << 16;
    }
  }
};

}  // namespace fastgru::kernels
