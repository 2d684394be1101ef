#pragma once

namespace fastgru::dispatch {

struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 and FMA, with the OS saving YMM state
  bool avx512f = false;   // AVX-512F, with the OS saving ZMM and opmask state
  bool avx512bw = false;  // AVX-512BW (byte and word integers) besides AVX-512F
};

CpuFeatures detect_cpu_features();

}  // namespace fastgru::dispatch
