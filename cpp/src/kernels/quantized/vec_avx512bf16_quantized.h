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
  // (a[0], a[1]), float32 holding bf16 values (their low halves are zero), as one bf16 pair
  // in every lane.
  static Bf16Pairs set1_bf16_pair(const float* a) {
    std::uint32_t even, odd;
    std::memcpy(&even, a, sizeof even);
    std::memcpy(&odd, a + 1, sizeof odd);
    return reinterpret_cast<Bf16Pairs>(_mm512_set1_epi32(int((even >> 16) | odd)));
  }
  // acc + a.pair[lane] · b.pair[lane], both products of each lane's pair.
  static V dot_pairs(V acc, Bf16Pairs a, Bf16Pairs b) { return _mm512_dpbf16_ps(acc, a, b); }
};

}  // namespace fastgru::kernels
